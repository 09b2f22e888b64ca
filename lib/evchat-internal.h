/*
 * evchat internals shared by the files of lib/. Never installed.
 */
#ifndef EVCHAT_INTERNAL_H_INCLUDED_
#define EVCHAT_INTERNAL_H_INCLUDED_

#include <errno.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "evchat.h"

/* A terminator this short is kept in the channel itself (most protocols
 * end lines with one or two bytes), its failure table a byte an entry. */
#define EVCHAT__SHORT_TERM 4

/* A terminator longer than EVCHAT__SHORT_TERM: its failure table, then its
 * bytes, in one block kept for reuse while a short one is in use. */
struct evchat__long_term {
	size_t capacity;  /* entries in the table, bytes after it */
	size_t failure[]; /* failure[i]: longest proper border of bytes[0..i] */
};

/* The current terminator. A string is kept with its KMP failure table so
 * that the partial match at the end of a buffer is found in linear time
 * however long the terminator is. Storage is reused across changes, so a
 * found hook that switches terminators on every frame allocates nothing.
 * A length field's layout and a header decoder are in the channel's extra
 * state (x->field, x->decode). */
struct evchat__terminator {
	unsigned kind : 3; /* enum evchat_term */
	/* EVCHAT_EOL_CRLF: the search is for "\n" and a "\r" before it is
	 * part of the terminator when present. */
	unsigned optional_cr : 1;
	unsigned in_body : 1;  /* LENGTH, HEADER: the header was decoded */
	unsigned in_short : 1; /* the string and its table are in `short_` */
	unsigned trailer : 1;  /* COUNT: a trailer must follow the count */
	/* The rest of the bit-fields' word: a short string, then its failure
	 * table's entries 1 to len - 1 (entry 0 is always 0). */
	unsigned char short_[2 * EVCHAT__SHORT_TERM - 1];
	struct evchat__long_term *long_; /* NULL until a long one is set */
	ev_uint32_t len; /* of the string (STRING, LINE): under 4 GiB */
	/* A count's trailer of up to 4 bytes: kept apart from the string, a
	 * protocol that switches between lines and counts with a trailer
	 * frame after frame (Redis) stores neither again each time. */
	unsigned char trailer_short[4];
	ev_uint64_t remaining; /* COUNT; LENGTH once the header is read */
};

/* The string searched for (STRING, LINE), or a long count trailer. */
static inline const unsigned char *
evchat__term_bytes(const struct evchat__terminator *term)
{
	return term->in_short ? term->short_
	                      : (const unsigned char *)(term->long_->failure +
	                                                term->long_->capacity);
}

/* One queued output item that could not go straight into the
 * bufferevent's output buffer because something ahead of it waits. */
enum evchat__item_kind {
	EVCHAT__ITEM_DATA,
	EVCHAT__ITEM_FILE,
	EVCHAT__ITEM_PRODUCER
};

struct evchat__item {
	struct evchat__item *next;
	enum evchat__item_kind kind;
	struct evbuffer *data; /* EVCHAT__ITEM_DATA */
	int fd;                /* EVCHAT__ITEM_FILE */
	ev_off_t offset;
	ev_off_t length;
	evchat_more_cb more; /* EVCHAT__ITEM_PRODUCER */
	void (*release)(void *arg);
	void *arg;
};

/* Work deferred to the event loop so that no hook runs from inside a call
 * the user made. */
#define EVCHAT__DEFER_INPUT 0x01u  /* rescan buffered input */
#define EVCHAT__DEFER_OUTPUT 0x02u /* pull producers, finish a close */
#define EVCHAT__DEFER_RESUME 0x04u /* read again after a pause */

/* State that few channels need, in a block of its own made on first need
 * (evchat__extra()), so that a plain socket channel, busy or idle, does
 * not carry it: the layers below a filter or TLS bufferevent, the close's
 * poll timer, the frame and write timeouts, a length field's layout, the
 * count of a frame skipped under LIMIT_DISCARD, a producer's scratch,
 * settings changed from their defaults. */
struct evchat__extra {
	/* The bufferevents below chat->bev (a filter's or TLS layer's
	 * underlying ones, top down), whose output counts as queued, with
	 * our callback on each of those output buffers. */
	struct bufferevent **lower;
	struct evbuffer_cb_entry **lower_cbs;
	struct event *lower_wake; /* activated when a lower layer drains */
	/* While an end is held (end_held): our callback on the input of the
	 * layer below chat->bev, whose reads may bring nothing to frame. */
	struct evbuffer_cb_entry *below_cb;
	size_t nlower;

