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
 *    terminator is "none" until one is set. A client's bufferevent may
 *    still be connecting, or not yet asked to: make it with
 *    bufferevent_socket_new(base, -1, ...), then call
 *    bufferevent_socket_connect() (or _connect_hostname()) on it before or
 *    after evchat_new(). Pushes and terminators set meanwhile hold, and
 *    the output goes out once the connection is up, which the event hook
 *    hears as #EVCHAT_EVENT_CONNECTED. A connect that fails is an
 *    #EVCHAT_EVENT_ERROR before any CONNECTED (errno ECONNREFUSED, say, or
 *    EHOSTUNREACH for a name that did not resolve, the resolver's reason
 *    in bufferevent_socket_get_dns_error()). One that fails at once (no
 *    route, say) is no event: bufferevent_socket_connect() returns -1,
 *    and the caller handles it there. One that hangs is ended by
 *    the write timeout (a read timeout as short or shorter may fire first,
 *    with #EVCHAT_EVENT_READING: then a close waits for the connect, so
 *    set a write timeout too; over TLS, a handshake that stalls once
 *    connected is timed by the read timeout only).
 * -# Frames are delivered through @c collect / @c found while the peer sends.
 *    Two events may come meanwhile that end nothing:
 *    #EVCHAT_EVENT_CONNECTED, when a bufferevent_socket_connect() or a TLS
 *    handshake finishes (on an accepted TLS connection too: the server's
 *    side of the handshake), and #EVCHAT_EVENT_FRAME_DISCARDED. An event
 *    hook that frees the channel on flags it does not know must let these
 *    two through.
 * -# The connection ends in exactly one of these ways, each reported once
 *    through the @c event hook with its flag:
 *    - #EVCHAT_EVENT_EOF: the peer closed its side. Unframed bytes are not
 *      lost (see evchat_get_pending()). The channel can still push; a reply
 *      pushed from the hook followed by evchat_close_when_done() reaches
 *      the peer.
 *    - #EVCHAT_EVENT_ERROR: a socket or producer error (errno is set).
 *      Over TLS, an error of the TLS layer itself, a bad record or a peer
 *      that ends without its close_notify (which could hide a truncated
 *      stream), gives EPROTO; bufferevent_get_openssl_error() may tell
 *      more (for a peer that ended without close_notify, only on a TLS
 *      layer over a socket: a filter's, evchat_start_tls()'s included,
 *      hears the end from the layer below and OpenSSL sees nothing).
 *    - #EVCHAT_EVENT_TIMEOUT with #EVCHAT_EVENT_READING: the peer sent
 *      nothing for the read timeout, or a frame took longer than the frame
 *      timeout (then #EVCHAT_EVENT_FRAME_TIMEOUT is set too). Reading has
 *      stopped; pushing still works, so a reply (say, HTTP 408) can be
 *      sent before closing. See evchat_set_timeouts().
 *    - #EVCHAT_EVENT_TIMEOUT with #EVCHAT_EVENT_WRITING: the peer accepted
 *      nothing for the write timeout. Output has failed, as for an error.
 *    - #EVCHAT_EVENT_FRAME_TOO_LONG: a frame exceeded evchat_set_max_frame();
 *      every frame before it was delivered. Reading has stopped; pushing
 *      still works, so an error reply can be sent before closing.
 *    - #EVCHAT_EVENT_FRAME_INVALID: a length field described an impossible
 *      frame, or a header decoder refused a header; as for a too-long
 *      frame.
 *    - #EVCHAT_EVENT_CLOSED: evchat_close_when_done() finished: every byte
 *      queued before it went through every bufferevent layer (filters, TLS
 *      with its close_notify) and, on TCP, was acknowledged by the peer
 *      (or the peer had ended its side: see evchat_close_when_done()).
 *      Once the close was asked for, the peer's EOF and a read timeout are
 *      not reported: CLOSED, or the failure that ended the close, is the
 *      end the hook hears.
 *    A close requested after one of the others (by the program, or by
 *    #EVCHAT_OPT_AUTOFREE after an EOF, a timeout or a refused frame) is
 *    reported with #EVCHAT_EVENT_CLOSED as well when it has finished.
 * -# The user calls evchat_free(), typically from the @c event hook, or
 *    evchat_abort() to reset the connection instead: after an error or a
 *    write timeout the output has failed, and a reset tells the peer so,
 *    where an EOF after part of a reply could pass for all of it. With
 *    #EVCHAT_OPT_AUTOFREE the channel ends itself: at once after an error
 *    or a write timeout, as evchat_abort() does, and, freed as
 *    evchat_free() does, after flushing what was pushed when the hook
 *    reported EOF, a read or frame timeout, a too-long or invalid frame, or
 *    a finished close (a hook that calls evchat_close_when_done() there as
 *    well changes nothing).
 *
 * @section rules Rules that hold everywhere
 * - Ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) before the loop runs, as in
 *   every libevent program: a write to a peer that has closed raises it,
 *   and its default action ends the process without a word. Ignored, the
 *   write fails with EPIPE and the channel reports #EVCHAT_EVENT_ERROR.
 *   evchat leaves the signal's disposition to the program.
 * - Every function may be called from inside any hook of the same channel,
 *   including evchat_free(). After evchat_free() returns, no hook of that
 *   channel runs again.
 * - Functions return 0 (or a pointer) on success and -1 (or NULL) with
 *   @c errno set on failure. When a call that takes a callback fails, that
 *   callback is never called.
 * - Ownership words: a function @b takes an object (the channel frees it),
 *   @b borrows it (valid until the hook or call returns), @b copies it, or
 *   @b moves its contents (the source is left empty).
 * - A channel belongs to the thread that runs its event base: every hook
 *   runs there, and the framing calls are made there (from hooks, as a
 *   rule). Other threads may call the output calls (evchat_push() and the
 *   other pushes, evchat_resume(), evchat_close_when_done(),
 *   evchat_shutdown_write(), evchat_discard_buffers(),
 *   evchat_set_out_buffer_size()), the flow-control calls and
 *   evchat_pause_input() / evchat_resume_input(), provided libevent's
 *   threading was enabled (evthread_use_pthreads()) before the event base
 *   was made and the bufferevent was made with BEV_OPT_THREADSAFE. Each
 *   such call holds the bufferevent's lock while it runs, and what it
 *   triggers runs later on the loop thread. The framing setters hold it
 *   too, so a line pushed from another thread never meets a terminator
 *   half changed (but evchat_push_line() ends the line as the
 *   terminator in force when it runs says, which from another thread is
 *   whatever the loop set last: a worker pushes its line ending itself).
 *   The program must make sure no
 *   other thread uses a channel once the loop thread frees it: such
 *   channels are not made with #EVCHAT_OPT_AUTOFREE, which frees them on
 *   the loop at the end of the connection, while a worker may still be
 *   about to push (and work still being done misses the close). Count
 *   the program's references instead (the loop's, and one for each piece
 *   of work handed out); the event hook's end of the connection drops
 *   the loop's, and whoever drops the last has evchat_free() called on
 *   the loop thread (from a worker, through event_base_once()). A hook
 *   must not wait for a worker that is about to call the channel: the
 *   hook holds the lock the worker's call needs. Such programs link
 *   libevent_pthreads as well (pkg-config libevent_pthreads). The lock
 *   is held while hooks run, so two channels driven by loops on two
 *   different threads must not call each other from their hooks (each
 *   would wait for the other's lock); hand such work over with an event
 *   instead. Channels on one loop may call each other freely.
 *
 * @section differences Where evchat deliberately differs from asynchat
 * - A count terminator of 0 delivers an empty frame at once (asynchat treats
 *   0 as "none" and waits forever, e.g. on Content-Length: 0).
 * - An empty string terminator is rejected with EINVAL; say "none".
 * - At end of stream, or when a read or frame timeout ends input, bytes
 *   that never saw their terminator, including a partial terminator held
 *   back for matching or half a length header, are kept (asynchat drops
 *   the partial terminator).
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

#include <stdarg.h>
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

/* Lets the compiler check a format against its arguments. */
#if defined(__GNUC__)
#define EVCHAT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define EVCHAT_PRINTF(fmt, args)
#endif

/** @name Version
 *  The version of this header. A program built against it may run with a
 *  later library of the same soname: evchat_version() and
 *  evchat_version_number() tell which one it runs with. */
/**@{*/
#define EVCHAT_VERSION_MAJOR 0
#define EVCHAT_VERSION_MINOR 1
#define EVCHAT_VERSION_MICRO 0
/** "MAJOR.MINOR.MICRO" */
#define EVCHAT_VERSION_STRING "0.1.0"
/** The version as one number that grows with every release, 0xMMmmuu
 *  (a byte each for major, minor and micro), for tests at compile time:
 *  `#if EVCHAT_VERSION_NUMBER >= 0x000200`. */
#define EVCHAT_VERSION_NUMBER                                                  \
	((EVCHAT_VERSION_MAJOR << 16) | (EVCHAT_VERSION_MINOR << 8) |          \
	 EVCHAT_VERSION_MICRO)
/**@}*/

/** @name Options for evchat_new() */
/**@{*/
/** The channel frees itself when its connection has ended (see the
 *  lifecycle in the file overview); the user then never calls
 *  evchat_free() unless it wants to end the channel early. The event
 *  hook's last call is then the one reporting #EVCHAT_EVENT_ERROR, a write
 *  timeout (#EVCHAT_EVENT_TIMEOUT with #EVCHAT_EVENT_WRITING) or
 *  #EVCHAT_EVENT_CLOSED: the place to free the program's own state for the
 *  connection. */
#define EVCHAT_OPT_AUTOFREE 0x01u
/** The bufferevent is a plain socket bufferevent (bufferevent_socket_new()):
 *  replies that hooks push while a read is framed are
 *  written to the socket from the read callback itself, as soon as the
 *  read's frames are done, when nothing else is queued. That saves the
 *  write event's round through the loop (on Linux an epoll_ctl to add it,
 *  an epoll_wait that returns it and an epoll_ctl to remove it) for each
 *  read. Whatever the socket does not take goes through the bufferevent as
 *  usual. Bytes pushed with evchat_push() and its kin, and buffers of up
 *  to 512 bytes, are copied into a per-thread scratch (16 KiB) and
 *  written from there, so a read answered at once allocates nothing for
 *  them; larger buffers move as evchat_push_buffer() says, never copied.
 *  If the copy of what the socket did not take cannot be made (out of
 *  memory), the channel fails with #EVCHAT_EVENT_ERROR and ENOMEM. While the
 *  bufferevent has a write rate limit of its own, libevent writes, so that
 *  its bucket is charged; a rate-limit group's share (and the bufferevent's
 *  max single write) bounds each direct write, but the group is not
 *  charged for it.
 *  On a TLS, filter or pair bufferevent both direct options are
 *  ignored: the bytes would bypass that layer. evchat_listener sets it on
 *  the sockets it makes. */
#define EVCHAT_OPT_DIRECT_WRITE 0x02u
/** For a socket bufferevent (as for #EVCHAT_OPT_DIRECT_WRITE): the channel
 *  reads the socket itself, up to 12 KiB per read (within the in buffer
 *  size), where libevent 2.1 reads 4 KiB and first asks the socket how
 *  much it holds, one more system call per read. Frames up to about
 *  12 KiB then mostly arrive in one piece, so the found hook of
 *  evchat_setcb_bytes() (or evchat_setcb_both()'s found_bytes) gets them
 *  without a copy, and a burst of pipelined requests costs a third of the
 *  callbacks. End of file, errors and the read timeout are reported as
 *  libevent reports its own.
 *
 *  To do so the channel takes over the bufferevent's read event (its
 *  socket, timeout, priority and enabled state stay as they are), made
 *  with bufferevent_socket_new(): on a socket already set, or, for a
 *  client, once bufferevent_socket_connect() has connected (before that
 *  libevent reads, so a refused connect is the bare error it reports).
 *  bufferevent_setfd() gives the event back to libevent; reading then goes
 *  on through libevent, and after a read that filled its 4 KiB the channel
 *  reads on from the socket what it holds, up to 8 KiB more. While the
 *  bufferevent has a rate limit of its own, libevent reads, so that its
 *  bucket is charged; a rate-limit group's share is respected but not
 *  charged by the channel's reads. evchat_listener sets it on the sockets
 *  it makes. */
#define EVCHAT_OPT_DIRECT_READ 0x04u
/**@}*/

/** @name Flags passed to the event hook
 * The libevent flags keep their values, so BEV_EVENT_* tests work too.
 * errno, as the hook finds it, names the cause: the error's own with
 * #EVCHAT_EVENT_ERROR; else EMSGSIZE with #EVCHAT_EVENT_FRAME_TOO_LONG,
 * EBADMSG with #EVCHAT_EVENT_FRAME_INVALID, ETIMEDOUT with
 * #EVCHAT_EVENT_TIMEOUT, and 0 for the rest (an EOF, a close, a connect,
 * a skipped frame). */
/**@{*/
#define EVCHAT_EVENT_READING BEV_EVENT_READING /**< while reading */
#define EVCHAT_EVENT_WRITING BEV_EVENT_WRITING /**< while writing */
#define EVCHAT_EVENT_EOF BEV_EVENT_EOF         /**< the peer closed */
#define EVCHAT_EVENT_ERROR BEV_EVENT_ERROR     /**< errno says which */
#define EVCHAT_EVENT_TIMEOUT BEV_EVENT_TIMEOUT /**< a timeout fired */
/** A connect() or a TLS handshake (either side) finished; nothing ends. */
#define EVCHAT_EVENT_CONNECTED BEV_EVENT_CONNECTED
/** evchat_close_when_done() has written everything and finished. */
#define EVCHAT_EVENT_CLOSED 0x0100
/** A frame grew past its limit under #EVCHAT_LIMIT_CLOSE; reading has
 *  stopped. */
#define EVCHAT_EVENT_FRAME_TOO_LONG 0x0200
/** A frame over its limit was skipped under #EVCHAT_LIMIT_DISCARD; the
 *  connection goes on. evchat_get_discarded() tells how many bytes it had.
 *  Reported once per skipped frame, when its end has been seen, with
 *  #EVCHAT_EVENT_READING (test the flag, not the whole value), in place of
 *  the @c found call the frame would have had: the terminator is then as
 *  after that frame ("none" after a count), so set the next one here. */
#define EVCHAT_EVENT_FRAME_DISCARDED 0x0400
/** A length field described an impossible frame (shorter than its own
 *  header), a header decoder refused a header (see
 *  evchat_set_terminator_header()), or a count's trailer was wrong (see
 *  evchat_set_terminator_count_trailer()); reading has stopped, as with a
 *  too-long frame. With both refusals the terminator stays as it was
 *  when the frame was refused, so evchat_get_terminator() in the hook
 *  tells which framing it was (a line, a body...), to answer in kind. */
#define EVCHAT_EVENT_FRAME_INVALID 0x0800
/** With #EVCHAT_EVENT_TIMEOUT: the timeout was the frame timeout of
 *  evchat_set_frame_timeout(), not the idle read timeout. */
#define EVCHAT_EVENT_FRAME_TIMEOUT 0x1000
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
/** The default write watermarks (see evchat_set_write_watermarks()): the
 *  channel turns unwritable above 64 KiB queued, writable again at or
 *  below 32 KiB. */
#define EVCHAT_DEFAULT_WRITE_HIGH ((size_t)65536)
#define EVCHAT_DEFAULT_WRITE_LOW ((size_t)32768)

/** What ends the current incoming frame. */
enum evchat_term {
	EVCHAT_TERM_NONE = 0, /**< nothing: every byte is collected */
	EVCHAT_TERM_STRING,   /**< a byte string, not part of the frame */
	EVCHAT_TERM_COUNT,    /**< a number of bytes */
	EVCHAT_TERM_LINE,     /**< a line ending (see enum evchat_eol) */
	EVCHAT_TERM_LENGTH,   /**< a length field in each frame's header */
	EVCHAT_TERM_HEADER    /**< a header read by a hook of the program's */
};

/** Line endings for evchat_set_terminator_line(). The frame never contains
 *  the line ending. */
enum evchat_eol {
	EVCHAT_EOL_LF = 1, /**< "\n" */
	/** "\n" with an optional "\r" before it, so "PING\n" and
	 *  "PING\r\n" both frame as "PING" (Redis inline commands, SMTP or
	 *  POP3 commands from lenient peers); a lone "\r" elsewhere stays in
	 *  the frame. Not for a message body whose end is a line of its own,
	 *  such as SMTP's DATA: "\n.\r\n" would end it there, where a
	 *  strict server reads on, which is how SMTP smuggling works. Frame
	 *  such bodies with #EVCHAT_EOL_CRLF_STRICT, a line at a time. The
	 *  string "\r\n.\r\n" misses the empty body: in "DATA\r\n.\r\n"
	 *  the "\r\n" before the dot ended the DATA line, so the channel
	 *  waits on. */
	EVCHAT_EOL_CRLF,
	/** exactly "\r\n": a lone "\n" (or "\r") is part of the line, so
	 *  a peer that ends lines with "\n" alone is never framed; a server
	 *  that must refuse one looks for it in the frame (or limits it) */
	EVCHAT_EOL_CRLF_STRICT,
	EVCHAT_EOL_NUL /**< "\0" (STOMP, some legacy protocols) */
};

/** The length field of evchat_set_terminator_length(). A frame on the wire
 *  is @c offset bytes, then the field (@c size bytes, an unsigned integer),
 *  then the rest; its whole length is offset + size + value + adjust.
 *  Before delivery, @c strip bytes are removed from its front. */
struct evchat_length_field {
	size_t offset;  /**< bytes before the field */
	unsigned size;  /**< the field's width: 1, 2, 4 or 8 bytes */
	unsigned flags; /**< 0 (big endian) or #EVCHAT_LENGTH_LITTLE_ENDIAN */
	ev_int64_t adjust; /**< added to the value: e.g. -size if the value
	                        counts the field itself */
	size_t strip;      /**< header bytes dropped from the delivered frame;
	                        at most offset + size */
};
/** The length field is little endian. */
#define EVCHAT_LENGTH_LITTLE_ENDIAN 0x01u

/** What a header decoder found (see evchat_set_terminator_header()): the
 *  frame on the wire is @c size bytes of header, then @c body bytes.
 *  Before delivery, @c strip bytes are removed from its front. */
struct evchat_header {
	size_t size;      /**< the header's bytes: at least 1 */
	ev_uint64_t body; /**< the bytes after the header */
	size_t strip;     /**< header bytes dropped from the delivered frame;
	                       at most @c size */
};

/**
 * Reads a frame's header, for evchat_set_terminator_header().
 * @param bytes the frame's first bytes, contiguous, borrowed for the
 *        call
 * @param len how many: never 0, never more than the header limit set
 *        with the decoder; what the channel has of the frame, or the part
 *        of it that lies in one piece of memory (if that is too few, the
 *        decoder is asked again with more)
 * @param header receives the header's size, the body's and the strip
 *        when the header is whole (zeroed before the call)
 * @param arg the pointer given to evchat_set_terminator_header()
 * @return 1 with @p header filled in; 0 if @p len bytes are too few to
 *         tell (the call is made again, from the frame's first byte, when
 *         more arrive); -1 if the bytes are no valid header, which ends
 *         the connection with #EVCHAT_EVENT_FRAME_INVALID.
 *
 * It may be called more than once for the same header, and for headers
 * whose frames go on to be refused: it must only read the bytes and its
 * own state (no calls on the channel, no I/O). A result that breaks the
 * rules (a size of 0 or over @p len, a strip over the size, a return
 * value other than 1, 0 or -1) counts as -1.
 */
typedef int (*evchat_header_cb)(const unsigned char *bytes, size_t len,
                                struct evchat_header *header, void *arg);

/** What happens to a frame over its limit (evchat_set_frame_limit()). */
enum evchat_limit_policy {
	/** End the connection with #EVCHAT_EVENT_FRAME_TOO_LONG, after every
	 *  earlier frame was delivered. The default: fail fast. */
	EVCHAT_LIMIT_CLOSE = 0,
	/** Skip the frame up to its end, report #EVCHAT_EVENT_FRAME_DISCARDED
	 *  once, and go on with the next frame. Memory stays bounded. */
	EVCHAT_LIMIT_DISCARD,
	/** Deliver the frame in pieces of at most the limit; inside @c found,
	 *  evchat_frame_is_partial() tells the pieces from the last one.
	 *  (One exception: the bytes a length or decoded header keeps, if
	 *  more than the limit, reach @c collect in one piece, and @c found
	 *  too when the body is empty.) A terminator set on a piece ends the
	 *  frame there: it frames what follows the piece. (The terminator
	 *  the channel already has, set again, changes nothing; a count set
	 *  again starts anew, so set the next frame's count on the last
	 *  piece.) A piece goes once the limit's worth of the frame and a
	 *  byte more are in, or the frame ends: bytes short of that wait
	 *  however long the peer pauses, so a relay that must pass bytes on
	 *  as they come uses collect mode. */
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
 * @param data the new bytes, borrowed until the hook returns. The hook
 *        may read, drain or move them; whatever it leaves is discarded
 *        when it returns. The buffer itself is the channel's, reused for
 *        other bytes later: add no callbacks to it, and never free or
 *        freeze it. Never empty.
 * @param arg the pointer given to evchat_setcb()
 */
typedef void (*evchat_collect_cb)(struct evchat *chat, struct evbuffer *data,
                                  void *arg);

/**
 * Marks the end of a frame: its terminator was seen or its count reached.
 * Under #EVCHAT_LIMIT_SPLIT it also marks the end of each piece, in
 * collect mode too: evchat_frame_is_partial() tells them apart.
 * @param chat the channel
 * @param frame in frame mode (no collect hook), the whole frame without its
 *        terminator, borrowed until the hook returns: the hook may read,
 *        change, drain or move it (for example into
 *        evchat_push_buffer()), and what it leaves is discarded. As for
 *        collect, the buffer is the channel's: add no callbacks to it,
 *        and never free or freeze it. A reply built in it (the frame
 *        plus a terminator, say) goes out in one push, the cheapest way.
 *        A program that keeps frames copies short ones: moved with
 *        evbuffer_add_buffer(), each keeps the chain it was read into
 *        (a kilobyte or more), so a peer sending one-byte lines would
 *        make a kept buffer cost a thousand times their size
 *        (evchat_push_buffer() copies short buffers itself).
 *        In collect mode, NULL.
 * @param arg the pointer given to evchat_setcb()
 */
typedef void (*evchat_found_cb)(struct evchat *chat, struct evbuffer *frame,
                                void *arg);

/**
 * Marks the end of a frame, like #evchat_found_cb, with the frame as
 * contiguous bytes instead of a buffer (see evchat_setcb_bytes() and
 * evchat_setcb_both()).
 * @param chat the channel
 * @param frame in frame mode, the frame without its terminator (or a
 *        piece of it, see evchat_frame_is_partial()), borrowed and
 *        read-only: valid until the hook returns, whatever the hook calls
 *        meanwhile, and not NUL-terminated. Never NULL, even when @p len
 *        is 0 (an empty frame, or any frame in collect mode), so that
 *        passing it on with its length, to memcpy() say, is defined.
 * @param len the frame's length in bytes
 * @param arg the pointer given to evchat_setcb()
 */
typedef void (*evchat_found_bytes_cb)(struct evchat *chat,
                                      const unsigned char *frame, size_t len,
                                      void *arg);

/**
 * Reports a connection event: a combination of EVCHAT_EVENT_* flags.
 * Each cause (EOF, error, timeout, too-long frame, closed) is reported at
 * most once. See the lifecycle in the file overview for what follows each.
 * Test each flag with @c &, never the whole value: a cause comes with the
 * direction it concerns (#EVCHAT_EVENT_FRAME_TOO_LONG, for one, with
 * #EVCHAT_EVENT_READING).
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

/**
 * Reports a change of writability (see evchat_set_write_watermarks()).
 * @param chat the channel
 * @param writable 0 when the queued output went above the high watermark,
 *        1 when it came back down to the low one. Calls alternate, starting
 *        with 0, and every change is heard: one that went and came back
 *        between two runs of the loop gives two calls in a row, so a
 *        program that paused on evchat_is_writable() == 0 always gets its
 *        1. evchat_is_writable() tells the state of the moment.
 * @param arg the pointer given to evchat_setcb()
 */
typedef void (*evchat_writable_cb)(struct evchat *chat, int writable,
                                   void *arg);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Lifecycle */
/**@{*/

/**
 * Creates a channel on a bufferevent, and enables reading and writing.
 * @param bev the bufferevent, taken: the channel frees it in evchat_free().
 *        Its callbacks now belong to the channel; do not set them.
 * @param flags 0, or #EVCHAT_OPT_AUTOFREE, #EVCHAT_OPT_DIRECT_WRITE and
 *        #EVCHAT_OPT_DIRECT_READ or'ed
 * @return the channel, or NULL with errno set: EINVAL (NULL @p bev or an
 *         unknown flag), ENOMEM, ECONNABORTED (an #EVCHAT_OPT_AUTOFREE
 *         channel whose bufferevent failed as soon as it was enabled). On
 *         failure @p bev is freed too, so a caller never leaks it.
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
 * Sets the hooks like evchat_setcb(), with a @c found hook that receives
 * each frame as contiguous bytes instead of a buffer: the cheapest way to
 * read frames, for parsers that want a pointer and a length.
 *
 * A string, line, count, length-field or decoded-header frame that
 * arrived in one piece (the usual case for frames shorter than a read) is
 * handed over where it
 * lies in the channel's input, with no copy and no allocation. Other
 * frames (one that arrived in pieces, a piece split by the frame limit)
 * are first made contiguous: one copy, bounded by the frame limit (with
 * no limit set, by the frame's size); evchat_setcb_both() gives those to
 * an evbuffer hook instead. Everything else is as for evchat_setcb(): split
 * pieces (evchat_frame_is_partial()), and the hook may change the
 * terminator, pause input, or close or free the channel. While it runs,
 * evchat_get_pending() does not hold the frame.
 *
 * One of the two calls sets the hooks: a later evchat_setcb() replaces
 * @p found_bytes, and this call replaces an earlier @c found. May be
 * called from any hook; the new hooks see the next bytes delivered.
 * @param chat the channel; NULL is ignored
 * @param collect as for evchat_setcb()
 * @param found_bytes the end of each frame, or NULL
 * @param event as for evchat_setcb()
 * @param arg passed to every hook
 */
EVCHAT_EXPORT void evchat_setcb_bytes(struct evchat *chat,
                                      evchat_collect_cb collect,
                                      evchat_found_bytes_cb found_bytes,
                                      evchat_event_cb event, void *arg);

/**
 * Sets the hooks like evchat_setcb(), with both found hooks: each frame
 * goes to the one that takes it at the least cost, so one configuration
 * serves short frames and long ones alike (a relay or an echo server
 * whose frames are sometimes short, sometimes longer than a read).
 *
 * A frame that can be lent where it lies goes to @p found_bytes, with no
 * copy and no allocation, exactly as evchat_setcb_bytes() would lend it:
 * a string, line, count, length-field or decoded-header frame that lies
 * whole in one piece of the channel's input (the usual case for frames
 * shorter than a read), within the frame limit. Every other frame goes to @p found as a
 * buffer, gathered as for evchat_setcb() (whole pieces of the input are
 * linked into it, not copied, so evchat_push_buffer() relays it without
 * a copy) where evchat_setcb_bytes() would first copy it together: a
 * frame that arrived in pieces (longer than a read, or sent in several
 * writes), a length-field or decoded-header frame whose header arrived
 * alone, each piece
 * split by #EVCHAT_LIMIT_SPLIT. Which hook gets a frame depends on how
 * its bytes arrived, not on what they are, so the two should do the same
 * with a frame; frames reach them in order, whichever gets each one.
 *
 * Everything else is as for evchat_setcb(): evchat_frame_is_partial()
 * tells split pieces in @p found (a frame lent to @p found_bytes is
 * always whole), and either hook may change the terminator, the limit or
 * the hooks, pause input, or close or free the channel; the frames after
 * it follow the change. In collect mode @p found marks the end of each
 * frame, with NULL, and @p found_bytes is not called. With @p found NULL
 * this call is evchat_setcb_bytes(), with @p found_bytes NULL it is
 * evchat_setcb(); a later call of either replaces both found hooks. May
 * be called from any hook; the new hooks see the next bytes delivered.
 * @param chat the channel; NULL is ignored
 * @param collect as for evchat_setcb()
 * @param found_bytes the end of each frame lent in place, or NULL
 * @param found the end of every other frame, or NULL
 * @param event as for evchat_setcb()
 * @param arg passed to every hook
 */
EVCHAT_EXPORT void evchat_setcb_both(struct evchat *chat,
                                     evchat_collect_cb collect,
                                     evchat_found_bytes_cb found_bytes,
                                     evchat_found_cb found,
                                     evchat_event_cb event, void *arg);

/**
 * Sets or clears the collect hook alone, keeping the found hooks, the
 * event hook and their argument (which @p collect receives too): for a
 * protocol that streams some frames (a large body, a chunk) and takes
 * others whole (its header lines), switching from its hooks frame by
 * frame. As with evchat_setcb(), a collect hook set in the middle of a
 * frame is handed the bytes gathered so far with its next call; cleared
 * in the middle of one, it leaves the frame's next bytes to be gathered
 * for @c found, which gets only those (the limit still counts the
 * frame's bytes handed before). May be called from any hook; the change
 * applies to the next bytes delivered.
 * @param chat the channel; NULL is ignored
 * @param collect the new collect hook, or NULL for frame mode
 */
EVCHAT_EXPORT void evchat_set_collect_cb(struct evchat *chat,
                                         evchat_collect_cb collect);

/**
 * Sets a hook that runs once, when the channel is gone: freed by
 * evchat_free() or by #EVCHAT_OPT_AUTOFREE, its bufferevent freed too,
 * no other hook of it left to run. It gets the @c arg of evchat_setcb()
 * (or its kin) as last set, typically the program's state for the
 * connection, which it frees: no need to work out which event is a
 * channel's last, and a program that frees its channels at shutdown
 * frees their state with them. It runs inside evchat_free() called
 * from outside the hooks, else once the outermost hook of the channel
 * has returned; the channel is gone then: make no call on it. Ignored
 * once the channel is being freed; NULL removes it. The hook is kept
 * in the block of settings few channels need (about 300 bytes, made the
 * first time the channel needs one), not in the channel itself.
 * @param chat the channel
 * @param release the hook, or NULL
 * @return 0, or -1 with errno EINVAL (NULL @p chat) or ENOMEM (the
 *         block could not be made; nothing changed).
 */
EVCHAT_EXPORT int evchat_set_release_cb(struct evchat *chat,
                                        void (*release)(void *arg));

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
 * Setting the string the channel already has changes nothing, so a hook
 * may set it for every frame (as for a line ending or a length layout; a
 * count set again starts a new count).
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
 * from inside this call). The frame limit applies to the whole frame
 * (bytes it already gathered and the count) and, as for a length field,
 * is applied once the hook (or call) that set the count (or lowered the
 * limit under it) is over, before any more of its bytes arrive, so a hook
 * may set the count and the limit in either order: under
 * #EVCHAT_LIMIT_CLOSE a peer that announces too much is refused at once,
 * under #EVCHAT_LIMIT_DISCARD all of the frame is skipped.
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_set_terminator_count(struct evchat *chat,
                                              ev_uint64_t count);

/**
 * Ends the next frame after @p count bytes that the bytes of @p trailer
 * must follow, as a line ending follows a Redis bulk string
 * ("$5\r\nhello\r\n"), a memcached data block or an HTTP/1.1 chunk, and
 * a NUL a STOMP body sized by content-length. The trailer is not part of
 * the frame: the found hook runs once it has come whole, and the
 * terminator is then "none", as after a count. A count of 0 waits for
 * the trailer like any other: "$0\r\n\r\n" is one empty frame. Otherwise as
 * evchat_set_terminator_count(): the limit applies to @p count and the
 * bytes the frame gathered before, never to the trailer, so @p count is
 * passed as the peer announced it, with no sum that could wrap.
 *
 * A byte after the count that differs from the trailer ends the
 * connection with #EVCHAT_EVENT_FRAME_INVALID as soon as it arrives, with
 * the frame's end undelivered (in collect mode its bytes went to
 * @c collect already, and under #EVCHAT_LIMIT_SPLIT its pieces but the
 * last to @c found): a peer that sent more or fewer bytes than it
 * announced is out of step, and nothing it sends next can be framed.
 * Under #EVCHAT_LIMIT_DISCARD a frame skipped for its size still has its
 * trailer checked. Bytes of the trailer that stop short wait for the
 * rest, as a partial string terminator does: if the input ends there,
 * kept in evchat_get_pending() (in collect mode, handed to @c collect
 * before the EOF is reported, when evchat_get_terminator() still tells a
 * count at 0 remaining, which marks them as the trailer's), and gone with
 * the rest after
 * evchat_discard_buffers(), the whole trailer then due again. A
 * terminator the collect hook sets on the count's last bytes ends the
 * frame there, as for a plain count, and frames what follows in the
 * trailer's place; one set while the trailer is awaited (from a timer,
 * say) finds a frame not yet ended, which it frames on from the bytes
 * gathered, as any frame in progress. evchat_get_terminator() reports
 * #EVCHAT_TERM_COUNT with the trailer as its string, and 0 bytes
 * remaining once the count is reached.
 * @param trailer the bytes, copied; any bytes, NULs included
 * @param len their number, at least 1
 * @return 0, or -1 with errno EINVAL (NULL @p chat or @p trailer, @p len
 *         0) or ENOMEM (a trailer longer than 4 bytes may take a
 *         block; nothing changed).
 */
EVCHAT_EXPORT int evchat_set_terminator_count_trailer(struct evchat *chat,
                                                      ev_uint64_t count,
                                                      const void *trailer,
                                                      size_t len);

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
 *         Every line ending is short enough to be kept in the channel, so
 *         this call allocates nothing.
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
 * evchat_get_pending() until EOF; a terminator set meanwhile takes its
 * bytes into the current frame (a decoder's unread header is framed
 * anew instead). The frame limit applies to the
 * delivered length and is checked as soon as the header is read, before
 * the body arrives. In collect mode the header is gathered by the channel
 * and the bytes not stripped are handed to @c collect with the body.
 *
 * A header no layout describes (MQTT's variable-length integer,
 * WebSocket's 7-, 16- or 64-bit length) is read by a decoder instead:
 * see evchat_set_terminator_header().
 * @param field the layout, copied
 * @return 0, or -1 with errno EINVAL (NULL argument, a size other than
 *         1, 2, 4 or 8, unknown flags, @c strip over offset + size) or
 *         ENOMEM (the channel's first length layout is kept in a block
 *         made then; nothing changed).
 * A frame whose length would be shorter than its header ends the
 * connection with #EVCHAT_EVENT_FRAME_INVALID.
 */
EVCHAT_EXPORT int
evchat_set_terminator_length(struct evchat *chat,
                             const struct evchat_length_field *field);

/**
 * Frames by a header that a hook of the program's decodes, from now on:
 * for headers no length layout describes, such as MQTT's variable-length
 * integer or WebSocket's 7-, 16- or 64-bit length. The channel hands the
 * frame's first bytes to @p decode, which says how long the header is
 * and how many bytes follow it; then the channel counts the body, as for
 * evchat_set_terminator_length(), whose rules apply: the decoder stays in
 * force frame after frame until another terminator is set, setting the
 * same one again (same @p decode, @p max_header and @p arg) changes
 * nothing, even in the middle of a frame, the frame limit applies to the
 * delivered length (the header less its strip, plus the body) and is
 * checked as soon as the header is decoded, and in collect mode the
 * header's bytes not stripped are handed to @c collect with the body.
 *
 * Bytes of a header not yet decoded stay unframed, as a partial string
 * terminator does: they are not in evchat_get_pending() until EOF, and a
 * terminator set meanwhile frames them anew. The frame timeout
 * (evchat_set_frame_timeout()) runs from the frame's first byte, so a
 * peer that dribbles a header is timed as one that dribbles a body.
 * evchat_push_frame() cannot write such headers (EINVAL): push the header
 * and body the program builds.
 * @param decode the decoder (see #evchat_header_cb)
 * @param max_header the longest header the peer may send (MQTT's is 5
 *        bytes; WebSocket's 14 from a client, whose frames carry a mask
 *        key, 10 from a server): the decoder never sees more bytes, and a
 *        header it cannot decode within them is invalid. A header that
 *        lies in separate pieces of memory is shown by copying up to
 *        this many bytes together, so keep it close to the protocol's
 *        own.
 * @param arg passed to @p decode
 * @return 0, or -1 with errno EINVAL (NULL @p chat or @p decode,
 *         @p max_header 0) or ENOMEM (the channel's first decoder is kept
 *         in a block made then; nothing changed).
 */
EVCHAT_EXPORT int evchat_set_terminator_header(struct evchat *chat,
                                               evchat_header_cb decode,
                                               size_t max_header, void *arg);

/**
 * Tells the current terminator.
 * @param term if not NULL, receives the string terminator, the line
 *        ending ("\r\n" for both CRLF kinds) or a count's trailer
 *        (borrowed until the terminator changes), or NULL for other kinds
 * @param len if not NULL, receives its length, or 0
 * @param remaining if not NULL, receives the bytes left of a count, or of
 *        a length- or header-framed frame once its header was read
 *        (inside @c found for a piece of a split frame, those after the
 *        piece, at most 2^64 - 1); else 0
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
 * @return 0, or -1 with errno EINVAL (NULL @p chat, unknown policy) or
 *         ENOMEM (the first #EVCHAT_LIMIT_DISCARD makes the block that
 *         counts skipped bytes; nothing changed).
 */
EVCHAT_EXPORT int evchat_set_frame_limit(struct evchat *chat, size_t max,
                                         enum evchat_limit_policy policy);

/**
 * How many bytes the last frame skipped under #EVCHAT_LIMIT_DISCARD had
 * (without its terminator; for a length-field or decoded-header frame,
 * the bytes it would have delivered, header strip excluded): read it in
 * the event hook that reports #EVCHAT_EVENT_FRAME_DISCARDED. In collect
 * mode the first bytes up to the limit had already been collected; they
 * belong to the skipped frame.
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
 * Pauses do not nest: one resume ends any number of them.
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_resume_input(struct evchat *chat);

/** @return 1 while input is paused, else 0 (also for NULL @p chat). */
EVCHAT_EXPORT int evchat_input_paused(const struct evchat *chat);

/**
 * Sets how many bytes one read may take from the socket at most (asynchat's
 * ac_in_buffer_size). The default is #EVCHAT_DEFAULT_IN_BUFFER_SIZE. Note
 * that libevent 2.1 itself never reads more than 4096 bytes at once from a
 * socket: without #EVCHAT_OPT_DIRECT_READ only smaller sizes change
 * anything. With it, one read callback takes up to 12 KiB within this
 * size, and the hooks see all of its frames before any other channel
 * runs: a server that relays each client's frames to others may want it
 * smaller, so one busy client cannot fill another's output in one turn.
 * @return 0, or -1 with errno EINVAL (NULL @p chat, @p size 0 or too big
 *         for the bufferevent).
 */
EVCHAT_EXPORT int evchat_set_in_buffer_size(struct evchat *chat, size_t size);

/**
 * Sets how full the output buffer may be before producers stop being asked
 * for more (asynchat's ac_out_buffer_size): a producer's output in memory
 * stays near this size however much it has to send. The default is
 * #EVCHAT_DEFAULT_OUT_BUFFER_SIZE.
 * @return 0, or -1 with errno EINVAL (NULL @p chat or @p size 0) or ENOMEM
 *         (the size is kept in a block that a channel makes the first
 *         time it needs one such setting, and it could not be made;
 *         nothing changed).
 */
EVCHAT_EXPORT int evchat_set_out_buffer_size(struct evchat *chat, size_t size);

/**
 * The bytes received that belong to no delivered frame yet. In frame mode
 * this is the current frame gathered so far; once input has ended
 * (#EVCHAT_EVENT_EOF, or a read or frame timeout) it also holds any
 * partial terminator or half-read length header, so nothing the peer sent
 * is lost.
 * In collect mode such bytes were already given to @c collect, and this
 * buffer is empty. The caller may read or drain it.
 *
 * An idle channel holds no buffer for these bytes; the first call makes
 * one, which the channel then keeps until it is freed.
 * @return the buffer, borrowed for the channel's life; NULL with errno
 *         ENOMEM if the first call could not make it, or for NULL @p chat
 */
EVCHAT_EXPORT struct evbuffer *evchat_get_pending(struct evchat *chat);

/**
 * How many bytes evchat_get_pending() would hold now, asked without making
 * its buffer: a program that only wants to know whether anything is left
 * (in frame mode at EOF, to tell a clean end from a frame cut off) costs
 * an idle channel no allocation.
 * @return that length; 0 for NULL @p chat or when nothing is pending
 */
EVCHAT_EXPORT size_t evchat_get_pending_length(struct evchat *chat);

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
 * Queues a buffer's contents for sending. Its chains move as they are (a
 * buffer of a few hundred bytes or less is copied), references made with
 * evbuffer_add_reference() included: a payload sent to many channels,
 * each given a buffer that references it, stays one copy in memory, and
 * each reference's cleanup runs once its channel is done with it, sent or
 * dropped.
 * @param buf the bytes, moved: @p buf is left empty
 * @return 0, or -1 with errno EINVAL (NULL argument), EPIPE, ENOMEM.
 */
EVCHAT_EXPORT int evchat_push_buffer(struct evchat *chat, struct evbuffer *buf);

/**
 * Queues one line: @p data then the current terminator's line ending (or
 * its string), so what is written frames the same way it is read. While
 * the terminator is a count or none (a data block being read, say), push
 * the line and its ending with evchat_push().
 * @param data the line without its ending, copied
 * @return 0, or -1 with errno EINVAL (NULL @p chat, NULL @p data with
 *         @p len > 0, a terminator that is not a line or a string, or
 *         @p data containing the line ending, which would let the peer see
 *         two lines where one was meant), EPIPE, ENOMEM.
 */
EVCHAT_EXPORT int evchat_push_line(struct evchat *chat, const void *data,
                                   size_t len);

/**
 * Queues the bytes printf() would make of @p fmt and its arguments, for
 * replies such as "VALUE key 0 5\r\n" or "$5\r\n": the same as
 * formatting them with snprintf() and pushing them with evchat_push(),
 * without a buffer of the program's. Nothing is added: the format carries
 * its own line ending. The terminating NUL is not sent.
 * @param fmt a printf() format, checked against the arguments by GCC and
 *        Clang
 * @return 0, or -1 with errno EINVAL (NULL @p chat or @p fmt), EOVERFLOW
 *         (more than INT_MAX bytes), an error of vsnprintf() (EILSEQ for
 *         a wide character with no multibyte form), EPIPE, ENOMEM.
 */
EVCHAT_EXPORT int evchat_push_printf(struct evchat *chat, const char *fmt, ...)
    EVCHAT_PRINTF(2, 3);

/**
 * evchat_push_printf() with a @c va_list, for a program's own formatting
 * wrappers. @p args is used up, as by vprintf().
 */
EVCHAT_EXPORT int evchat_push_vprintf(struct evchat *chat, const char *fmt,
                                      va_list args) EVCHAT_PRINTF(2, 0);

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
 *         @p offset, @p length below -1, or a range past the end of the
 *         file), EPIPE, ENOMEM, or an error from fstat().
 */
