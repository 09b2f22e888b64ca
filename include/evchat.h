/*
 * evchat - asynchat-style framed channels on libevent bufferevents.
 */

/**
 * @file evchat.h
 * @brief Frame delimiter- and length-framed protocols on a bufferevent.
 *
 * A channel (struct evchat) wraps one bufferevent, usually one connection.
 * It has a terminator that says where the current incoming frame ends: a
 * byte string (such as "\r\n"), a byte count, or none, as in asynchat;
 * beyond it, a line ending (LF, lenient or strict CRLF, NUL) or a length
 * field in each frame's header. Bytes that arrive are
 * either gathered by the channel and handed whole to the @c found hook
 * ("frame mode", when no collect hook is set), or passed as they arrive to
 * the @c collect hook, with @c found marking the end of each frame. The
 * @c found hook may change the terminator for what follows; the change
 * applies to bytes that are already buffered.
 *
 * Output is a FIFO of pushed bytes, files and producers, moved into the
 * bufferevent's output buffer as the peer accepts it.
 *
 * A line echo server's channel, in full:
 * @code
 * static void on_line(struct evchat *chat, struct evbuffer *line, void *arg)
 * {
 *     evchat_push_buffer(chat, line);     // moves the line's bytes, no copy
 *     evchat_push(chat, "\n", 1);
 * }
 *
 * static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
 *                       struct sockaddr *sa, int salen, void *arg)
 * {
 *     struct event_base *base = evconnlistener_get_base(l);
 *     struct bufferevent *bev =
 *         bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
 *     struct evchat *chat = evchat_new(bev, EVCHAT_OPT_AUTOFREE);
 *     if (chat == NULL)
 *         return;                           // bev was freed for us
 *     evchat_setcb(chat, NULL, on_line, NULL, NULL);
 *     evchat_set_terminator(chat, "\n", 1);
 * }
 * @endcode
 *
 * @section lifecycle Lifecycle of a channel
 * -# evchat_new() takes a bufferevent and enables reading on it. The
 *    terminator is "none" until one is set.
 * -# Frames are delivered through @c collect / @c found while the peer sends.
 * -# The connection ends in exactly one of these ways, each reported once
 *    through the @c event hook with its flag:
 *    - #EVCHAT_EVENT_EOF: the peer closed its side. Unframed bytes are not
 *      lost (see evchat_get_pending()). The channel can still push; a reply
 *      pushed from the hook followed by evchat_close_when_done() reaches
 *      the peer.
 *    - #EVCHAT_EVENT_ERROR: a socket or producer error (errno is set).
 *    - #EVCHAT_EVENT_TIMEOUT: a bufferevent timeout fired.
 *    - #EVCHAT_EVENT_FRAME_TOO_LONG: a frame exceeded evchat_set_max_frame();
 *      every frame before it was delivered. Reading has stopped; pushing
 *      still works, so an error reply can be sent before closing.
 *    - #EVCHAT_EVENT_FRAME_INVALID: a length field described an impossible
 *      frame; as for a too-long frame.
 *    - #EVCHAT_EVENT_CLOSED: evchat_close_when_done() finished: every byte
 *      queued before it reached the kernel (or the next bufferevent layer).
 * -# The user calls evchat_free(), typically from the @c event hook. With
 *    #EVCHAT_OPT_AUTOFREE the channel frees itself instead: at once after
 *    an error or timeout hook, and after flushing what was pushed when the
 *    hook reported EOF, a too-long or invalid frame, or a finished close.
 *
 * @section rules Rules that hold everywhere
 * - Every function may be called from inside any hook of the same channel,
 *   including evchat_free(). After evchat_free() returns, no hook of that
 *   channel runs again.
 * - Functions return 0 (or a pointer) on success and -1 (or NULL) with
 *   @c errno set on failure. When a call that takes a callback fails, that
 *   callback is never called.
 * - Ownership words: a function @b takes an object (the channel frees it),
 *   @b borrows it (valid until the hook or call returns), @b copies it, or
 *   @b moves its contents (the source is left empty).
 * - A channel belongs to the thread that runs its event base.
 *
 * @section differences Where evchat deliberately differs from asynchat
 * - A count terminator of 0 delivers an empty frame at once (asynchat treats
 *   0 as "none" and waits forever, e.g. on Content-Length: 0).
 * - An empty string terminator is rejected with EINVAL; say "none".
 * - At end of stream, bytes that never saw their terminator, including a
 *   partial terminator held back for matching, are kept (asynchat drops the
 *   partial terminator).
 * - After evchat_close_when_done() no more frames are delivered, and
 *   pushing fails with EPIPE instead of being dropped silently.
 * - Frames are limited in size (evchat_set_max_frame()), so a peer cannot
 *   make the channel buffer without bound.
 * - A terminator set from @c collect while a count completes is kept for
 *   the next frame (asynchat overwrites it with "none"); one set from
 *   @c collect while a partial string terminator is held back applies to
 *   those held bytes at once (asynchat waits for more input first).
 */