	/* Closing: the layer being flushed (0 is chat->bev, i is
	 * lower[i - 1]) and a timer for what gives no event (a lower layer
	 * on its own, TLS wanting to write, the peer's acknowledgements). */
	size_t shut_layer;
	struct event *shut_timer;
	size_t shut_left;             /* bytes not yet delivered at last look */
	struct timeval shut_progress; /* when shut_left last went down */
	unsigned shut_polls;          /* looks taken so far (see poll_later) */
	struct timeval write_timeout; /* for the parts libevent cannot time */
	/* Lingering (see lingers()): since when, and when the peer was last
	 * heard sending, in monotonic milliseconds; set once everything of
	 * ours was delivered. */
	ev_int64_t linger_since, linger_heard;
	unsigned lingering : 1;

	/* The frame timeout: armed while a frame is in progress. */
	struct event *frame_timer;
	struct timeval frame_timeout;
	struct timeval frame_started;
	unsigned frames_ended; /* bumped at every end of a frame while a
	                          frame timeout is set (evchat__count_frame) */
	unsigned frame_timed;  /* frames_ended when it started */

	struct evchat_length_field field; /* the last length terminator */
	evchat_header_cb decode;          /* the last header decoder, */
	void *decode_arg;                 /* its argument */
	size_t max_header;                /* and its header limit */
	struct evbuffer *header;   /* a length header split between reads,
	                            being gathered (NULL while there is
	                            none; see lib/spare.c) */
	ev_uint64_t discarding;    /* bytes of the frame being skipped so far */
	ev_uint64_t discarded;     /* size of the last skipped frame */
	struct evbuffer *produced; /* a producer's scratch output */
	struct evchat__item *running;  /* the producer whose more() runs */
	struct evchat__item *released; /* discarded, released from the loop */
	size_t out_buffer_size;        /* set: see evchat__out_buffer_size() */
	size_t write_low, write_high;  /* set: see evchat__write_low() */
	void (*release)(void *arg);    /* evchat_set_release_cb() */
};

/* Causes of events, as recorded in chat->reported: the public flags,
 * with a timeout told apart by its direction, since a read timeout leaves
 * output working and a write timeout may still follow it. */
#define EVCHAT__READ_TIMEOUT 0x10000u
#define EVCHAT__WRITE_TIMEOUT 0x20000u

struct evchat {
	struct bufferevent *bev;
	/* Generations, compared across a hook's call (16 bits: a hook would
	 * have to change the terminator 65,536 times for one to look
	 * unchanged). */
	ev_uint16_t term_gen;  /* bumped by every terminator change, so the
	                          input loop sees changes made by its hooks */
	ev_uint16_t input_gen; /* bumped when buffered input is discarded */
	/* How many calls into the channel from the event loop are on the
	 * stack. evchat_free() inside a hook only marks the channel; the last
	 * of those calls to return frees it. */
	short depth;
	/* Calls made through the API (evchat__lock) on the stack. libevent
	 * may run our read or write callback synchronously inside one (a
	 * filter or pair moving pushed bytes on); such a callback only
	 * schedules its work, so no hook runs inside a user's call. */
	short api_depth;

	evchat_collect_cb collect;
	evchat_found_cb found;
	evchat_found_bytes_cb found_bytes; /* beside found: lent frames only */
	evchat_event_cb event;
	evchat_writable_cb writable;
	void *arg;

	struct evchat__terminator term;
	struct evbuffer *in; /* read but not yet framed (taken from the
	                         bufferevent's input buffer at each read);
	                         NULL while empty, outside the input loop
	                         (see lib/spare.c) */
	size_t lent;         /* bytes lent to the found_bytes hook (or
	                         copied for found) while it runs, at the
	                         front of `in` or in the read scratch: they
	                         stay put even if the hook discards the
	                         input, and `in` is not drained under them */
	/* Frame mode: the current frame gathered so far. Collect mode: the
	 * bytes being handed to the collect hook. Taken from the spares by
	 * the input loop and given back once it and `in` and `header` are
	 * gone, unless evchat_get_pending() lent it out (frame_kept). */
	struct evbuffer *frame;
	size_t frame_bytes; /* collect mode: bytes of the current frame
	                         already handed to the hook */
	size_t max_frame;   /* 0: no limit */

