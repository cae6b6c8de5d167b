/*
 * mzb_handler: the handler side of the bridge. A handler connects to the
 * bridge's handler endpoint, offers one service and answers the requests the
 * bridge gives it, speaking the worker side of MDP/0.1 (docs/protocol.md,
 * section 3). The library sends heartbeats, notices a silent bridge and
 * reconnects, decodes the metadata frame and drops resent events it has
 * already finished.
 *
 * A typical loop:
 *
 *     struct mzb_request *req;
 *     while (mzb_handler_recv(h, &req, -1) == MZB_HANDLER_OK)
 *         mzb_handler_reply(h, req, answer, answer_len);
 *
 * One handle belongs to one thread: no function here is thread-safe except
 * mzb_handler_interrupt. Heartbeats go out only while the thread is inside
 * mzb_handler_recv, so a request must be answered within heartbeat_ms *
 * liveness, or the handler takes the bridge for gone and reconnects.
 *
 * Credit: the handler tells the bridge in READY how many requests it may be
 * sent before it answers any (options.credit, 64 by default). The bridge then
 * keeps up to that many waiting at the handler, so the next one is there as
 * soon as an answer leaves; mzb_handler_recv hands them out one by one, in
 * the order they came, without polling while any waits. Requests may be
 * answered in any order. A credit of 1 is plain MDP: one request at a time.
 *
 * Strings handed out by the request accessors are pointer and length, not
 * NUL-terminated, and binary-safe; print them with "%.*s".
 */
#ifndef MZB_HANDLER_H
#define MZB_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "mzb_meta.h"

#define MZB_HANDLER_DEFAULT_HEARTBEAT_MS 1000
#define MZB_HANDLER_DEFAULT_LIVENESS 4
#define MZB_HANDLER_DEFAULT_RECONNECT_MS 1000
#define MZB_HANDLER_DEFAULT_DEDUP_SIZE 4096
#define MZB_HANDLER_DEFAULT_CREDIT 64
#define MZB_HANDLER_MAX_CREDIT 1000 /* the most the bridge accepts */

enum mzb_handler_err {
    MZB_HANDLER_OK = 0,
    MZB_HANDLER_E_TIMEOUT = 1,     /* no request arrived within the timeout */
    MZB_HANDLER_E_INTERRUPTED = 2, /* mzb_handler_interrupt was called, or a signal arrived */
    MZB_HANDLER_E_ZMQ = 3,         /* ZeroMQ failed; the handle cannot go on (logged) */
    MZB_HANDLER_E_NOMEM = 4,
    MZB_HANDLER_E_INVALID = 5, /* a bad argument */
};

/* A static English sentence for an mzb_handler_err code. */
const char *mzb_handler_strerror(int err);

/* Settings for mzb_handler_new. Zero means "the default" for every number. */
struct mzb_handler_options {
    const char *endpoint;  /* the bridge's handler endpoint, e.g. "tcp://127.0.0.1:5556" */
    const char *service;   /* the service this handler offers; not empty */
    uint32_t heartbeat_ms; /* heartbeat interval; should equal bridge.heartbeat_ms (1000) */
    uint32_t liveness;     /* heartbeats missed before the bridge is taken for gone (4) */
    uint32_t reconnect_ms; /* least time between two reconnects (1000) */
    uint32_t dedup_size;   /* finished event ids remembered to drop resends (4096) */
    uint32_t credit;       /* requests the bridge may send before waiting for an answer (64);
                              1 to MZB_HANDLER_MAX_CREDIT, 1 for plain MDP behaviour */
    void *zmq_context;     /* a ZeroMQ context to share, or NULL for one of the handle's own;
                              a shared one must outlive the handle */
};

struct mzb_handler;
struct mzb_request;

/*
 * Connects to opts->endpoint and announces opts->service (READY). The bridge
 * need not be up yet: ZeroMQ connects when it appears. Returns a new handle
 * the caller frees with mzb_handler_destroy, or NULL after logging why (bad
 * options such as a credit above MZB_HANDLER_MAX_CREDIT, a malformed endpoint, out
 * of memory). opts is copied. Does not block.
 */
struct mzb_handler *mzb_handler_new(const struct mzb_handler_options *opts);

/*
 * Tells the bridge this handler leaves (DISCONNECT), closes the socket
 * without waiting more than a fraction of a second for it to leave, frees the
 * handle and sets *h to NULL. Accepts NULL and a pointer to NULL. Requests
 * not yet answered must be answered or freed before; the bridge gives them to
 * another handler.
 */
void mzb_handler_destroy(struct mzb_handler **h);

