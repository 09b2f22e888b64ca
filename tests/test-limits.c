/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *limits_suite(void)
{
	return suite_create("limits");
}