	/* Pushed by hooks while the input loop runs, with nothing queued:
	 * the bytes of a whole read's replies, handed to the bufferevent in
	 * one move when the loop ends. Its output buffer runs libevent's
	 * callbacks on every change, which would cost more per reply than
	 * the framing. Made on first use. */
	struct evbuffer *batch;
	/* Room at the batch's end: a hook's push is then one copy into it.
	 * Reserved in the batch (evbuffer_reserve_space), or, with
	 * EVCHAT_OPT_DIRECT_WRITE and the batch empty, the thread's reply
	 * scratch (room_scratch), written to the socket from there. Open
	 * only while the input loop batches with nothing queued; settled
	 * into the batch by evchat__batch_settle() before anything else
	 * touches the batch. */
	unsigned char *room;
	ev_uint32_t room_len; /* at most 1 MiB (lib/batch.c) */
	ev_uint32_t room_used;

	/* Output waiting behind something: a ring, the tail's next is the
	 * head (evchat__queue_head()). NULL when nothing waits. */
	struct evchat__item *queue_tail;

	/* Work deferred to the loop (lib/defer.c): the base's deferrer,
	 * and this channel's place in its queue while work is due. */
	struct evchat__deferrer *deferrer;
	struct evchat *defer_prev;
	struct evchat *defer_next;

	struct evchat__extra *extra; /* NULL until needed */

	/* Small values as bit-fields: a channel's every byte counts, times
	 * ten thousand idle connections. Three 32-bit units, each filled:
	 * first 32 flags (those evchat__input_blocked() tests among them, so
	 * one load tests them all), then the wide fields with the rest. */
	unsigned freeing : 1;
	unsigned pending_after_lend : 1; /* input failed while a frame was
	                         lent: its rest goes to the pending buffer
	                         once the hook returns */
	unsigned in_input : 1;           /* the input loop is running */
	unsigned in_output : 1;          /* the output queue is being drained */
	unsigned closing : 1;  /* evchat_close_when_done() was called */
	unsigned failed : 1;   /* error or timeout: no more I/O */
	unsigned skipping : 1; /* LIMIT_DISCARD: dropping the current frame */
	unsigned partial : 1;  /* found is given a piece, more follows */
	unsigned paused : 1;   /* evchat_pause_input() */
	unsigned eof_seen : 1; /* the bufferevent reported the peer's EOF */
	unsigned eof_pending : 1;   /* ... while paused: finish it on resume */
	unsigned recheck_frame : 1; /* the frame may be over the limit, or
	                               hold bytes collect has not seen, with
	                               no byte gathered since (a half-read
	                               header joined it, the limit was
	                               lowered): the input loop applies the
	                               policy before going on */
	unsigned refused : 1;       /* input ended on a refused frame */
	unsigned read_done : 1;     /* EOF or a too-long frame: no more input */
	unsigned producer_waits : 1;   /* head producer said EVCHAT_AGAIN */
	unsigned resume_requested : 1; /* evchat_resume() since last more() */
	unsigned running_dropped : 1;  /* `running` was discarded meanwhile */
	unsigned unwritable : 1;       /* above the high watermark */
	unsigned unwritable_told : 1;  /* ... as the writable hook last heard */
	unsigned flow_flipped : 1;     /* unwritable changed since last told */
	unsigned flow_stale : 1;   /* pushed in the input loop since the output
	                            was last counted */
	unsigned room_scratch : 1; /* the room is the thread's scratch */
	unsigned room_lost : 1;    /* its bytes could not be moved (out of
	                              memory): report the failure */
	unsigned shutting : 1;     /* close or half-close: flush, shut down */
	unsigned shut_layer_done : 1; /* shut_layer was flushed and told */
	unsigned shut_down : 1;       /* the write side is shut down */
	unsigned in_shutdown : 1;  /* evchat__shutdown_run() is on the stack */
	unsigned close_heard : 1;  /* input discarded during a close, since the
	                              close last looked (see lingers()) */
	unsigned delivered : 1;    /* closing: every byte of ours (TLS's
	                              close_notify aside) was acknowledged,
	                              so a reset from the peer loses none;
	                              as far as the counts see: bytes a
	                              filter keeps in a state of its own
	                              are not */
	unsigned shut_reading : 1; /* reading (to discard) while a close
	                              waits for the peer */
	unsigned has_read_timeout : 1;
	unsigned has_write_timeout : 1;
	unsigned deferred_work : 3; /* EVCHAT__DEFER_* bits (lib/defer.c) */
	unsigned limit_policy : 2; /* enum evchat_limit_policy, for max_frame */
	unsigned eof_events : 8;   /* the flags libevent gave with the EOF */
	unsigned reported : 18;    /* causes already reported (see above) */
	unsigned read_timeout_first : 1; /* both set, the read one shorter */
	unsigned options : 3; /* EVCHAT_OPT_* given to evchat_new() */
	/* A socket error met by a direct read (an errno value), to report
	 * once the read's frames are done. */
	unsigned read_error : 16;
	/* A count's trailer of up to 4 bytes (term.trailer_short), or 0: a
	 * longer one, in the terminator's string. */
	unsigned trailer_len : 3;
	unsigned has_frame_timeout : 1;
	unsigned frame_clock : 1; /* frame_timer is armed */
	unsigned frame_kept : 1;  /* `frame` is lent for the channel's life */
	unsigned reads_big : 1;   /* the last own read filled most of its size:
	                           read into the input's chains, not copied */
	unsigned count_check : 1; /* a count's frame may be over the limit
	                             as a whole: the input loop checks it */
	unsigned end_due : 1;     /* a count was reached as a hook set a new
	                             terminator and stopped the loop (pause,
	                             discard): its frame ends first thing */
	unsigned on_pair : 1;     /* the bottom layer is a bufferevent pair */
	unsigned end_held : 1;    /* a TLS filter's end come while input was
	                             paused or bytes below it unread */
	unsigned held_eof : 1;    /* ... an EOF (else an error) */
};