/*
 * Waits up to timeout_ms (-1: without limit, 0: do not wait) for the next
 * request and sets *req to it; the caller owns it until it passes it to
 * mzb_handler_reply, mzb_handler_done or mzb_request_free. While waiting, it
 * sends heartbeats, reconnects (a new socket, READY again) when the bridge
 * has been silent for heartbeat_ms * liveness or asked it to, drops malformed
 * messages with a log line, and answers at once an event whose message id it
 * finished recently (a resend after a bridge restart) without handing it out.
 * A resent request-mode message is handed out again: its requester still
 * waits for a real answer, which an empty reply would not give.
 *
 * Returns MZB_HANDLER_OK with *req set; otherwise *req is NULL and the result
 * is MZB_HANDLER_E_TIMEOUT, MZB_HANDLER_E_INTERRUPTED (after
 * mzb_handler_interrupt, from then on at once, or when a signal handler ran
 * while it waited: the caller decides whether to go on), or MZB_HANDLER_E_ZMQ
 * (logged; the caller should destroy the handle). Blocks up to timeout_ms.
 */
int mzb_handler_recv(struct mzb_handler *h, struct mzb_request **req, int timeout_ms);

/*
 * Answers req with len bytes at data (data may be NULL when len is 0) and
 * frees req, whatever the result: do not use req afterwards. On an event
 * route the bridge ignores the body; the reply only says the handler is done.
 * Returns MZB_HANDLER_OK, or MZB_HANDLER_E_ZMQ when the reply could not be
 * queued (logged; the bridge gives the request to another handler). A request
 * received before a reconnect is not answered on the new connection, since
 * that bridge does not know it. Never blocks.
 */
int mzb_handler_reply(struct mzb_handler *h, struct mzb_request *req, const void *data, size_t len);

/* Says req is finished without an answer (an empty reply, as MDP requires); as above. */
int mzb_handler_done(struct mzb_handler *h, struct mzb_request *req);

/*
 * Makes the current or the next mzb_handler_recv return
 * MZB_HANDLER_E_INTERRUPTED, and every later one too. Async-signal-safe and
 * callable from any thread: it only sets a flag. A call from another thread
 * is seen within one heartbeat interval; a signal wakes the wait at once.
 */
void mzb_handler_interrupt(struct mzb_handler *h);

/*
 * Frees req without answering it. The bridge counts it against this
 * handler's credit until the handler reconnects or leaves, so use it only on
 * the way out. Accepts NULL.
 */
void mzb_request_free(struct mzb_request *req);

/*
 * Request accessors. None blocks or allocates; pointers are valid until req
 * is freed. A field that is absent gives NULL and a length of 0; a field that
 * is present but empty gives a non-NULL pointer and a length of 0. len may be
 * NULL. Requests from a plain MDP client carry no metadata: then every field
 * below the payload is absent and the numbers are -1.
 */

/* The MQTT payload (may be empty, never NULL). */
const void *mzb_request_payload(const struct mzb_request *req, size_t *len);

/* 1 when the request carried a metadata frame, else 0. */
int mzb_request_has_metadata(const struct mzb_request *req);

/* The decoded metadata frame, or NULL without one. Borrowed, like every field. */
const struct mzb_meta *mzb_request_meta(const struct mzb_request *req);

const char *mzb_request_topic(const struct mzb_request *req, size_t *len);
const char *mzb_request_client_id(const struct mzb_request *req, size_t *len);
const char *mzb_request_username(const struct mzb_request *req, size_t *len);
const char *mzb_request_content_type(const struct mzb_request *req, size_t *len);
const char *mzb_request_response_topic(const struct mzb_request *req, size_t *len);
const void *mzb_request_correlation(const struct mzb_request *req, size_t *len);
/* Where the bridge publishes the answer (request mode). */
const char *mzb_request_reply_topic(const struct mzb_request *req, size_t *len);
/* The route filter that matched. */
const char *mzb_request_route(const struct mzb_request *req, size_t *len);

/* QoS of the publish (0 to 2), or -1. */
int mzb_request_qos(const struct mzb_request *req);
/* 1 when the publish was retained, 0 when not, or -1. */
int mzb_request_retain(const struct mzb_request *req);
/* MZB_MODE_EVENT or MZB_MODE_REQUEST, or -1. */
int mzb_request_mode(const struct mzb_request *req);
/* The publisher's MQTT protocol version (3, 4 or 5), or -1. */
int mzb_request_protocol(const struct mzb_request *req);
/* The request timeout in ms (0 for events), or -1. */
int64_t mzb_request_timeout_ms(const struct mzb_request *req);

/*
 * Sets *id to the message id (the idempotency key: a resend keeps it) and
 * returns 1, or returns 0 without metadata. id may be NULL.
 */
int mzb_request_message_id(const struct mzb_request *req, uint64_t *id);

/* Number of MQTT v5 user properties, in the order the publisher sent them. */
size_t mzb_request_user_property_count(const struct mzb_request *req);

/*
 * Sets the i-th user property's key and value (any pointer may be NULL) and
 * returns MZB_HANDLER_OK, or MZB_HANDLER_E_INVALID when i is out of range.
 */
int mzb_request_user_property(const struct mzb_request *req, size_t i, const char **key,
                              size_t *key_len, const char **value, size_t *value_len);

#endif
