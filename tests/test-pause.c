/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *pause_suite(void)
{
	return suite_create("pause");
}