/* The current count's trailer (term.trailer set): its bytes and *len. */
static inline const unsigned char *evchat__trailer(const struct evchat *chat,
                                                   size_t *len)
{
	if (chat->trailer_len > 0) {
		*len = chat->trailer_len;
		return chat->term.trailer_short;
	}
	*len = chat->term.len;
	return evchat__term_bytes(&chat->term);
}

/* lib/alloc.c */
/* The library's own allocations: malloc, calloc and free unless a test
 * replaced them (NULL restores those), to count or fail them. calloc
 * checks n * size for overflow. */
void *evchat__malloc(size_t size);
void *evchat__calloc(size_t n, size_t size);
void evchat__free(void *ptr);
void evchat__set_mem_functions(void *(*malloc_fn)(size_t size),
                               void (*free_fn)(void *ptr));

/* lib/channel.c */
/* An entry from the event loop: the lock, and a reference that keeps the
 * channel's memory until the outermost leave. Returns the channel this
 * thread was inside before, for the matching leave to put back (kept on
 * the caller's stack, not in every channel). */
struct evchat *evchat__enter(struct evchat *chat);
/* Returns 1 if the channel was freed: the caller must not touch it. */
int evchat__leave(struct evchat *chat, struct evchat *outer);
/* The bufferevent's event callback. */
void evchat__event_cb(struct bufferevent *bev, short what, void *ctx);
/* Runs the channel's deferred work (from lib/defer.c, on the loop). */
void evchat__deferred_run(struct evchat *chat);
/* The channel's extra state, made zeroed if it had none; NULL with errno
 * ENOMEM. */
struct evchat__extra *evchat__extra(struct evchat *chat);
/* evchat_set_out_buffer_size()'s size, or the default. */
static inline size_t evchat__out_buffer_size(const struct evchat *chat)
{
	return chat->extra != NULL ? chat->extra->out_buffer_size
	                           : EVCHAT_DEFAULT_OUT_BUFFER_SIZE;
}
/* The write watermarks set, or the defaults. */
static inline size_t evchat__write_low(const struct evchat *chat)
{
	return chat->extra != NULL ? chat->extra->write_low
	                           : EVCHAT_DEFAULT_WRITE_LOW;
}
static inline size_t evchat__write_high(const struct evchat *chat)
{
	return chat->extra != NULL ? chat->extra->write_high
	                           : EVCHAT_DEFAULT_WRITE_HIGH;
}
/* A length header being gathered, or NULL. */
static inline struct evbuffer *evchat__header(const struct evchat *chat)
{
	return chat->extra != NULL ? chat->extra->header : NULL;
}
/* A frame ended: the frame clock restarts for the next one. */
static inline void evchat__count_frame(struct evchat *chat)
{
	if (chat->has_frame_timeout)
		chat->extra->frames_ended++;
}
/* The number of layers below chat->bev. */
static inline size_t evchat__nlower(const struct evchat *chat)
{
	return chat->extra != NULL ? chat->extra->nlower : 0;
}
/* Reports a cause to the event hook once; returns 1 if the channel is
 * being freed afterwards (the caller must stop). */
