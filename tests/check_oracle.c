/*
 * Differential test: evchat's framing against Python's own asynchat.
 *
 * Random cases (input chunks and a sequence of terminators) are run through
 * tests/asynchat_oracle.py in one Python process, and through evchat over a
 * real socketpair, one chunk per read. Frames and the leftover bytes must be
 * the same. Needs a Python 3 that still has asynchat (3.11 or older); with
 * none, the program exits 77 so automake reports SKIP.
 *
 * Environment: EVCHAT_ORACLE_CASES (default 3000) sets how many cases,
 * EVCHAT_ORACLE_SEED (default 1) the random seed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "helpers.h"

#ifndef PYTHON3
#define PYTHON3 ""
#endif
#ifndef ORACLE_SCRIPT
#error "ORACLE_SCRIPT must name tests/asynchat_oracle.py"
#endif

#define SKIP_EXIT_CODE 77
#define DEFAULT_CASES 3000

/* A small alphabet makes whole and partial terminator matches frequent. */
static const char alphabet[] = "ab\r\n";
#define ALPHABET_LEN (sizeof(alphabet) - 1)

#define MAX_CHUNKS 20
#define MAX_CHUNK_LEN 40
#define MAX_TERMS 6
/* Past EVCHAT__SHORT_TERM (4), so that both ways a terminator is kept,
 * and switches between them, meet asynchat. */
#define MAX_TERM_LEN 6
#define MAX_COUNT 20
/* One case in COLLECT_EVERY is also run in collect mode. */
#define COLLECT_EVERY 4

/* Terminators are helpers.h's term_spec, set by apply_term(). */
_Static_assert(MAX_TERM_LEN <= sizeof(((struct term_spec *)0)->str),
               "a struct term_spec holds the longest string terminator");

struct oracle_case {
	size_t nchunks;
	unsigned char chunk[MAX_CHUNKS][MAX_CHUNK_LEN];
	size_t chunk_len[MAX_CHUNKS];
	size_t nterms;
	struct term_spec terms[MAX_TERMS];
	char *expected; /* asynchat's output line, without newline */
};

static struct oracle_case *cases;
static size_t ncases;
static unsigned long long seed = 1;
/* Set when the oracle could not be run: the test fails with it. */
static char oracle_error[512];

/* ---- a fixed-seed PRNG (splitmix64), the same on every platform ---------- */

static unsigned long long prng_state;

