/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *lifecycle_suite(void)
{
	return suite_create("lifecycle");
}