#ifndef EVCHAT_H_INCLUDED_
#define EVCHAT_H_INCLUDED_

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EVCHAT_BUILDING_LIBRARY) && defined(__GNUC__)
#define EVCHAT_EXPORT __attribute__((visibility("default")))
#else
#define EVCHAT_EXPORT
#endif

/** @name Options for evchat_new() */
/**@{*/
/** The channel frees itself when its connection has ended (see the
 *  lifecycle in the file overview); the user then never calls
 *  evchat_free() unless it wants to end the channel early. */
#define EVCHAT_OPT_AUTOFREE 0x01u
/**@}*/

/** @name Flags passed to the event hook
 * The libevent flags keep their values, so BEV_EVENT_* tests work too. */
/**@{*/
#define EVCHAT_EVENT_READING BEV_EVENT_READING     /**< while reading */
#define EVCHAT_EVENT_WRITING BEV_EVENT_WRITING     /**< while writing */
#define EVCHAT_EVENT_EOF BEV_EVENT_EOF             /**< the peer closed */
#define EVCHAT_EVENT_ERROR BEV_EVENT_ERROR         /**< errno says which */
#define EVCHAT_EVENT_TIMEOUT BEV_EVENT_TIMEOUT     /**< a timeout fired */
#define EVCHAT_EVENT_CONNECTED BEV_EVENT_CONNECTED /**< connect() done */
/** evchat_close_when_done() has written everything and finished. */
#define EVCHAT_EVENT_CLOSED 0x0100
/** A frame grew past its limit under #EVCHAT_LIMIT_CLOSE; reading has
 *  stopped. */
#define EVCHAT_EVENT_FRAME_TOO_LONG 0x0200
/** A frame over its limit was skipped under #EVCHAT_LIMIT_DISCARD; the
 *  connection goes on. evchat_get_discarded() tells how many bytes it had.
 *  Reported once per skipped frame, when its end has been seen. */
#define EVCHAT_EVENT_FRAME_DISCARDED 0x0400
/** A length field described an impossible frame (shorter than its own
 *  header); reading has stopped, as with a too-long frame. */
#define EVCHAT_EVENT_FRAME_INVALID 0x0800
/**@}*/

/** Returned by a producer's @c more hook when it has nothing to give yet;
 *  call evchat_resume() once it has. */
#define EVCHAT_AGAIN (-2)

/** The default limit on one frame's size: 1 MiB. */
#define EVCHAT_DEFAULT_MAX_FRAME ((size_t)1 << 20)
/** The default read size, as asynchat's ac_in_buffer_size: 64 KiB. */
#define EVCHAT_DEFAULT_IN_BUFFER_SIZE ((size_t)65536)
/** The default producer refill level, as asynchat's ac_out_buffer_size. */
#define EVCHAT_DEFAULT_OUT_BUFFER_SIZE ((size_t)65536)