int evchat__report(struct evchat *chat, short events);

/* The channel whose loop entry this thread is inside, holding its lock:
 * calls from its hooks (pushes, mostly) need not take the lock again. A
 * recursive bufferevent lock costs little, but taking it also counts a
 * reference up and down, which for a reply pushed in two pieces is more
 * than the framing of its request. */
#if defined(__GNUC__) || defined(__clang__)
/* initial-exec: a plain load from the thread pointer, where the default
 * model of a shared library calls __tls_get_addr on every access. */
extern __thread struct evchat *evchat__entered
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
#define EVCHAT__ENTERED(chat) (evchat__entered == (chat))
#else
#define EVCHAT__ENTERED(chat) 0
#endif

/* Holds the bufferevent's lock (recursive; a no-op without threads)
 * around a call from a user's thread. unlock returns r with errno kept.
 * Inline: a hook's calls (a protocol that sets a terminator and a limit
 * for every frame makes several per frame) only count their depth. */
static inline void evchat__lock(struct evchat *chat)
{
	if (!EVCHAT__ENTERED(chat))
		bufferevent_lock(chat->bev);
	chat->api_depth++;
}
static inline int evchat__unlock(struct evchat *chat, int r)
{
	chat->api_depth--;
	if (!EVCHAT__ENTERED(chat)) {
		int err = errno;
		bufferevent_unlock(chat->bev);
		errno = err;
	}
	return r;
}

/* lib/defer.c */
/* Joins the deferrer of the channel's base, made if it is the first
 * channel there. 0, or -1 with errno ENOMEM. */
int evchat__defer_attach(struct evchat *chat);
/* Leaves it, dropping any work due; the last channel frees it. */
void evchat__defer_detach(struct evchat *chat);
/* Asks for work to be done from the loop, soon (caller holds the lock). */
void evchat__defer(struct evchat *chat, unsigned work);

/* lib/batch.c */
/* Hands what hooks pushed during the input loop to the bufferevent. 0, or
 * -1 (ENOMEM) if the scratch room's bytes could not be moved: the channel
 * has failed, and the input loop's end reports it. */
int evchat__batch_flush(struct evchat *chat);
/* The same at the end of the input loop: with EVCHAT_OPT_DIRECT_WRITE,
 * first writes what the socket takes. */
void evchat__batch_send(struct evchat *chat);
/* Settles the bytes copied into the batch's room into the batch, which
 * is then an ordinary buffer again; 0, or -1 as evchat__batch_flush(). */
int evchat__batch_settle(struct evchat *chat);
/* Drops what the batch and its room hold. */
void evchat__batch_discard(struct evchat *chat);

/* lib/spare.c */
/* An empty evbuffer: one this thread gave back, or a new one (NULL out of
 * memory). */
struct evbuffer *evchat__spare_take(void);
/* Gives back an empty evbuffer that is the library's own (no callbacks,
 * not frozen; lent to a user's hook at most, whose docs forbid both):
 * kept for the thread's next take, or freed. */
void evchat__spare_give(struct evbuffer *buf);
/* The reply scratch's size: a read's replies fit it, as a rule (libevent
 * reads 4 KiB at a time, a direct read 8 KiB more). */
#define EVCHAT__SCRATCH_SIZE (16 * 1024)
/* This thread's reply scratch, EVCHAT__SCRATCH_SIZE bytes, for one
 * channel until it gives it back; NULL if another channel has it (one
 * input loop running inside another's hook), or out of memory. */
unsigned char *evchat__scratch_take(void);
void evchat__scratch_give(void);
/* This thread's read scratch, EVCHAT__READ_SCRATCH_SIZE bytes, for a read
 * of the socket; NULL out of memory, or while its bytes are lent to a
 * hook (an input loop running inside another's hook must read elsewhere). */