static unsigned long long prng_next(void)
{
	unsigned long long z = (prng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in [lo, hi]. */
static size_t prng_range(size_t lo, size_t hi)
{
	return lo + (size_t)(prng_next() % (hi - lo + 1));
}

static void generate_term(struct term_spec *t)
{
	size_t roll = prng_range(0, 99);
	memset(t, 0, sizeof(*t));
	if (roll < 3) {
		/* None: framing stops for the rest of the case. */
		t->kind = EVCHAT_TERM_NONE;
	} else if (roll < 43) {
		t->kind = EVCHAT_TERM_COUNT;
		t->count = prng_range(1, MAX_COUNT);
	} else {
		t->kind = EVCHAT_TERM_STRING;
		t->len = prng_range(1, MAX_TERM_LEN);
		for (size_t i = 0; i < t->len; i++)
			t->str[i] = alphabet[prng_range(0, ALPHABET_LEN - 1)];
	}
}

static void generate_case(struct oracle_case *oc)
{
	memset(oc, 0, sizeof(*oc));
	oc->nchunks = prng_range(1, MAX_CHUNKS);
	for (size_t c = 0; c < oc->nchunks; c++) {
		/* Mostly short chunks, so terminators straddle reads. */
		size_t max = prng_range(0, 3) == 0 ? MAX_CHUNK_LEN : 8;
		oc->chunk_len[c] = prng_range(1, max);
		for (size_t i = 0; i < oc->chunk_len[c]; i++)
			oc->chunk[c][i] = (unsigned char)
			    alphabet[prng_range(0, ALPHABET_LEN - 1)];
	}
	oc->nterms = prng_range(1, MAX_TERMS);
	for (size_t t = 0; t < oc->nterms; t++)
		generate_term(&oc->terms[t]);
}

/* ---- the case as the oracle's JSON input line ---------------------------- */

static void add_hex(struct evbuffer *out, const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	for (size_t i = 0; i < len; i++)
		evbuffer_add_printf(out, "%02x", p[i]);
}

static void add_case_json(struct evbuffer *out, const struct oracle_case *oc)
{
	evbuffer_add_printf(out, "{\"chunks\": [");
	for (size_t c = 0; c < oc->nchunks; c++) {
		evbuffer_add_printf(out, "%s\"", c ? ", " : "");
		add_hex(out, oc->chunk[c], oc->chunk_len[c]);
		evbuffer_add_printf(out, "\"");
	}
	evbuffer_add_printf(out, "], \"terms\": [");
	for (size_t t = 0; t < oc->nterms; t++) {
		const struct term_spec *term = &oc->terms[t];
		evbuffer_add_printf(out, "%s", t ? ", " : "");
		switch (term->kind) {
		case EVCHAT_TERM_NONE:
			evbuffer_add_printf(out, "null");
			break;
		case EVCHAT_TERM_COUNT:
			evbuffer_add_printf(out, "%llu",
			                    (unsigned long long)term->count);
			break;
		case EVCHAT_TERM_STRING:
			evbuffer_add_printf(out, "\"");
			add_hex(out, term->str, term->len);
			evbuffer_add_printf(out, "\"");
			break;
		default:
			/* asynchat has no other kind: the cases never use
			 * them. */
			ck_abort_msg(
			    "oracle case with a non-asynchat terminator");
			break;
		}
	}
	evbuffer_add_printf(out, "]}\n");
}

/* A malloc'd NUL-terminated copy of the buffer's contents. */
static char *buffer_to_string(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	char *s = malloc(len + 1);
	ck_assert_ptr_nonnull(s);
	evbuffer_copyout(buf, s, len);
	s[len] = '\0';
	return s;
}

/* ---- running Python ------------------------------------------------------ */

/* Runs argv with stdin and stdout redirected (-1: /dev/null) and stderr
 * to /dev/null when quiet. Returns the wait status, or -1 (errno set) if
 * the child could not be started; exit status 127 means exec failed. */
static int run_program(char *const argv[], int in_fd, int out_fd, int quiet)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		dup2(in_fd >= 0 ? in_fd : devnull, 0);
		dup2(out_fd >= 0 ? out_fd : devnull, 1);
		if (quiet)
			dup2(devnull, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return status;
}

/* Exits 77 (skip) unless PYTHON3 runs and has asynchat. */
static void require_asynchat(void)
{
	if (PYTHON3[0] == '\0') {
		printf("SKIP: configure found no python3 (PYTHON3 is empty), "
		       "so there is no asynchat to compare with\n");
		exit(SKIP_EXIT_CODE);
	}
	char *argv[] = { PYTHON3, "-c",
		         "import warnings; warnings.simplefilter('ignore'); "
		         "import asynchat",
		         NULL };
	int status = run_program(argv, -1, -1, 1);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) == 127) {
		printf("SKIP: cannot run %s\n", PYTHON3);
		exit(SKIP_EXIT_CODE);
	}
	if (WEXITSTATUS(status) != 0) {
		printf("SKIP: %s cannot import asynchat (removed in Python "
		       "3.12); configure with PYTHON3=/path/to/python3.11 to "
		       "run this test\n",
		       PYTHON3);
		exit(SKIP_EXIT_CODE);
	}
}

static int make_temp(char *path_template)
{
	int fd = mkstemp(path_template);
	if (fd >= 0)
		unlink(path_template); /* gone when closed */
	return fd;
}

/* Writes all cases to a temporary file, runs the oracle on it with its
 * output into another temporary file (no pipes, so no deadlock), and
 * stores each output line in its case. On failure fills oracle_error. */