/** What ends the current incoming frame. */
enum evchat_term {
	EVCHAT_TERM_NONE = 0, /**< nothing: every byte is collected */
	EVCHAT_TERM_STRING,   /**< a byte string, not part of the frame */
	EVCHAT_TERM_COUNT,    /**< a number of bytes */
	EVCHAT_TERM_LINE,     /**< a line ending (see enum evchat_eol) */
	EVCHAT_TERM_LENGTH    /**< a length field in each frame's header */
};

/** Line endings for evchat_set_terminator_line(). The frame never contains
 *  the line ending. */
enum evchat_eol {
	EVCHAT_EOL_LF = 1,      /**< "\n" */
	/** "\n" with an optional "\r" before it, so "PING\n" and
	 *  "PING\r\n" both frame as "PING" (Redis inline commands, lenient
	 *  SMTP); a lone "\r" elsewhere stays in the frame. */
	EVCHAT_EOL_CRLF,
	EVCHAT_EOL_CRLF_STRICT, /**< exactly "\r\n" */
	EVCHAT_EOL_NUL          /**< "\0" (STOMP, some legacy protocols) */
};

/** The length field of evchat_set_terminator_length(). A frame on the wire
 *  is @c offset bytes, then the field (@c size bytes, an unsigned integer),
 *  then the rest; its whole length is offset + size + value + adjust.
 *  Before delivery, @c strip bytes are removed from its front. */
struct evchat_length_field {
	size_t offset;     /**< bytes before the field */
	unsigned size;     /**< the field's width: 1, 2, 4 or 8 bytes */
	unsigned flags;    /**< 0 (big endian) or #EVCHAT_LENGTH_LITTLE_ENDIAN */
	ev_int64_t adjust; /**< added to the value: e.g. -size if the value
	                        counts the field itself */
	size_t strip;      /**< header bytes dropped from the delivered frame;
	                        at most offset + size */
};
/** The length field is little endian. */
#define EVCHAT_LENGTH_LITTLE_ENDIAN 0x01u

/** What happens to a frame over its limit (evchat_set_frame_limit()). */
enum evchat_limit_policy {
	/** End the connection with #EVCHAT_EVENT_FRAME_TOO_LONG, after every
	 *  earlier frame was delivered. The default: fail fast. */
	EVCHAT_LIMIT_CLOSE = 0,
	/** Skip the frame up to its end, report #EVCHAT_EVENT_FRAME_DISCARDED
	 *  once, and go on with the next frame. Memory stays bounded. */
	EVCHAT_LIMIT_DISCARD,
	/** Deliver the frame in pieces of at most the limit; inside @c found,
	 *  evchat_frame_is_partial() tells the pieces from the last one. */
	EVCHAT_LIMIT_SPLIT
};

/** One channel: opaque. */
struct evchat;

/* ------------------------------------------------------------------ */
/** @name Hooks */
/**@{*/

/**
 * Receives incoming bytes of the current frame as they arrive (collect mode).
 * @param chat the channel
 * @param data the new bytes, borrowed. The hook may read, drain or move
 *        them; whatever it leaves is discarded when it returns. Never empty.
 * @param arg the pointer given to evchat_setcb()
 */
typedef void (*evchat_collect_cb)(struct evchat *chat, struct evbuffer *data,
                                  void *arg);

/**
 * Marks the end of a frame: its terminator was seen or its count reached.
 * @param chat the channel
 * @param frame in frame mode (no collect hook), the whole frame without its
 *        terminator, borrowed: the hook may read, drain or move it (for
 *        example into evchat_push_buffer()), and what it leaves is
 *        discarded. In collect mode, NULL.
 * @param arg the pointer given to evchat_setcb()
 */
typedef void (*evchat_found_cb)(struct evchat *chat, struct evbuffer *frame,
                                void *arg);

/**
 * Reports a connection event: a combination of EVCHAT_EVENT_* flags.
 * Each cause (EOF, error, timeout, too-long frame, closed) is reported at
 * most once. See the lifecycle in the file overview for what follows each.
 */