#define EVCHAT__READ_SCRATCH_SIZE (12 * 1024)
unsigned char *evchat__read_scratch(void);
/* Marks the read scratch's first n bytes lent to chat's hooks, or free
 * again (NULL, 0); only after evchat__read_scratch() gave it. */
void evchat__read_scratch_lend(const struct evchat *chat, size_t n);
/* How many bytes of the read scratch are lent to chat's hooks: 0 unless
 * one of its hooks runs on a read framed where it lies. */
size_t evchat__read_scratch_lent_to(const struct evchat *chat);
/* Whether this thread has a read scratch, lent or not. */
int evchat__read_scratch_ready(void);

/* lib/buffer.c */
/* Moves n bytes (or all there are) from the front of src to the end of
 * dst: copied when few, whole chains linked when many. 0, or -1 out of
 * memory: then nothing moved, except when n > 4 KiB was neither all of
 * src nor within its first chain (the whole chains may have moved). */
int evchat__buffer_move(struct evbuffer *dst, struct evbuffer *src, size_t n);
/* evbuffer_add(), with a new chain sized for the bytes, not like dst's
 * last one (which may be a 10 MiB reference): 0, or -1 out of memory,
 * nothing added. */
int evchat__buffer_add(struct evbuffer *dst, const void *data, size_t len);
/* Adds head then body (body_len may be 0) to dst in one piece, the space
 * reserved first: all of it, or, out of memory (-1, ENOMEM), none. */
int evchat__buffer_add_two(struct evbuffer *dst, const void *head,
                           size_t head_len, const void *body, size_t body_len);

/* lib/scanner.c */
void evchat__terminator_init(struct evchat__terminator *term);
void evchat__terminator_clear(struct evchat__terminator *term);
int evchat__terminator_set_string(struct evchat__terminator *term,
                                  const void *bytes, size_t len);
int evchat__terminator_set_line(struct evchat__terminator *term,
                                enum evchat_eol eol);
/* Whether the terminator is already this string, or this line ending:
 * setting it again then changes nothing. */
int evchat__terminator_is_string(const struct evchat__terminator *term,
                                 const void *bytes, size_t len);
int evchat__terminator_is_line(const struct evchat__terminator *term,
                               enum evchat_eol eol);
/* Finds the string or line terminator in buf. Returns its offset and sets
 * *match_len to its length there, or returns -1 and sets *held to the
 * number of bytes at the end of buf that may start a terminator (they
 * must wait for more input before they can be framed). When the frame
 * before the terminator lies in buf's first chain, *head points to that
 * chain and *head_len is its length (valid until buf changes); otherwise
 * *head is NULL. `clean`: how many bytes at the start of buf's first
 * chain were searched already and hold no whole terminator (0 if none
 * are known), which the search skips. */
ev_ssize_t evchat__terminator_find(const struct evchat__terminator *term,
                                   struct evbuffer *buf, size_t *match_len,
                                   size_t *held, const unsigned char **head,
                                   size_t *head_len, size_t clean);
/* The same in len contiguous bytes at p that follow a complete frame (or
 * start the input): the offset of the first terminator and its length,
 * or -1 if they hold none whole. */
ev_ssize_t evchat__terminator_find_in(const struct evchat__terminator *term,
                                      const unsigned char *p, size_t len,
                                      size_t *match_len);

/* Whether data followed by ending reads back as exactly one frame: the
 * first terminator in data + ending is found at its very end. */
int evchat__terminator_frames_once(const struct evchat__terminator *term,
                                   const void *data, size_t len,
                                   const void *ending, size_t ending_len);

/* A terminator whose frames are a header and a counted body. */
static inline int evchat__term_has_header(unsigned kind)
{
	return kind == EVCHAT_TERM_LENGTH || kind == EVCHAT_TERM_HEADER;
}

/* lib/length.c */
int evchat__length_field_check(const struct evchat_length_field *field);
/* Decodes the header at the front of buf (offset + size bytes at least):
 * sets *frame_len to the frame's whole length on the wire. Returns 0, or
 * -1 if that length is shorter than the header or not representable. */
int evchat__length_decode(const struct evchat_length_field *field,
                          struct evbuffer *buf, ev_uint64_t *frame_len);
