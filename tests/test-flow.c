/* Placeholder: the flow suite is being written. */
#include "suites.h"

Suite *flow_suite(void)
{
	return suite_create("flow");
}