typedef void (*evchat_event_cb)(struct evchat *chat, short events, void *arg);

/**
 * Produces more output on demand (see evchat_push_producer()).
 * @param chat the channel
 * @param out an empty buffer, borrowed: append the next bytes to it
 * @param want about how many bytes are wanted now (never 0); more or fewer
 *        is fine
 * @param arg the producer's own pointer
 * @return the number of bytes appended (> 0); 0 when the producer is
 *         exhausted (bytes appended by this same call are still sent);
 *         #EVCHAT_AGAIN when it has nothing yet (call evchat_resume()
 *         later); -1 on failure, which ends the connection with
 *         #EVCHAT_EVENT_ERROR. Returning > 0 without appending anything is
 *         treated as a failure, since it would never make progress.
 */
typedef int (*evchat_more_cb)(struct evchat *chat, struct evbuffer *out,
                              size_t want, void *arg);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Lifecycle */
/**@{*/

/**
 * Creates a channel on a bufferevent, and enables reading and writing.
 * @param bev the bufferevent, taken: the channel frees it in evchat_free().
 *        Its callbacks now belong to the channel; do not set them.
 * @param flags 0 or #EVCHAT_OPT_AUTOFREE
 * @return the channel, or NULL with errno set: EINVAL (NULL @p bev or an
 *         unknown flag), ENOMEM. On failure @p bev is freed too, so a
 *         caller never leaks it.
 */
EVCHAT_EXPORT struct evchat *evchat_new(struct bufferevent *bev,
                                        unsigned flags);

/**
 * Sets all hooks and their argument at once. Any hook may be NULL: without
 * @p collect the channel gathers each frame and passes it to @p found;
 * without @p found frames are discarded; without @p event events go
 * unreported (the channel still stops on them). Set the hooks before bytes
 * arrive: switching from frame mode to collect mode in the middle of a
 * frame hands the bytes gathered so far to the next @c collect call,
 * together with the new ones.
 */
EVCHAT_EXPORT void evchat_setcb(struct evchat *chat, evchat_collect_cb collect,
                                evchat_found_cb found, evchat_event_cb event,
                                void *arg);

/**
 * Frees the channel, its bufferevent (closing the socket if the bufferevent
 * was made with BEV_OPT_CLOSE_ON_FREE) and everything queued, calling each
 * queued producer's @c release once. Output not yet written is discarded:
 * use evchat_close_when_done() to flush first. Safe inside any hook of the
 * channel: the memory goes when the hook returns, and no hook runs again.
 * NULL is ignored.
 */
EVCHAT_EXPORT void evchat_free(struct evchat *chat);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Framing */
/**@{*/

/**
 * Ends frames at a byte string from now on, including bytes already
 * buffered. The string is not part of the frame.
 *
 * As in asynchat, bytes already gathered into the current frame (under
 * "none", say, or from a count) stay in it and are not searched again;
 * the search covers the bytes not yet framed, which include a partial
 * terminator held back from the last read. When called outside a hook,
 * buffered bytes are framed from the event loop, never inside this call.
 * @param term the terminator, copied; any bytes, NULs included
 * @param len its length, at least 1
 * @return 0, or -1 with errno EINVAL (NULL @p chat or @p term, @p len 0:
 *         use evchat_set_terminator_none()) or ENOMEM.
 */
EVCHAT_EXPORT int evchat_set_terminator(struct evchat *chat, const void *term,
                                        size_t len);