static void run_oracle(void)
{
	char in_path[] = "/tmp/evchat-oracle-in-XXXXXX";
	char out_path[] = "/tmp/evchat-oracle-out-XXXXXX";
	int in_fd = make_temp(in_path);
	int out_fd = make_temp(out_path);
	struct evbuffer *buf = evbuffer_new();
	if (in_fd < 0 || out_fd < 0 || buf == NULL) {
		snprintf(oracle_error, sizeof(oracle_error),
		         "cannot make temporary files: %s", strerror(errno));
		goto out;
	}

	for (size_t i = 0; i < ncases; i++)
		add_case_json(buf, &cases[i]);
	while (evbuffer_get_length(buf) > 0) {
		if (evbuffer_write(buf, in_fd) < 0) {
			snprintf(oracle_error, sizeof(oracle_error),
			         "cannot write the cases: %s", strerror(errno));
			goto out;
		}
	}
	lseek(in_fd, 0, SEEK_SET);

	char *argv[] = { PYTHON3, ORACLE_SCRIPT, NULL };
	int status = run_program(argv, in_fd, out_fd, 0);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(oracle_error, sizeof(oracle_error),
		         "%s %s failed (wait status %d)", PYTHON3,
		         ORACLE_SCRIPT, status);
		goto out;
	}

	lseek(out_fd, 0, SEEK_SET);
	while (evbuffer_read(buf, out_fd, 1 << 16) > 0)
		;
	for (size_t i = 0; i < ncases; i++) {
		size_t len;
		char *line = evbuffer_readln(buf, &len, EVBUFFER_EOL_LF);
		if (line == NULL) {
			snprintf(oracle_error, sizeof(oracle_error),
			         "the oracle gave %zu lines for %zu cases", i,
			         ncases);
			goto out;
		}
		cases[i].expected = line;
	}
out:
	if (buf)
		evbuffer_free(buf);
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
}

/* ---- running evchat ------------------------------------------------------ */

static struct recorder rec; /* large: kept out of the stack */
static int case_ended;      /* the event hook ran */

static void oracle_event_cb(struct evchat *chat, short events, void *arg)
{
	recorder_event_cb(chat, events, arg);
	case_ended = 1;
}

static void add_hex_token(struct evbuffer *out, struct evbuffer *bytes,
                          size_t len)
{
	if (len == 0) {
		evbuffer_add_printf(out, "-");
		return;
	}
	unsigned char *p = evbuffer_pullup(bytes, (ev_ssize_t)len);
	add_hex(out, p, len);
	evbuffer_drain(bytes, len);
}

/* Every other frame-mode case runs through the bytes hook. There a
 * terminator set again unchanged is not set (asynchat does nothing with
 * it; evchat would end its run of frames lent from one chain, so the
 * runs would never be longer than a frame). */
static void oracle_found_bytes(struct evchat *chat, const unsigned char *frame,
                               size_t len, void *arg)
{
	struct recorder *r = arg;
	ck_assert_uint_lt(r->nframes, REC_MAX_FRAMES);
	r->frame_len[r->nframes++] = len;
	if (len > 0)
		evbuffer_add(r->frames, frame, len);
	struct term_script *s = r->user;
	s->nfound++;
	const struct term_spec *next = &s->terms[s->nfound % s->nterms];
	const void *cur;
	size_t cur_len;
	if (next->kind == EVCHAT_TERM_STRING &&
	    evchat_get_terminator(chat, &cur, &cur_len, NULL) ==
	        EVCHAT_TERM_STRING &&
	    cur_len == next->len && memcmp(cur, next->str, next->len) == 0)
		return;
	apply_term(chat, next);
}

/* Runs one case through evchat and returns its result in the oracle's
 * output format (malloc'd), or NULL with *why filled if the channel
 * misbehaved on the way. */
static char *run_case(struct event_base *base, const struct oracle_case *oc,
                      int collect_mode, int bytes_hook, char *why,
                      size_t why_size)
{
	struct conn c;
	ck_assert_int_eq(conn_socketpair(&c, base), 0);
	struct evchat *chat = evchat_new(c.bev, 0);
	ck_assert_ptr_nonnull(chat);

	/* The oracle's rule: the i-th frame found sets terms[i % nterms]. */
	struct term_script script = { oc->terms, oc->nterms, 0 };
	recorder_init(&rec);
	rec.user = &script;
	rec.on_found = follow_script;
	case_ended = 0;
	if (bytes_hook)
		evchat_setcb_bytes(chat, NULL, oracle_found_bytes,
		                   oracle_event_cb, &rec);
	else
		evchat_setcb(chat, collect_mode ? recorder_collect_cb : NULL,
		             recorder_found_cb, oracle_event_cb, &rec);
	ck_assert_int_eq(evchat_set_max_frame(chat, 0), 0);
	apply_term(chat, &oc->terms[0]);

	/* One chunk per read, as the oracle calls handle_read per chunk. */
	for (size_t i = 0; i < oc->nchunks; i++) {
		write_all(c.peer, oc->chunk[i], oc->chunk_len[i]);
		run_pending(base);
	}
	conn_close_peer(&c);
	run_until(base, &case_ended, 5000);

	char *result = NULL;
	struct evbuffer *pending = evchat_get_pending(chat);
	if (!case_ended) {
		snprintf(why, why_size,
		         "no event hook call after the peer "
		         "closed");
	} else if (!(rec.events[0] & EVCHAT_EVENT_EOF)) {
		snprintf(why, why_size, "event hook got 0x%x, not EOF",
		         (unsigned)rec.events[0]);
	} else if (collect_mode && evbuffer_get_length(pending) != 0) {
		snprintf(why, why_size,
		         "collect mode, yet %zu bytes pending "
		         "after EOF (evchat.h: they go to collect and the "
		         "buffer is empty)",
		         evbuffer_get_length(pending));
	} else {
		struct evbuffer *out = evbuffer_new();
		ck_assert_ptr_nonnull(out);
		evbuffer_add_printf(out, "%zu", rec.nframes);
		for (size_t i = 0; i < rec.nframes; i++) {
			evbuffer_add_printf(out, " ");
			add_hex_token(out, rec.frames, rec.frame_len[i]);
		}
		struct evbuffer *residue = collect_mode ? rec.collecting
		                                        : pending;
		evbuffer_add_printf(out, " ");
		add_hex_token(out, residue, evbuffer_get_length(residue));
		result = buffer_to_string(out);
		evbuffer_free(out);
	}

	evchat_free(chat);
	recorder_clear(&rec);
	return result;
}

