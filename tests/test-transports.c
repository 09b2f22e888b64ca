/* Placeholder: the transports suite is being written. */
#include "suites.h"

Suite *transports_suite(void)
{
	return suite_create("transports");
}
