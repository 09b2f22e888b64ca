/* Placeholder: the listener suite is being written. */
#include "suites.h"

Suite *listener_suite(void)
{
	return suite_create("listener");
}