static void report_case(size_t i, int collect_mode, int bytes_hook,
                        const char *actual, const char *why)
{
	struct evbuffer *json = evbuffer_new();
	ck_assert_ptr_nonnull(json);
	add_case_json(json, &cases[i]);
	char *input = buffer_to_string(json);
	evbuffer_free(json);
	ck_abort_msg("case %zu of %zu (seed %llu), %s mode%s, differs from "
	             "asynchat.\n  input:    %s  asynchat: %s\n  evchat:   %s",
	             i, ncases, seed, collect_mode ? "collect" : "frame",
	             bytes_hook ? " (bytes hook)" : "", input,
	             cases[i].expected, actual ? actual : why);
	free(input);
}

static void run_all(int collect_mode)
{
	ck_assert_msg(oracle_error[0] == '\0', "%s", oracle_error);
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	size_t ran = 0;
	for (size_t i = 0; i < ncases; i++) {
		if (collect_mode && i % COLLECT_EVERY != 0)
			continue;
		char why[256] = "";
		int bytes_hook = !collect_mode && i % 2 == 1;
		char *actual = run_case(base, &cases[i], collect_mode,
		                        bytes_hook, why, sizeof(why));
		if (actual == NULL || strcmp(actual, cases[i].expected) != 0)
			report_case(i, collect_mode, bytes_hook, actual, why);
		free(actual);
		ran++;
	}
	ck_assert_uint_gt(ran, 0);
	printf("%s mode: %zu cases agree with asynchat%s\n",
	       collect_mode ? "collect" : "frame", ran,
	       collect_mode ? "" : " (every other one through the bytes hook)");
	event_base_free(base);
}

START_TEST(test_frame_mode_matches_asynchat)
{
	run_all(0);
}
END_TEST

START_TEST(test_collect_mode_matches_asynchat)
{
	run_all(1);
}
END_TEST

static size_t env_number(const char *name, size_t fallback)
{
	const char *s = getenv(name);
	if (s == NULL || *s == '\0')
		return fallback;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (*end != '\0') {
		fprintf(stderr, "%s=%s is not a number\n", name, s);
		exit(EXIT_FAILURE);
	}
	return (size_t)n;
}

int main(void)
{
	/* A peer that closes while we write must give EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	require_asynchat();

	ncases = env_number("EVCHAT_ORACLE_CASES", DEFAULT_CASES);
	seed = env_number("EVCHAT_ORACLE_SEED", 1);
	if (ncases == 0)
		ncases = 1;
	cases = calloc(ncases, sizeof(*cases));
	if (cases == NULL) {
		perror("calloc");
		return EXIT_FAILURE;
	}
	prng_state = seed;
	for (size_t i = 0; i < ncases; i++)
		generate_case(&cases[i]);
	/* Once, before Check forks: the tests inherit the answers. */
	run_oracle();

	Suite *suite = suite_create("oracle");
	TCase *tc = tcase_create("asynchat");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_frame_mode_matches_asynchat);
	tcase_add_test(tc, test_collect_mode_matches_asynchat);
	suite_add_tcase(suite, tc);

	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	for (size_t i = 0; i < ncases; i++)
		free(cases[i].expected);
	free(cases);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