/* The same from the field's size bytes at raw. */
int evchat__length_parse(const struct evchat_length_field *field,
                         const unsigned char *raw, ev_uint64_t *frame_len);
/* Writes the field (field->size bytes) for a payload of len bytes, in a
 * header that the field starts. 0, or -1 with errno. */
int evchat__length_encode(const struct evchat_length_field *field, size_t len,
                          unsigned char raw[8]);

/* Asks the header decoder about the frame at bytes (avail of them, of
 * which it sees at most its header limit): 1 with *header filled in and
 * checked, 0 if more bytes may tell, -1 if the header is invalid (or not
 * decoded within the limit). */
int evchat__header_decode(const struct evchat__extra *x,
                          const unsigned char *bytes, size_t avail,
                          struct evchat_header *header);

/* lib/input.c */
void evchat__read_cb(struct bufferevent *bev, void *ctx);
/* Reading ended on a timeout (idle, or the frame clock): report it. */
void evchat__input_timeout(struct evchat *chat, short events);
/* Whether some bytes of a frame that has not ended have arrived, for the
 * frame clock (never under "none", which has no frames to time). */
int evchat__frame_in_progress(const struct evchat *chat);
/* Runs the framing loop over buffered input. */
void evchat__input_run(struct evchat *chat);
/* The same, after a read of n bytes into `data` (the thread's read
 * scratch), which come after what is buffered: frames lying whole there
 * are delivered from where they are, the rest is copied into the input. */
void evchat__input_run_read(struct evchat *chat, const unsigned char *data,
                            size_t n);
/* The input buffer, taken from the spares if the channel had none; NULL
 * out of memory. */
struct evbuffer *evchat__input_buffer(struct evchat *chat);
/* The same for the frame buffer. */
struct evbuffer *evchat__frame_buffer(struct evchat *chat);
/* The peer's EOF: frames what is buffered, hands held-back bytes over
 * (collect mode) or keeps them pending (frame mode), then reports it;
 * while input is paused, all of that waits for the resume. With `fail`
 * the connection failed too: input ends now and nothing is reported. */
void evchat__input_eof(struct evchat *chat, short events, int fail);
void evchat__input_discard(struct evchat *chat);
/* A terminator changed: frame buffered bytes with it from the loop. */
void evchat__terminator_changed(struct evchat *chat);
/* The deferred half of evchat_resume_input(): enabling reading may run
 * the read callback at once (filters do), so it never happens inside the
 * user's call. */
void evchat__input_resume(struct evchat *chat);

/* lib/flow.c */
/* Finds the layers below chat->bev and watches their output. 0 or -1. */
int evchat__flow_init(struct evchat *chat);
/* Whether the layer below chat->bev holds input chat->bev has not read
 * (a TLS filter held back by a pause or a rate limit). */
int evchat__flow_unread_below(struct evchat *chat);
/* Watches the input of the layer below chat->bev (on), so that a held
 * end is looked at again whenever it is read from, or stops (off). 0, or
 * -1 with errno ENOMEM. */
int evchat__flow_watch_below(struct evchat *chat, int on);
void evchat__flow_clear(struct evchat *chat);
/* Bytes in the output buffers of every layer: what is ahead of the queue. */
size_t evchat__layers_queued(struct evchat *chat);
/* Re-evaluates writability after output grew or shrank; a change the
 * hook has not heard of yet is told from the loop. */
void evchat__flow_check(struct evchat *chat);
/* From the loop: tells the writable hook of a change. 1 if freed. */
int evchat__flow_tell(struct evchat *chat);

/* lib/shutdown.c */
/* The queue and chat->bev's output are empty while shutting: flush the
 * layers below, shut the socket down, then report a close. */
void evchat__shutdown_run(struct evchat *chat);
/* Whether every byte pushed reached the peer (its TCP acknowledged
 * them; the kernel still tells after a reset), so that during a close the
 * peer's end or reset loses nothing. Remembered once true. */
int evchat__close_delivered(struct evchat *chat);
/* The bottom layer's socket, or -1 (a pair, or not set). */
evutil_socket_t evchat__bottom_fd(struct evchat *chat);

/* lib/tls.c */
/* Sends TLS's close_notify if bev is a TLS layer: 0 when sent (or not
 * TLS), 1 when it must be tried again once the socket is writable, -1
 * with errno on failure. */
