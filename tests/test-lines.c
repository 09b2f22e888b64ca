/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *lines_suite(void)
{
	return suite_create("lines");
}