EVCHAT_EXPORT int evchat_push_file(struct evchat *chat, int fd, ev_off_t offset,
                                   ev_off_t length);

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
 *
 * While a producer waits, the wait is the program's, not the peer's:
 * once the bytes before it went out, the write timeout does not run, and
 * a close (evchat_close_when_done(), or #EVCHAT_OPT_AUTOFREE's after an
 * EOF) waits for the producer to finish. A program that may never resume
 * it ends the channel itself, with evchat_abort() or evchat_free().
 */
EVCHAT_EXPORT void evchat_resume(struct evchat *chat);

/**
 * Drops all buffered input (received bytes, the frame gathered so far) and
 * all output not yet written (calling each queued producer's @c release
 * once: inside this call when it is made from a hook of the channel,
 * else from the event loop, soon after, as every hook runs there). Output
 * a filter or TLS layer has already taken in and passed to the layer
 * below stays there: cutting into it would corrupt the stream. The
 * terminator and a requested close stay. For emergencies, as in asynchat.
 * NULL is ignored.
 *
 * The output is cut wherever the writing has got to, which may be inside
 * a push or a producer's chunk: the peer then has the head of a message
 * without its tail, and bytes pushed afterwards run on from it. So
 * discard where the stream ends (before evchat_abort() or a close), or in
 * a protocol that can resynchronise; a producer that should stop at a
 * message's end returns 0 from @c more there instead.
 */
