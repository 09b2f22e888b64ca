/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *mixed_suite(void)
{
	return suite_create("mixed");
}
