/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *length_suite(void)
{
	return suite_create("length");
}