EVCHAT_EXPORT void evchat_discard_buffers(struct evchat *chat);

/**
 * Closes the channel once everything queued so far was delivered; then the
 * event hook gets #EVCHAT_EVENT_CLOSED (from the event loop, never from
 * inside this call), and freeing the channel loses nothing. Delivered
 * means, layer by layer: the queue is empty; every filter bufferevent was
 * flushed with BEV_FINISHED (so a compressor writes its trailer) and its
 * output written to the layer below; every TLS layer (bufferevent_openssl)
 * sent its close_notify; a pair's partner was told EOF; a socket was shut
 * down for writing (the peer reads EOF) and, on TCP, the peer acknowledged
 * every byte, so that closing cannot reset the connection under data the
 * peer has not got yet (or the peer ended its own side first: then
 * nothing more can come that would make the close a reset, and the
 * kernel delivers what is left after it). Input that arrives meanwhile
 * is read and discarded, and neither the peer's EOF nor a read timeout
 * is reported: the hook hears one end, CLOSED or a failure. If the peer
 * was still sending during the close, or left bytes unread, the close
 * also lingers, discarding, until the peer's EOF or about half a second
 * without a byte from it (at most the write timeout, or 10 s without
 * one): a close under a peer that sends answers it with a reset, and a
 * reset can make the peer lose the reply before reading it. No more frames are
 * delivered after this call; later pushes fail with EPIPE. Calling it
 * again is harmless.
 *
 * Over TCP a TLS layer sends its close_notify once the peer has
 * acknowledged everything before it. A peer that then ends, even with a
 * reset (a client that closes as soon as it has read its last reply,
 * leaving the close_notify unread, resets the connection), ends the
 * close with #EVCHAT_EVENT_CLOSED: nothing of ours was lost. A reset
 * while bytes of ours are still unacknowledged is #EVCHAT_EVENT_ERROR.
 * A bufferevent pair whose partner was freed takes nothing more (and
 * libevent tells nobody): CLOSED if everything had reached the partner,
 * else #EVCHAT_EVENT_ERROR with EPIPE, as for a socket's closed peer.
 *
 * A peer that stops reading holds the close up; evchat_set_timeouts() with
 * a write timeout bounds how long (#EVCHAT_EVENT_TIMEOUT and
 * #EVCHAT_EVENT_WRITING then end it instead).
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_close_when_done(struct evchat *chat);

/**
 * Half-closes: once everything queued so far was delivered through every
 * layer as for evchat_close_when_done() (TLS close_notify included), shuts
 * the connection down for writing, so the peer reads EOF, while this side
 * goes on reading and delivering frames until the peer's own EOF. Later
 * pushes fail with EPIPE. Nothing is reported when the shutdown is done;
 * errors are reported as usual. Calling it again, or after
 * evchat_close_when_done(), is harmless.
 * @return 0, or -1 with errno EINVAL (NULL @p chat).
 */