/**
 * Ends the next frame after @p count bytes. The count goes down as bytes
 * arrive; when it reaches 0 the frame ends and the terminator becomes
 * "none" until another is set (so a found hook usually sets the next one).
 * A count of 0 delivers an empty frame at once, from the event loop (never
 * from inside this call).
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_set_terminator_count(struct evchat *chat,
                                              ev_uint64_t count);

/**
 * Sets no terminator: every byte is part of the current frame, which ends
 * only if a terminator is set later. In frame mode the bytes wait in
 * evchat_get_pending() (subject to the frame limit); in collect mode they
 * go to @c collect as they arrive.
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_set_terminator_none(struct evchat *chat);

/**
 * Ends frames at a line ending from now on, as evchat_set_terminator()
 * does for a string. With #EVCHAT_EOL_CRLF a "\r" right before the "\n"
 * is dropped too; a "\r" at the end of a read waits for the next byte.
 * @return 0, or -1 with errno EINVAL (NULL @p chat, unknown @p eol).
 */
EVCHAT_EXPORT int evchat_set_terminator_line(struct evchat *chat,
                                             enum evchat_eol eol);

/**
 * Frames by a length field in each frame's header from now on: the channel
 * reads the header, decodes the length, then counts the rest. Unlike a
 * count, it stays in force frame after frame until another terminator is
 * set; setting the same layout again (as a found hook may do for every
 * frame) changes nothing, even in the middle of a frame. A header that
 * has only partly arrived is, like a partial string terminator, not in
 * evchat_get_pending() until EOF. The frame limit applies to the delivered length and is checked as
 * soon as the header is read, before the body arrives. In collect mode
 * the header is gathered by the channel and the bytes not stripped are
 * handed to @c collect with the body.
 * @param field the layout, copied
 * @return 0, or -1 with errno EINVAL (NULL argument, a size other than
 *         1, 2, 4 or 8, unknown flags, @c strip over offset + size).
 * A frame whose length would be shorter than its header ends the
 * connection with #EVCHAT_EVENT_FRAME_INVALID.
 */
EVCHAT_EXPORT int evchat_set_terminator_length(
    struct evchat *chat, const struct evchat_length_field *field);

/**
 * Tells the current terminator.
 * @param term if not NULL, receives the string terminator or the line
 *        ending ("\r\n" for both CRLF kinds; borrowed until the
 *        terminator changes), or NULL for other kinds
 * @param len if not NULL, receives its length, or 0
 * @param remaining if not NULL, receives the bytes left of a count, or of
 *        a length-framed frame once its header was read; else 0
 * @return the kind; #EVCHAT_TERM_NONE for a NULL @p chat
 */
EVCHAT_EXPORT enum evchat_term evchat_get_terminator(const struct evchat *chat,
                                                     const void **term,
                                                     size_t *len,
                                                     ev_uint64_t *remaining);

/**
 * Limits the size of one frame (its bytes, without the terminator): a frame
 * of exactly @p max bytes is accepted; a frame that grows past it gets the
 * current policy (evchat_set_frame_limit(); by default the connection ends
 * with #EVCHAT_EVENT_FRAME_TOO_LONG after every earlier frame was
 * delivered). Applies in collect mode too, to the bytes collected since
 * the last @c found. The default is #EVCHAT_DEFAULT_MAX_FRAME.
 * @param max the limit in bytes; 0 means no limit (for streaming in collect
 *        mode, where the hook, not the channel, holds the bytes)
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_set_max_frame(struct evchat *chat, size_t max);

/**
 * Sets the frame limit and what happens to a frame over it. Like
 * evchat_set_max_frame(), it applies from now on, so a found hook can give
 * each terminator its own limit (a short one for header lines, a larger one
 * for a body). A frame of exactly @p max bytes is accepted.
 * @param max the limit in bytes; 0 means no limit
 * @param policy #EVCHAT_LIMIT_CLOSE, #EVCHAT_LIMIT_DISCARD or
 *        #EVCHAT_LIMIT_SPLIT
 * @return 0, or -1 with errno EINVAL (NULL @p chat, unknown policy).
 */
EVCHAT_EXPORT int evchat_set_frame_limit(struct evchat *chat, size_t max,
                                         enum evchat_limit_policy policy);

