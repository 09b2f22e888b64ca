/* Placeholder: replaced by the real suite. */
#include "suites.h"

Suite *asynchat_port_suite(void)
{
	return suite_create("asynchat_port");
}