EVCHAT_EXPORT int evchat_shutdown_write(struct evchat *chat);

/**
 * Aborts the connection: drops all input and output not yet written, frees
 * the channel as evchat_free() does, and on a TCP socket makes the close
 * reset the connection, so the peer sees an error (ECONNRESET) rather than
 * an EOF that could pass for a complete reply. Safe inside any hook of the
 * channel. NULL is ignored.
 */
EVCHAT_EXPORT void evchat_abort(struct evchat *chat);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Flow control
 * The channel counts the bytes queued for output: those pushed but not yet
 * moved to the bufferevent, plus those in the output buffers of the
 * bufferevent and of every layer below it (a filter's or TLS layer's
 * underlying bufferevent). Above the high watermark the channel turns
 * unwritable; at or below the low watermark writable again. Pushing is
 * never refused for it: the hook and evchat_is_writable() let the program
 * stop producing, e.g. a proxy that pauses reading its upstream:
 * @code
 * static void on_upstream_frame(struct evchat *up, struct evbuffer *frame,
 *                               void *arg)
 * {
 *     struct evchat *down = arg;
 *     evchat_push_buffer(down, frame);
 *     if (!evchat_is_writable(down))     // checked at once, not later:
 *         evchat_pause_input(up);        // no frame slips through
 * }
 *
 * static void on_downstream_writable(struct evchat *down, int writable,
 *                                    void *arg)
 * {
 *     struct evchat *up = arg;
 *     if (writable)
 *         evchat_resume_input(up);
 * }
 * @endcode
 * Producers are asked for more only while the bytes ahead of them are
 * below both the high watermark and the out-buffer size, so a producer of
 * any size costs no more memory than that plus one of its chunks. */
