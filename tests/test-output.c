/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *output_suite(void)
{
	return suite_create("output");
}
