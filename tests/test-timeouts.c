/* Placeholder: the timeouts suite is being written. */
#include "suites.h"

Suite *timeouts_suite(void)
{
	return suite_create("timeouts");
}