/**@{*/

/**
 * Sets the watermarks of queued output. The state is re-evaluated at once:
 * evchat_is_writable() tells the new state; the hook hears of it from the
 * event loop. The defaults are #EVCHAT_DEFAULT_WRITE_LOW and
 * #EVCHAT_DEFAULT_WRITE_HIGH.
 * @param low writable again at or below this many bytes
 * @param high unwritable above this many bytes; at least 1 and at least
 *        @p low
 * @return 0, or -1 with errno EINVAL (NULL @p chat, @p high 0, @p low
 *         above @p high) or ENOMEM (the marks are kept in a block that a
 *         channel makes the first time it needs one such setting, and it
 *         could not be made; nothing changed).
 */
EVCHAT_EXPORT int evchat_set_write_watermarks(struct evchat *chat, size_t low,
                                              size_t high);

/**
 * Sets the hook told of writability changes; it gets the @c arg of
 * evchat_setcb(), which (like its kin) leaves this hook set. NULL removes
 * it. Setting it reports nothing by itself: ask evchat_is_writable() for
 * the state now.
 */
EVCHAT_EXPORT void evchat_set_writable_cb(struct evchat *chat,
                                          evchat_writable_cb writable);

/**
 * @return 1 if the channel is writable (queued output has not gone above
 *         the high watermark since it was last at or below the low one),
 *         0 if not, or if @p chat is NULL.
 */