int evchat__tls_close_notify(struct bufferevent *bev);
/* 1 if bev is a TLS layer that received the peer's close_notify. */
int evchat__tls_closed_cleanly(struct bufferevent *bev);
/* EVCHAT_OPT_DIRECT_READ (lib/direct-read.c): on a plain socket
 * bufferevent, makes its read event the channel's, reading the socket
 * itself (without libevent's FIONREAD before every read); the caller
 * holds the lock. */
void evchat__socket_read_take(struct evchat *chat);
/* Where libevent reads: after a read that filled libevent's cap, moves
 * it into chat->in and reads on from the socket; an error met there is
 * kept in read_error for direct_read_error() to report once the read's
 * frames are delivered. */
void evchat__direct_read(struct evchat *chat);
void evchat__direct_read_error(struct evchat *chat);

/* Whether bev is a bufferevent_openssl layer. */
int evchat__tls_layer(struct bufferevent *bev);
/* Whether bev is a bufferevent_openssl layer still in its handshake. */
int evchat__tls_handshaking(struct bufferevent *bev);
/* Whether a bufferevent_openssl layer's handshake waits to write. */
int evchat__tls_wants_write(struct bufferevent *bev);
/* Whether a bufferevent_openssl layer's socket is still connecting. */
int evchat__tls_connecting(struct bufferevent *bev);

/* lib/timeout.c */
/* Starts, keeps or stops the frame clock after input was framed. 0, or
 * -1 with errno ENOMEM if the clock could not be started. */
int evchat__frame_clock_update(struct evchat *chat);
void evchat__frame_clock_stop(struct evchat *chat);

/* lib/output.c, lib/batch.c */
/* Where bytes pushed now go to keep push order, or NULL (errno set)
 * if pushing is refused (EINVAL, EPIPE) or memory ran out. The batch
 * may have room open: copy into it with evchat__batch_copy(), or settle
 * it before using the buffer. */
struct evbuffer *evchat__push_target(struct evchat *chat);
/* Copies head then body into the batch's room, reserving more as needed:
 * all of it or, out of memory (-1, ENOMEM), none. For a push_target()
 * that was the batch. */
int evchat__batch_copy(struct evchat *chat, const void *head, size_t head_len,
                       const void *body, size_t body_len);
/* A short buffer pushed into the batch is copied into its room, like
 * bytes: a chain of its own would cost more than the copy, there and in
 * the write. */
#define EVCHAT__ROOM_COPY_MAX 512
/* The same for len bytes of buf, which are drained. */
int evchat__batch_take(struct evchat *chat, struct evbuffer *buf, size_t len);
/* Whether a push of len bytes can be copied straight into the room: it
 * comes from the channel's own hook (the loop holds the lock), the room
 * is open (so nothing is queued) and fits it, and push_check() would
 * pass. Such a push sets flow_stale itself, as evchat__pushed() would. */
static inline int evchat__room_fits(const struct evchat *chat, size_t len)
{
	return EVCHAT__ENTERED(chat) && chat->room != NULL &&
	       len <= chat->room_len - chat->room_used && !chat->shutting &&
	       !chat->failed && !chat->freeing;
}
/* Ends a push made under evchat__lock(): re-evaluates writability after
 * a success, unlocks, and returns r with errno kept. */
int evchat__pushed(struct evchat *chat, int r);
void evchat__write_cb(struct bufferevent *bev, void *ctx);
void evchat__output_run(struct evchat *chat);
/* Output cannot go on: reports the error (or write timeout) once. */
void evchat__output_failed(struct evchat *chat, int err, short events);
/* The first item waiting, or NULL. */
static inline struct evchat__item *evchat__queue_head(const struct evchat *chat)
{
	return chat->queue_tail != NULL ? chat->queue_tail->next : NULL;
}
/* Bytes pushed but still waiting in the queue's items. */
size_t evchat__items_queued(const struct evchat *chat);
/* Drops queued items, releasing producers once each: `now`, or from the
 * loop (the deferred output work) for evchat_discard_buffers() made
 * outside the channel's hooks, maybe on another thread. */
void evchat__output_discard(struct evchat *chat, int now);
/* Releases the items that evchat__output_discard() left for the loop. */
void evchat__output_release(struct evchat *chat);

#endif /* EVCHAT_INTERNAL_H_INCLUDED_ */