/**
 * How many bytes the last frame skipped under #EVCHAT_LIMIT_DISCARD had
 * (without its terminator): read it in the event hook that reports
 * #EVCHAT_EVENT_FRAME_DISCARDED. In collect mode the first bytes up to the
 * limit had already been collected; they belong to the skipped frame.
 * @return the count, 0 for NULL @p chat or if none was skipped yet
 */
EVCHAT_EXPORT ev_uint64_t evchat_get_discarded(const struct evchat *chat);

/**
 * Inside @c found, tells whether the current frame goes on:
 * 1 for a piece of a frame split by #EVCHAT_LIMIT_SPLIT with more to come,
 * 0 for a whole frame or the last piece.
 */
EVCHAT_EXPORT int evchat_frame_is_partial(const struct evchat *chat);

/**
 * Stops delivering input at once: no @c collect or @c found runs until
 * evchat_resume_input(), not even for frames already read and buffered,
 * and the channel stops reading from the bufferevent, so input stays
 * bounded while paused (the peer is held back by TCP flow control). An
 * EOF seen meanwhile is reported after the buffered frames, once resumed.
 * Output is not affected.
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_pause_input(struct evchat *chat);

/**
 * Resumes delivery after evchat_pause_input(): buffered frames are
 * delivered from the event loop, never from inside this call, in order.
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_resume_input(struct evchat *chat);

/** @return 1 while input is paused, else 0 (also for NULL @p chat). */
EVCHAT_EXPORT int evchat_input_paused(const struct evchat *chat);

/**
 * Sets how many bytes one read may take from the socket at most (asynchat's
 * ac_in_buffer_size). The default is #EVCHAT_DEFAULT_IN_BUFFER_SIZE. Note
 * that libevent 2.1 itself never reads more than 4096 bytes at once from a
 * socket, so on sockets only smaller sizes change anything.
 * @return 0, or -1 with errno EINVAL (NULL @p chat, @p size 0 or too big
 *         for the bufferevent).
 */
EVCHAT_EXPORT int evchat_set_in_buffer_size(struct evchat *chat, size_t size);

/**
 * Sets how full the output buffer may be before producers stop being asked
 * for more (asynchat's ac_out_buffer_size): a producer's output in memory
 * stays near this size however much it has to send. The default is
 * #EVCHAT_DEFAULT_OUT_BUFFER_SIZE.
 * @return 0, or -1 with errno EINVAL (NULL @p chat or @p size 0).
 */
EVCHAT_EXPORT int evchat_set_out_buffer_size(struct evchat *chat,
                                             size_t size);

/**
 * The bytes received that belong to no delivered frame yet. In frame mode
 * this is the current frame gathered so far; after #EVCHAT_EVENT_EOF it
 * also holds any partial terminator, so nothing the peer sent is lost.
 * In collect mode such bytes were already given to @c collect, and this
 * buffer is empty. The caller may read or drain it.
 * @return the buffer, borrowed for the channel's life; NULL for NULL @p chat
 */
EVCHAT_EXPORT struct evbuffer *evchat_get_pending(struct evchat *chat);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Output queue
 * Everything pushed is sent in the order pushed. Pushing fails with EPIPE
 * once evchat_close_when_done() was called or the connection failed. */
/**@{*/

/**
 * Queues bytes for sending.
 * @param data the bytes, copied
 * @param len how many; 0 is allowed and sends nothing
 * @return 0, or -1 with errno EINVAL (NULL @p chat, NULL @p data with
 *         @p len > 0), EPIPE (closing or failed), ENOMEM.
 */
EVCHAT_EXPORT int evchat_push(struct evchat *chat, const void *data,
                              size_t len);

/**
 * Queues a buffer's contents for sending.
 * @param buf the bytes, moved without copying: @p buf is left empty
 * @return 0, or -1 with errno EINVAL (NULL argument), EPIPE, ENOMEM.
 */
EVCHAT_EXPORT int evchat_push_buffer(struct evchat *chat, struct evbuffer *buf);

