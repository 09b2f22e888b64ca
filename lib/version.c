/*
 * The library's version, compiled in from the header it was built with:
 * a program compares it with the header it was built against. configure
 * checks that the header's version is AC_INIT's.
 */
#include "evchat-internal.h"

const char *evchat_version(void)
{
	return EVCHAT_VERSION_STRING;
}

ev_uint32_t evchat_version_number(void)
{
	return EVCHAT_VERSION_NUMBER;
}
