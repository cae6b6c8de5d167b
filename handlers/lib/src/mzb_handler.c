#include "mzb_handler.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "handler_dedup.h"
#include "handler_request.h"
#include "handler_wire.h"
#include "mzb_log.h"
#include "mzb_proto.h"

/* recv_once's "nothing for the caller yet, go round again". */
#define AGAIN (-1)

/* read_message's "nothing is waiting on the socket". */
#define EMPTY (-2)

/* The READY frame that offers credit: "credit=" and up to four digits. */
#define CREDIT_FRAME_MAX 16

/* At most one line per this many ms about dropped messages. */
#define DROP_LOG_INTERVAL_MS 5000

/* How long destroy lets DISCONNECT leave before the socket is closed. */
#define CLOSE_LINGER_MS 100

struct mzb_handler {
    void *ctx;
    int own_ctx;
    void *sock; /* NULL while waiting to reconnect */
    char *endpoint;
    char *service;
    uint32_t heartbeat_ms;
    uint32_t liveness;
    uint32_t reconnect_ms;
    uint32_t credit;

    /* Bumped whenever a socket closes, so a reply never goes to a bridge that lacks its request. */
    uint64_t generation;
    uint64_t connected_ms;
    uint64_t last_rx_ms;
    uint64_t next_heartbeat_ms;
    uint64_t reconnect_at_ms;
    int silence_logged; /* the bridge's silence was reported and it has not spoken since */

    struct mzbh_dedup *dedup;
    struct mzb_ratelimit drop_rl;
    volatile sig_atomic_t interrupted;
};

const char *mzb_handler_strerror(int err)
{
    static const char *const text[] = {
        [MZB_HANDLER_OK] = "no error",
        [MZB_HANDLER_E_TIMEOUT] = "no request arrived in time",
        [MZB_HANDLER_E_INTERRUPTED] = "interrupted",
        [MZB_HANDLER_E_ZMQ] = "ZeroMQ failed",
        [MZB_HANDLER_E_NOMEM] = "out of memory",
        [MZB_HANDLER_E_INVALID] = "invalid argument",
    };

    if (err < 0 || (size_t)err >= sizeof(text) / sizeof(text[0])) {
        return "unknown handler error";
    }
    return text[err];
}

static void log_drop(struct mzb_handler *h, const char *what, const char *why)
{
    uint64_t suppressed = 0;
    char more[64] = "";

    if (!mzb_ratelimit_allow(&h->drop_rl, mzb_now_ms(), DROP_LOG_INTERVAL_MS, &suppressed)) {
        mzb_log(MZB_LOG_DEBUG, "service %s: dropped %s: %s", h->service, what, why);
        return;
    }
    if (suppressed > 0) {
        snprintf(more, sizeof(more), " (and %" PRIu64 " more since the last such line)",
                 suppressed);
    }
    mzb_log(MZB_LOG_WARNING,
            "service %s: dropped %s from %s: %s%s; check that the peer there is an mzb-bridge "
            "of this release",
            h->service, what, h->endpoint, why, more);
}

static int send_command(struct mzb_handler *h, uint8_t cmd, const struct mzbh_part *parts, size_t n)
{
    if (mzbh_send_command(h->sock, cmd, parts, n) != 0) {
        mzb_log(MZB_LOG_WARNING, "service %s: cannot send command 0x%02x to %s: %s", h->service,
                cmd, h->endpoint, zmq_strerror(errno));
        return MZB_HANDLER_E_ZMQ;
    }
    return MZB_HANDLER_OK;
}