EVCHAT_EXPORT int evchat_is_writable(struct evchat *chat);

/**
 * @return the bytes queued for output, as counted for the watermarks
 *         (pushed and not yet written by the lowest bufferevent layer);
 *         0 for NULL @p chat. A producer counts only what it has produced.
 */
EVCHAT_EXPORT size_t evchat_get_queued(struct evchat *chat);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Timeouts */
/**@{*/

/**
 * Sets idle timeouts, as bufferevent_set_timeouts() does, reported through
 * the event hook with #EVCHAT_EVENT_TIMEOUT. The read timeout counts while
 * the channel waits for input (not while input is paused); the event comes
 * with #EVCHAT_EVENT_READING, reading stops, and pushing still works. The
 * write timeout counts while output waits for the peer, closing included
 * (and a connect: it bounds one that hangs); the event comes with
 * #EVCHAT_EVENT_WRITING and the connection has failed. Each restarts with
 * progress: the read timeout with each read, the write timeout with each
 * write (and, on some layers, a filter's say, with each push), so they
 * bound no total time (evchat_set_frame_timeout() does, for a frame).
 * @param read the read timeout, copied; NULL for none
 * @param write the write timeout, copied; NULL for none
 * @return 0, or -1 with errno EINVAL (NULL @p chat, a negative time) or
 *         ENOMEM (a write timeout, the first time one is set: the channel
 *         keeps it in a block made then). Nothing changed on failure.
 */
