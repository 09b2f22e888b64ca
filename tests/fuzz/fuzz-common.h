/*
 * Shared by the fuzz targets: reading the fuzzer's bytes as a program,
 * growable byte strings for the reference models, running the loop until
 * nothing is left to do, and failing loudly.
 */
#ifndef EVCHAT_FUZZ_COMMON_H_INCLUDED_
#define EVCHAT_FUZZ_COMMON_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

/* libFuzzer's entry point, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzer's input, read front to back; reads past its end give 0. */
struct reader {
	const uint8_t *p;
	size_t left;
};

unsigned next_byte(struct reader *r);
/* Up to n bytes (fewer at the end of the input): returns how many. */
size_t next_bytes(struct reader *r, size_t n, const uint8_t **out);

/* A growable byte string: what a model expects. */
struct bytes {
	uint8_t *p;
	size_t len;
	size_t cap;
};

void bytes_add(struct bytes *b, const void *data, size_t len);
void bytes_printf(struct bytes *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes. */
void bytes_cut(struct bytes *b, size_t n);
int bytes_equal(const struct bytes *a, const struct bytes *b);
void bytes_free(struct bytes *b);
/* Appends the whole of buf, leaving it as it was. */
void bytes_add_evbuffer(struct bytes *b, struct evbuffer *buf);

/* Runs the loop without blocking until no event is active: everything a
 * step set off has happened. */
void run_until_idle(struct event_base *base);

/* Prints what went wrong and what was expected, then abort()s, which
 * libFuzzer reports as a crash with the input that caused it. */
void fuzz_fail(const char *what, const struct bytes *got,
               const struct bytes *want) __attribute__((noreturn));
void fuzz_check(int ok, const char *what);

#endif