static int set_options(struct mzb_handler *h)
{
    int linger = 0;
    int ipv6 = 1;

    if (zmq_setsockopt(h->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0) {
        return -1;
    }

    /* Only an IPv6 literal turns IPv6 on, so a host name keeps resolving as before. */
    if (strncmp(h->endpoint, "tcp://[", 7) == 0 &&
        zmq_setsockopt(h->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) != 0) {
        return -1;
    }
    return 0;
}

static int open_socket(struct mzb_handler *h)
{
    h->sock = zmq_socket(h->ctx, ZMQ_DEALER);
    if (!h->sock) {
        mzb_log(MZB_LOG_ERROR, "service %s: cannot create a socket: %s", h->service,
                zmq_strerror(errno));
        return MZB_HANDLER_E_ZMQ;
    }

    if (set_options(h) != 0 || zmq_connect(h->sock, h->endpoint) != 0) {
        mzb_log(MZB_LOG_ERROR, "service %s: cannot connect to %s: %s; check the endpoint",
                h->service, h->endpoint, zmq_strerror(errno));
        zmq_close(h->sock);
        h->sock = NULL;
        return MZB_HANDLER_E_ZMQ;
    }
    return MZB_HANDLER_OK;
}

/* READY names the service and, unless the credit is 1 (plain MDP), offers the credit. */
static int send_ready(struct mzb_handler *h)
{
    char credit[CREDIT_FRAME_MAX];
    struct mzbh_part parts[2] = {{h->service, strlen(h->service)}, {credit, 0}};

    parts[1].len = (size_t)snprintf(credit, sizeof(credit), "credit=%" PRIu32, h->credit);
    return send_command(h, MDP_READY, parts, h->credit > 1 ? 2 : 1);
}

static int connect_bridge(struct mzb_handler *h)
{
    uint64_t now = mzb_now_ms();
    int rc = open_socket(h);

    if (rc != MZB_HANDLER_OK) {
        return rc;
    }

    h->connected_ms = now;
    h->last_rx_ms = now;
    h->next_heartbeat_ms = now + h->heartbeat_ms;
    mzb_log(MZB_LOG_DEBUG, "service %s: connecting to %s with credit %" PRIu32, h->service,
            h->endpoint, h->credit);
    return send_ready(h);
}

static void close_socket(struct mzb_handler *h)
{
    if (zmq_close(h->sock) != 0) {
        mzb_log(MZB_LOG_WARNING, "service %s: closing the socket to %s failed: %s", h->service,
                h->endpoint, zmq_strerror(errno));
    }
    h->sock = NULL;
    h->generation++;
}

static void drop_connection(struct mzb_handler *h)
{
    uint64_t now = mzb_now_ms();

    close_socket(h);

    /* Reconnect at once, unless the last connection was made less than reconnect_ms ago. */
    h->reconnect_at_ms = h->connected_ms + h->reconnect_ms;
    if (h->reconnect_at_ms < now) {
        h->reconnect_at_ms = now;
    }
}

static int copy_options(struct mzb_handler *h, const struct mzb_handler_options *opts)
{
    h->endpoint = strdup(opts->endpoint);
    h->service = strdup(opts->service);
    if (!h->endpoint || !h->service) {
        return MZB_HANDLER_E_NOMEM;
    }

    h->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : MZB_HANDLER_DEFAULT_HEARTBEAT_MS;
    h->liveness = opts->liveness ? opts->liveness : MZB_HANDLER_DEFAULT_LIVENESS;
    h->reconnect_ms = opts->reconnect_ms ? opts->reconnect_ms : MZB_HANDLER_DEFAULT_RECONNECT_MS;
    h->credit = opts->credit ? opts->credit : MZB_HANDLER_DEFAULT_CREDIT;
    h->dedup = mzbh_dedup_new(opts->dedup_size ? opts->dedup_size : MZB_HANDLER_DEFAULT_DEDUP_SIZE);
    return h->dedup ? MZB_HANDLER_OK : MZB_HANDLER_E_NOMEM;
}

static int valid_options(const struct mzb_handler_options *opts)
{
    if (!opts || !opts->endpoint || !opts->endpoint[0]) {
        mzb_log(MZB_LOG_ERROR, "handler: no bridge endpoint given");
        return 0;
    }
    if (!opts->service || !opts->service[0]) {
        mzb_log(MZB_LOG_ERROR, "handler for %s: no service name given", opts->endpoint);
        return 0;
    }
    if (opts->credit > MZB_HANDLER_MAX_CREDIT) {
        mzb_log(MZB_LOG_ERROR,
                "service %s: credit %" PRIu32 " is above %d, the most the bridge accepts",
                opts->service, opts->credit, MZB_HANDLER_MAX_CREDIT);
        return 0;
    }
    return 1;
}

static int attach_context(struct mzb_handler *h, void *shared)
{
    if (shared) {
        h->ctx = shared;
        return MZB_HANDLER_OK;
    }

    h->ctx = zmq_ctx_new();
    if (!h->ctx) {
        mzb_log(MZB_LOG_ERROR, "service %s: cannot create a ZeroMQ context: %s", h->service,
                zmq_strerror(errno));
        return MZB_HANDLER_E_ZMQ;
    }
    h->own_ctx = 1;
    return MZB_HANDLER_OK;
}

struct mzb_handler *mzb_handler_new(const struct mzb_handler_options *opts)
{
    struct mzb_handler *h;

    if (!valid_options(opts)) {
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        mzb_log(MZB_LOG_ERROR, "service %s: out of memory", opts->service);
        return NULL;
    }

    if (copy_options(h, opts) != MZB_HANDLER_OK) {
        mzb_log(MZB_LOG_ERROR, "service %s: out of memory", opts->service);
        mzb_handler_destroy(&h);
        return NULL;
    }
    if (attach_context(h, opts->zmq_context) != MZB_HANDLER_OK ||
        connect_bridge(h) != MZB_HANDLER_OK) {
        mzb_handler_destroy(&h);
        return NULL;
    }
    return h;
}

static void term_context(struct mzb_handler *h)
{
    while (zmq_ctx_term(h->ctx) != 0) {
        if (errno != EINTR) {
            mzb_log(MZB_LOG_WARNING, "service %s: ending the ZeroMQ context failed: %s", h->service,
                    zmq_strerror(errno));
            return;
        }
    }
}

static void say_goodbye(struct mzb_handler *h)
{
    int linger = CLOSE_LINGER_MS;

    /* A bounded linger lets DISCONNECT leave without making the exit hang on a dead bridge. */
    if (mzbh_send_command(h->sock, MDP_DISCONNECT, NULL, 0) != 0) {
        mzb_log(MZB_LOG_DEBUG, "service %s: cannot send DISCONNECT to %s: %s", h->service,
                h->endpoint, zmq_strerror(errno));
        return;
    }
    if (zmq_setsockopt(h->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0) {
        mzb_log(MZB_LOG_DEBUG, "service %s: cannot set a linger time: %s", h->service,
                zmq_strerror(errno));
    }
}

void mzb_handler_destroy(struct mzb_handler **hp)
{
    struct mzb_handler *h;

    if (!hp || !*hp) {
        return;
    }
    h = *hp;

    if (h->sock) {
        say_goodbye(h);
        close_socket(h);
    }
    if (h->own_ctx) {
        term_context(h);
    }
    mzbh_dedup_destroy(&h->dedup);
    free(h->endpoint);
    free(h->service);
    free(h);
    *hp = NULL;
}

void mzb_handler_interrupt(struct mzb_handler *h)
{
    if (h) {
        h->interrupted = 1;
    }
}

static void note_traffic(struct mzb_handler *h)
{
    h->last_rx_ms = mzb_now_ms();
    if (h->silence_logged) {
        mzb_log(MZB_LOG_NOTICE, "service %s: the bridge at %s answers again", h->service,
                h->endpoint);
        h->silence_logged = 0;
    }
}

static void report_silence(struct mzb_handler *h, uint64_t silent_ms)
{
    /* While the bridge stays away every attempt times out; say so once, then quietly. */
    int level = h->silence_logged ? MZB_LOG_DEBUG : MZB_LOG_WARNING;

    mzb_log(level,
            "service %s: nothing from the bridge at %s for %" PRIu64
            " ms; reconnecting (is mzb-bridge running there?)",
            h->service, h->endpoint, silent_ms);
    h->silence_logged = 1;
}

static int send_heartbeat(struct mzb_handler *h)
{
    if (mzbh_send_command(h->sock, MDP_HEARTBEAT, NULL, 0) == 0) {
        return MZB_HANDLER_OK;
    }

    /* A full queue means the bridge is gone, which the liveness check deals with. */
    if (errno == EAGAIN) {
        return MZB_HANDLER_OK;
    }
    mzb_log(MZB_LOG_ERROR, "service %s: cannot send a heartbeat to %s: %s", h->service, h->endpoint,
            zmq_strerror(errno));
    return MZB_HANDLER_E_ZMQ;
}

static int keep_alive(struct mzb_handler *h)
{
    uint64_t now = mzb_now_ms();
    uint64_t silent_ms;

    if (!h->sock) {
        return now >= h->reconnect_at_ms ? connect_bridge(h) : MZB_HANDLER_OK;
    }

    silent_ms = now - h->last_rx_ms;
    if (silent_ms >= (uint64_t)h->heartbeat_ms * h->liveness) {
        report_silence(h, silent_ms);
        drop_connection(h);
        return MZB_HANDLER_OK;
    }

    if (now >= h->next_heartbeat_ms) {
        h->next_heartbeat_ms = now + h->heartbeat_ms;
        return send_heartbeat(h);
    }
    return MZB_HANDLER_OK;
}

static uint64_t next_duty_ms(const struct mzb_handler *h)
{
    uint64_t silent_at;

    if (!h->sock) {
        return h->reconnect_at_ms;
    }
    silent_at = h->last_rx_ms + (uint64_t)h->heartbeat_ms * h->liveness;
    return silent_at < h->next_heartbeat_ms ? silent_at : h->next_heartbeat_ms;
}

static int send_reply(struct mzb_handler *h, struct mzb_request *req, const void *data, size_t len)
{
    struct mzbh_part parts[3] = {
        {req->address, req->address_len}, {"", 0}, {data ? data : "", data ? len : 0}};

    if (!h->sock || req->generation != h->generation) {
        mzb_log(MZB_LOG_NOTICE,
                "service %s: a request came before the last reconnect to %s; its answer is "
                "dropped, since the bridge handed it out on the old connection",
                h->service, h->endpoint);
        return MZB_HANDLER_OK;
    }
    return send_command(h, MDP_REPLY, parts, 3);
}

static int is_event(const struct mzb_request *req)
{
    return req->has_meta && req->meta.mode == MZB_MODE_EVENT;
}

int mzb_handler_reply(struct mzb_handler *h, struct mzb_request *req, const void *data, size_t len)
{
    int rc;

    if (!h || !req) {
        mzb_request_free(req);
        return MZB_HANDLER_E_INVALID;
    }

    rc = send_reply(h, req, data, len);

    /* The work is done even if the reply got lost, so a resend must not repeat it. */
    if (is_event(req)) {
        mzbh_dedup_add(h->dedup, req->meta.msg_id);
    }
    mzb_request_free(req);
    return rc;
}

int mzb_handler_done(struct mzb_handler *h, struct mzb_request *req)
{
    return mzb_handler_reply(h, req, NULL, 0);
}

static int is_resend(struct mzb_handler *h, const struct mzb_request *req)
{
    if (!is_event(req) || !mzbh_dedup_contains(h->dedup, req->meta.msg_id)) {
        return 0;
    }
    mzb_log(MZB_LOG_DEBUG,
            "service %s: event %016" PRIx64 " was handled already; answering its resend at once",
            h->service, req->meta.msg_id);
    return 1;
}

static int on_request(struct mzb_handler *h, struct mzbh_msg *m, struct mzb_request **out)
{
    struct mzb_request *req = NULL;
    const char *why = NULL;
    int rc = mzbh_request_parse(m, h->generation, &req, &why);

    if (rc == MZBH_PARSE_NOMEM) {
        mzb_log(MZB_LOG_ERROR, "service %s: out of memory for a request", h->service);
        return MZB_HANDLER_E_NOMEM;
    }
    if (rc == MZBH_PARSE_ENVELOPE) {
        log_drop(h, "a REQUEST", why);
        return AGAIN;
    }
    if (rc == MZBH_PARSE_META) {
        /* The address is good: an empty reply frees the bridge's slot for this handler. */
        log_drop(h, "a REQUEST with bad metadata", why);
        mzb_handler_done(h, req);
        return AGAIN;
    }

    if (is_resend(h, req)) {
        mzb_handler_done(h, req);
        return AGAIN;
    }
    *out = req;
    return MZB_HANDLER_OK;
}

static int dispatch(struct mzb_handler *h, struct mzbh_msg *m, struct mzb_request **out)
{
    int cmd = mzbh_msg_command(m);

    if (cmd < 0) {
        log_drop(h, "a message", "it does not start with an empty frame, MDPW01 and a command");
        return AGAIN;
    }

    note_traffic(h);
    switch (cmd) {
    case MDP_REQUEST:
        return on_request(h, m, out);
    case MDP_HEARTBEAT:
        return AGAIN;
    case MDP_DISCONNECT:
        mzb_log(MZB_LOG_NOTICE, "service %s: the bridge at %s asked to disconnect; reconnecting",
                h->service, h->endpoint);
        drop_connection(h);
        return AGAIN;
    default:
        log_drop(h, "a message", "its command is not one a bridge sends to a worker");
        return AGAIN;
    }
}

static int read_message(struct mzb_handler *h, struct mzb_request **out)
{
    struct mzbh_msg m;
    int rc;

    if (mzbh_msg_recv(h->sock, &m) != 0) {
        if (errno == EAGAIN) {
            return EMPTY;
        }
        if (errno == EINTR) {
            return MZB_HANDLER_E_INTERRUPTED;
        }
        mzb_log(MZB_LOG_ERROR, "service %s: cannot read from %s: %s", h->service, h->endpoint,
                zmq_strerror(errno));
        return MZB_HANDLER_E_ZMQ;
    }

    rc = dispatch(h, &m, out);
    mzbh_msg_close(&m);
    return rc;
}

static int wait_readable(struct mzb_handler *h, long wait_ms)
{
    zmq_pollitem_t item = {h->sock, 0, ZMQ_POLLIN, 0};
    int n;

    if (!h->sock) {
        /* Waiting to reconnect: plain poll sleeps and still wakes on a signal. */
        n = poll(NULL, 0, (int)wait_ms);
    } else {
        n = zmq_poll(&item, 1, wait_ms);
    }

    if (n < 0 && errno == EINTR) {
        return MZB_HANDLER_E_INTERRUPTED;
    }
    if (n < 0) {
        mzb_log(MZB_LOG_ERROR, "service %s: waiting on %s failed: %s", h->service, h->endpoint,
                zmq_strerror(errno));
        return MZB_HANDLER_E_ZMQ;
    }
    return n > 0 ? MZB_HANDLER_OK : AGAIN;
}

static long wait_time(const struct mzb_handler *h, uint64_t deadline)
{
    uint64_t now = mzb_now_ms();
    uint64_t until = next_duty_ms(h);

    if (deadline < until) {
        until = deadline;
    }
    if (until <= now) {
        return 0;
    }
    return until - now > INT_MAX ? INT_MAX : (long)(until - now);
}

/*
 * At most one message; AGAIN when the caller should go round again. A message
 * already waiting (with credit the bridge sends several) is read without
 * polling first; only an empty socket makes it wait.
 */
static int recv_once(struct mzb_handler *h, struct mzb_request **out, uint64_t deadline)
{
    int rc = h->sock ? read_message(h, out) : EMPTY;

    if (rc != EMPTY) {
        return rc;
    }
    if (mzb_now_ms() >= deadline) {
        return MZB_HANDLER_E_TIMEOUT;
    }

    rc = wait_readable(h, wait_time(h, deadline));
    if (rc == MZB_HANDLER_OK) {
        rc = read_message(h, out);
        return rc == EMPTY ? AGAIN : rc;
    }
    if (rc == AGAIN && mzb_now_ms() >= deadline) {
        return MZB_HANDLER_E_TIMEOUT;
    }
    return rc;
}

int mzb_handler_recv(struct mzb_handler *h, struct mzb_request **req, int timeout_ms)
{
    uint64_t deadline;
    int rc;

    if (!req) {
        return MZB_HANDLER_E_INVALID;
    }
    *req = NULL;
    if (!h) {
        return MZB_HANDLER_E_INVALID;
    }

    deadline = timeout_ms < 0 ? UINT64_MAX : mzb_now_ms() + (uint64_t)timeout_ms;
    do {
        if (h->interrupted) {
            return MZB_HANDLER_E_INTERRUPTED;
        }
        rc = keep_alive(h);
        if (rc == MZB_HANDLER_OK) {
            rc = recv_once(h, req, deadline);
        }
    } while (rc == AGAIN);
    return rc;
}
