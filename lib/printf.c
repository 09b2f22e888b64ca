/*
 * evchat_push_printf(): a formatted push without a buffer of the
 * program's. Short results, the usual reply line, are formatted on the
 * stack; a longer one is formatted again into memory of its size.
 */
#include <errno.h>
#include <stdio.h>

#include "evchat-internal.h"

/* Most reply lines fit; one that does not costs a second formatting. */
#define EVCHAT__PRINTF_STACK 256

int evchat_push_vprintf(struct evchat *chat, const char *fmt, va_list args)
{
	if (chat == NULL || fmt == NULL) {
		errno = EINVAL;
		return -1;
	}
	char small[EVCHAT__PRINTF_STACK];
	va_list again;
	va_copy(again, args);
	int saved = errno; /* a success leaves it alone */
	errno = 0;
	int n = vsnprintf(small, sizeof(small), fmt, args);
	if (n < 0) {
		va_end(again);
		if (errno == 0)
			errno = EOVERFLOW; /* longer than an int can count */
		return -1;
	}
	errno = saved;
	if ((size_t)n < sizeof(small)) {
		va_end(again);
		return evchat_push(chat, small, (size_t)n);
	}
	char *big = evchat__malloc((size_t)n + 1);
	if (big == NULL) {
		va_end(again);
		errno = ENOMEM;
		return -1;
	}
	vsnprintf(big, (size_t)n + 1, fmt, again);
	va_end(again);
	int r = evchat_push(chat, big, (size_t)n);
	int err = errno;
	evchat__free(big);
	errno = err;
	return r;
}

int evchat_push_printf(struct evchat *chat, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	int r = evchat_push_vprintf(chat, fmt, args);
	va_end(args);
	return r;
}