EVCHAT_EXPORT int evchat_set_timeouts(struct evchat *chat,
                                      const struct timeval *read,
                                      const struct timeval *write);

/**
 * Sets a deadline for each frame: a frame whose first byte arrived more
 * than @p timeout ago and which has not ended is cut off, however steadily
 * its bytes trickle in (a peer sending a byte a minute defeats any idle
 * timeout, not this one). The event hook then gets #EVCHAT_EVENT_TIMEOUT,
 * #EVCHAT_EVENT_READING and #EVCHAT_EVENT_FRAME_TIMEOUT; reading stops and
 * pushing still works, as for a read timeout. The clock stops while input
 * is paused (it restarts when resumed) and between frames (the read
 * timeout is for idle peers). There is no frame to time while the
 * terminator is "none". Like the frame limit, it may be changed from a
 * found hook for what follows; a change counts from the first byte of the
 * frame in progress when its clock was running, else from now.
 * @param timeout the deadline, copied; NULL for none (the default)
 * @return 0, or -1 with errno EINVAL (NULL @p chat, a negative time),
 *         ENOMEM.
 */
EVCHAT_EXPORT int evchat_set_frame_timeout(struct evchat *chat,
                                           const struct timeval *timeout);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Starting TLS on an open connection */
/**@{*/

struct ssl_st;

/** Which side of the TLS handshake the channel takes. */
enum evchat_tls_role {
	EVCHAT_TLS_ACCEPT = 1, /**< the server's side */
	EVCHAT_TLS_CONNECT     /**< the client's side */
};

/**
 * Starts TLS on the connection, for STARTTLS (SMTP, POP3, IMAP, LDAP,
 * XMPP) or PostgreSQL's SSLRequest: everything pushed before this call is
 * sent in the clear, everything pushed after it through TLS, and the
 * hooks get only the bytes the peer sends through TLS from now on. A
 * server calls it right after pushing its go-ahead ("220 Ready to start
 * TLS"), a client when it has read the server's, both from a hook as a
 * rule (on the loop's thread, as the framing calls); the framing, hooks,
 * limits and timeouts stay. The channel's
 * bufferevent becomes a libevent TLS filter
 * (bufferevent_openssl_filter_new()) over the old one, and the direct
 * options stop. #EVCHAT_EVENT_CONNECTED follows when the handshake
 * finishes; a failed handshake is #EVCHAT_EVENT_ERROR with EPROTO. It
 * works over a socket, a pair, and a filter made with
 * BEV_OPT_DEFER_CALLBACKS; over a filter that runs its callbacks at once
 * libevent 2.1's TLS filter does not (it crashes inside OpenSSL), so the
 * call refuses it with ENOTSUP.
 *
 * Bytes the peer sent after the frame being delivered, before its go-ahead
 * could have reached it, can belong neither to the clear stream nor to
 * TLS: they are how a man in the middle injects commands into a session
 * that will look protected (CVE-2011-0411). Then nothing starts, those
 * bytes are dropped, and the call fails with EPROTO: end the connection.
 * @param ssl a new SSL object (SSL_new()), taken on success: freed with
 *        the channel. On failure it is still the caller's.
 * @param role #EVCHAT_TLS_ACCEPT or #EVCHAT_TLS_CONNECT
 * @return 0, or -1 with errno EINVAL (NULL argument, unknown role),
 *         EALREADY (the channel is TLS already),
 *         EPIPE (closing, failed, or input ended), EBUSY (a file or
 *         producer pushed before is still being sent: call again once
 *         evchat_get_queued() is 0), EPROTO (see above), ENOMEM, or
 *         ENOTSUP (built without OpenSSL, or the bufferevent is a filter
 *         without BEV_OPT_DEFER_CALLBACKS).
 */
