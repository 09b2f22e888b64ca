/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *framing_suite(void)
{
	return suite_create("framing");
}