/**
 * Queues one line: @p data then the current terminator's line ending (or
 * its string), so what is written frames the same way it is read.
 * @param data the line without its ending, copied
 * @return 0, or -1 with errno EINVAL (NULL @p chat, NULL @p data with
 *         @p len > 0, a terminator that is not a line or a string, or
 *         @p data containing the line ending, which would let the peer see
 *         two lines where one was meant), EPIPE, ENOMEM.
 */
EVCHAT_EXPORT int evchat_push_line(struct evchat *chat, const void *data,
                                   size_t len);

/**
 * Queues one frame with a header for the current length-field terminator:
 * the field holds the value that makes the frame @p len payload bytes long
 * (len - adjust). The field must start the header (offset 0); a peer that
 * strips the field (strip == size) reads back exactly @p data.
 * @param data the payload, copied
 * @return 0, or -1 with errno EINVAL (NULL @p chat, NULL @p data with
 *         @p len > 0, no length terminator, offset not 0), EMSGSIZE (the
 *         value does not fit the field or is negative), EPIPE, ENOMEM.
 */
EVCHAT_EXPORT int evchat_push_frame(struct evchat *chat, const void *data,
                                    size_t len);

/**
 * Queues part of a file for sending; on sockets the kernel sends it
 * (sendfile) without reading it into memory.
 * @param fd an open file, taken on success (closed once sent or on free);
 *        on failure the caller still owns it
 * @param offset where to start
 * @param length how many bytes, or -1 for the rest of the file
 * @return 0, or -1 with errno EINVAL (NULL @p chat, negative @p fd or
 *         @p offset), EPIPE, ENOMEM, or an error from fstat().
 */
EVCHAT_EXPORT int evchat_push_file(struct evchat *chat, int fd,
                                   ev_off_t offset, ev_off_t length);

/**
 * Queues a producer: when the producer reaches the head of the queue, the
 * channel calls @p more whenever the output buffer is below the out-buffer
 * size, until @p more returns 0 (see #evchat_more_cb). Output queued after
 * the producer waits for it.
 * @param more the hook that produces bytes
 * @param release called exactly once with @p arg when the producer is done,
 *        discarded or the channel is freed, never while its own @c more
 *        is running (a @c more that discards or frees is released when it
 *        returns); may be NULL
 * @param arg the producer's own pointer
 * @return 0, or -1 with errno EINVAL (NULL @p chat or @p more), EPIPE,
 *         ENOMEM; on failure neither hook is called.
 */
EVCHAT_EXPORT int evchat_push_producer(struct evchat *chat, evchat_more_cb more,
                                       void (*release)(void *arg), void *arg);

/**
 * Tells the channel that a producer that returned #EVCHAT_AGAIN has bytes
 * now. The producer is asked again from the event loop, not from inside
 * this call. Harmless when no producer waits. NULL is ignored.
 */
EVCHAT_EXPORT void evchat_resume(struct evchat *chat);

/**
 * Closes the channel once everything queued so far was written; then the
 * event hook gets #EVCHAT_EVENT_CLOSED (from the event loop, never from
 * inside this call). No more frames are delivered after this call; later
 * pushes fail with EPIPE. Calling it again is harmless.
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_close_when_done(struct evchat *chat);

/**
 * Drops all buffered input (received bytes, the frame gathered so far) and
 * all output not yet written (calling each queued producer's @c release
 * once). The terminator and a requested close stay. For emergencies, as in
 * asynchat. NULL is ignored.
 */
EVCHAT_EXPORT void evchat_discard_buffers(struct evchat *chat);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Accessors */
/**@{*/

/**
 * The channel's bufferevent, borrowed: use it for timeouts, rate limits or
 * its file descriptor, but leave its callbacks and enabled state alone.
 * @return the bufferevent, or NULL for NULL @p chat
 */
EVCHAT_EXPORT struct bufferevent *evchat_get_bufferevent(struct evchat *chat);

/**@}*/

#ifdef __cplusplus
}
#endif

#endif /* EVCHAT_H_INCLUDED_ */