EVCHAT_EXPORT int evchat_start_tls(struct evchat *chat, struct ssl_st *ssl,
                                   enum evchat_tls_role role);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Accepting connections */
/**@{*/

/** A listener that turns accepted connections into channels. */
struct evchat_listener;
struct evconnlistener;
struct sockaddr;

/**
 * Receives each accepted connection as a new channel.
 * @param listener the listener
 * @param chat the channel, new: set its hooks and terminator here. It was
 *        made with the listener's channel flags, and is the caller's.
 * @param addr the peer's address, borrowed
 * @param addrlen its length
 * @param arg the pointer given to evchat_listener_new()
 */
typedef void (*evchat_accept_cb)(struct evchat_listener *listener,
                                 struct evchat *chat,
                                 const struct sockaddr *addr, int addrlen,
                                 void *arg);

/**
 * Makes the bufferevent for an accepted socket, e.g. a
 * bufferevent_openssl_socket_new() in BUFFEREVENT_SSL_ACCEPTING state for
 * a TLS server, or one with BEV_OPT_THREADSAFE. It must be on @p base:
 * the accept hook runs on the listener's thread, which a channel reading
 * on another loop's thread would race. To spread connections over
 * several loops, accept with a plain evconnlistener and hand each socket
 * to its loop (event_base_once()), which makes the channel itself.
 * @param base the listener's event base
 * @param fd the accepted socket, taken: the bufferevent should close it
 *        on free (BEV_OPT_CLOSE_ON_FREE)
 * @param arg the pointer given to evchat_listener_new()
 * @return the bufferevent, or NULL to refuse the connection (then the
 *         hook must close @p fd itself)
 */
typedef struct bufferevent *(*evchat_bufferevent_cb)(struct event_base *base,
                                                     evutil_socket_t fd,
                                                     void *arg);

/**
 * Reports an accept that failed, once per episode: when descriptors or
 * memory run out (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener stops
 * accepting and retries after a pause that doubles from 10 ms to 1 s while
 * the failure lasts; it is reported again only after an accept succeeded.
 * Pending connections wait in the kernel's backlog meanwhile. A channel
 * that could not be made for an accepted socket is reported with its
 * errno too (the socket is closed).
 * @param listener the listener
 * @param err the errno value
 * @param arg the pointer given to evchat_listener_new()
 */
typedef void (*evchat_listener_error_cb)(struct evchat_listener *listener,
                                         int err, void *arg);

/**
 * Makes a listener that accepts on @p lev and hands each connection to
 * @p accept as a channel on a socket bufferevent (BEV_OPT_CLOSE_ON_FREE,
 * with TCP_NODELAY set: a reply written in several pieces is not held back
 * by Nagle's algorithm for the peer's delayed ACK), or on the bufferevent
 * made by evchat_listener_set_bufferevent_cb().
 * Make @p lev with evconnlistener_new_bind() or evconnlistener_new() and a
 * NULL callback (so it does not accept before this call); this call sets
 * its callbacks and enables it.
 * @param lev the evconnlistener, taken: evchat_listener_free() frees it
 * @param chat_flags flags for evchat_new() (#EVCHAT_OPT_AUTOFREE, say); the
 *        channels on the listener's own sockets (no make hook) also get
 *        #EVCHAT_OPT_DIRECT_WRITE and #EVCHAT_OPT_DIRECT_READ
 * @param accept the hook that receives each channel
 * @param arg passed to the hooks
 * @return the listener, or NULL with errno EINVAL (NULL @p lev or
 *         @p accept, unknown flags) or ENOMEM; on failure @p lev is freed
 *         too.
 */
EVCHAT_EXPORT struct evchat_listener *
evchat_listener_new(struct evconnlistener *lev, unsigned chat_flags,
                    evchat_accept_cb accept, void *arg);

/** Sets how accepted sockets become bufferevents (NULL: a plain socket
 *  bufferevent). */
EVCHAT_EXPORT void
evchat_listener_set_bufferevent_cb(struct evchat_listener *listener,
                                   evchat_bufferevent_cb make);

/** Sets the hook told of failed accepts (NULL: none; failures are still
 *  handled the same way). */
EVCHAT_EXPORT void
evchat_listener_set_error_cb(struct evchat_listener *listener,
                             evchat_listener_error_cb error);

/**
 * Stops accepting until evchat_listener_resume(): new connections wait in
 * the kernel's backlog (say, while a server shuts down, or sheds load).
 * Use this rather than evconnlistener_disable() on the evconnlistener:
 * after a failed accept (descriptors run out) the listener enables that
 * again itself, but never while paused. Channels already accepted are not
 * affected. Calling it again is harmless.
 * @return 0, or -1 with errno EINVAL (NULL, or a listener being freed).
 */
EVCHAT_EXPORT int evchat_listener_pause(struct evchat_listener *listener);

/**
 * Accepts again after evchat_listener_pause(): at once, or, during a
 * descriptor shortage, when the listener's next retry comes.
 * @return 0, or -1 with errno EINVAL (NULL, or a listener being freed) or
 *         ENOMEM (libevent could not watch the socket again).
 */
EVCHAT_EXPORT int evchat_listener_resume(struct evchat_listener *listener);

/** @return the evconnlistener, borrowed (for its address or descriptor;
 *  to stop accepting for a while, see evchat_listener_pause()). */
EVCHAT_EXPORT struct evconnlistener *
evchat_listener_get_evconnlistener(struct evchat_listener *listener);

/**
 * Stops accepting and frees the listener and its evconnlistener (which
 * closes the listening socket if it was made with LEV_OPT_CLOSE_ON_FREE).
 * Channels already accepted are not affected. Safe inside the listener's
 * own hooks. NULL is ignored.
 */
EVCHAT_EXPORT void evchat_listener_free(struct evchat_listener *listener);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name Accessors */
/**@{*/

/**
 * The channel's bufferevent, borrowed: use it for timeouts, rate limits or
 * its file descriptor, but leave its callbacks and enabled state alone
 * (with #EVCHAT_OPT_DIRECT_READ, put it in no rate-limit group: see
 * there).
 * Called from a hook, it first hands what the hook pushed to the
 * bufferevent, so bytes written to it directly come after them.
 * @return the bufferevent, or NULL for NULL @p chat
 */
EVCHAT_EXPORT struct bufferevent *evchat_get_bufferevent(struct evchat *chat);

/**
 * Frees the spare buffers and the scratch room that channels keep per
 * thread between reads (some 29 KiB, once a channel on the thread has
 * read), for a leak checker that should find nothing left. A thread's are
 * freed when it exits, but the main thread's only if it ends in
 * pthread_exit(): a program calls this before it returns from main(),
 * once its channels are freed. Channels may go on after it: the next read
 * takes new ones.
 * @return 0, or -1 with errno EBUSY from a hook that runs while the room
 *         is in use (a read's frames are lent from it, or its replies
 *         gather there); nothing is freed then
 */
EVCHAT_EXPORT int evchat_thread_cleanup(void);

/**@}*/
/* ------------------------------------------------------------------ */
/** @name The version at run time (the header's: #EVCHAT_VERSION_STRING) */
/**@{*/

/**
 * The version of the library the program runs with, which may be later
 * than the header it was built against (#EVCHAT_VERSION_STRING).
 * Any thread may call it, before or without any channel.
 * @return "MAJOR.MINOR.MICRO", a string that lives as long as the library
 */
EVCHAT_EXPORT const char *evchat_version(void);

/**
 * The same version as a number in #EVCHAT_VERSION_NUMBER's form, for a
 * test at run time: a program that needs what 0.2.1 fixed checks
 * `evchat_version_number() >= 0x000201`.
 * Any thread may call it.
 * @return 0xMMmmuu
 */
EVCHAT_EXPORT ev_uint32_t evchat_version_number(void);

/**@}*/

#ifdef __cplusplus
}
#endif

#endif /* EVCHAT_H_INCLUDED_ */
