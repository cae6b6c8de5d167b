#include "io_thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handoff.h"
#include "io_wire.h"
#include "mzb_batch.h"
#include "mzb_log.h"
#include "mzb_meta.h"
#include "unacked.h"

#define FEED_ENDPOINT "inproc://mzb-plugin-feed"
#define MONITOR_ENDPOINT "inproc://mzb-plugin-monitor"
/* Longest wait after a broken connection before sends resume without a CONNECTED event. */
#define MZBP_PAUSE_MS 2000
/* Messages read per socket per loop pass, so neither direction starves the other. */
#define READS_PER_PASS 256
#define STATS_JSON_CAP 4096

struct mzbp_io {
    void *zctx;
    void *feed_out; /* broker's thread: sends wake-ups */
    void *feed_in;  /* I/O thread: receives them */
    void *dealer;   /* I/O thread: talks to the bridge */
    void *monitor;  /* I/O thread: hears when the DEALER's connection breaks */
    pthread_t thread;
    int thread_started;
    atomic_int stop;

    /* Shared by both threads: the batch, and what tells the broker's thread whether to wake. */
    struct mzbp_handoff handoff;
    int handoff_ready;
    atomic_int wake_sent; /* a wake-up is on its way and not yet read */
    atomic_int sleeping;  /* the I/O thread waits in a long poll with nothing taken */

    /* The broker's thread only. */
    uint64_t last_wake_us;
    uint64_t last_tick_us;
    uint64_t rate;        /* dispatches per second, smoothed over the last wake-ups */
    uint64_t coalesce_us; /* the least time between two wake-ups while messages flow */

    struct mzbp_stats *stats;
    struct mzbp_unacked *unacked;
    uint64_t instance;
    uint32_t max_unacked;

    uint64_t next_heartbeat_ms;
    uint64_t last_bridge_ms;
    uint64_t bridge_instance;
    int bridge_seen;  /* a bridge HEARTBEAT arrived at least once */
    int bridge_alive; /* and the last one is younger than MZBP_BRIDGE_SILENCE_MS */
    int requeued;     /* held messages were queued again since the last bridge HEARTBEAT */
    int paused;       /* a connection broke: no sends until the next one is up */
    uint64_t pause_until_ms;
    uint64_t last_take_ms; /* when records were last taken from the handoff */
};

__attribute__((format(printf, 2, 3))) static int fail(struct mzbp_io_error *err, const char *fmt,
                                                      ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    return -1;
}

static int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof(value));
}

/* LINGER 0 everywhere: with ZeroMQ's default of -1, zmq_ctx_term would wait for a bridge. */
static void close_socket(void **sock)
{
    if (*sock == NULL) {
        return;
    }
    (void)set_int(*sock, ZMQ_LINGER, 0);
    (void)zmq_close(*sock);
    *sock = NULL;
}

static void term_context(void **zctx)
{
    if (*zctx == NULL) {
        return;
    }
    while (zmq_ctx_term(*zctx) != 0 && errno == EINTR) {
    }
    *zctx = NULL;
}

static void *open_socket(struct mzbp_io *io, int type, struct mzbp_io_error *err, const char *what)
{
    void *sock = zmq_socket(io->zctx, type);

    if (sock == NULL) {
        fail(err, "cannot create the %s socket: %s", what, zmq_strerror(errno));
        return NULL;
    }
    if (set_int(sock, ZMQ_LINGER, 0) != 0) {
        fail(err, "cannot set LINGER on the %s socket: %s", what, zmq_strerror(errno));
        (void)zmq_close(sock);
        return NULL;
    }
    return sock;
}

/*
 * The inproc pair carries only wake-ups, at most one unread at a time (the
 * dispatches themselves wait in the handoff), so its bounds are token ones.
 */
static int open_feed(struct mzbp_io *io, struct mzbp_io_error *err)
{
    io->feed_in = open_socket(io, ZMQ_PAIR, err, "inproc receiving");
    io->feed_out = open_socket(io, ZMQ_PAIR, err, "inproc sending");
    if (io->feed_in == NULL || io->feed_out == NULL) {
        return -1;
    }
    if (set_int(io->feed_in, ZMQ_RCVHWM, 1) != 0 || set_int(io->feed_out, ZMQ_SNDHWM, 16) != 0) {
        return fail(err, "cannot set the inproc queue limit: %s", zmq_strerror(errno));
    }
    if (zmq_bind(io->feed_in, FEED_ENDPOINT) != 0 ||
        zmq_connect(io->feed_out, FEED_ENDPOINT) != 0) {
        return fail(err, "cannot link the broker's thread to the I/O thread over %s: %s",
                    FEED_ENDPOINT, zmq_strerror(errno));
    }
    return 0;
}

static int set_dealer_options(void *dealer)
{
    /* IMMEDIATE: queue nothing toward a bridge that is not connected. */
    if (set_int(dealer, ZMQ_IMMEDIATE, 1) != 0 ||
        set_int(dealer, ZMQ_SNDHWM, MZBP_DEALER_SNDHWM) != 0 ||
        set_int(dealer, ZMQ_RECONNECT_IVL, 100) != 0 ||
        set_int(dealer, ZMQ_RECONNECT_IVL_MAX, 1000) != 0) {
        return -1;
    }
    /* ZMTP heartbeats close a connection whose peer vanished without a FIN. */
    if (set_int(dealer, ZMQ_HEARTBEAT_IVL, MZBP_HEARTBEAT_MS) != 0 ||
        set_int(dealer, ZMQ_HEARTBEAT_TIMEOUT, MZBP_BRIDGE_SILENCE_MS) != 0) {
        return -1;
    }
    return 0;
}

/*
 * A broken connection drops whatever ZeroMQ still queued for it, so the
 * held messages must go again even when the same bridge instance answers on.
 */
static int open_monitor(struct mzbp_io *io, struct mzbp_io_error *err)
{
    if (zmq_socket_monitor(io->dealer, MONITOR_ENDPOINT,
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0) {
        return fail(err, "cannot watch the DEALER socket's connection: %s", zmq_strerror(errno));
    }
    io->monitor = open_socket(io, ZMQ_PAIR, err, "monitor");
    if (io->monitor == NULL) {
        return -1;
    }
    if (zmq_connect(io->monitor, MONITOR_ENDPOINT) != 0) {
        return fail(err, "cannot connect to %s: %s", MONITOR_ENDPOINT, zmq_strerror(errno));
    }
    return 0;
}

static int open_dealer(struct mzbp_io *io, const char *endpoint, struct mzbp_io_error *err)
{
    io->dealer = open_socket(io, ZMQ_DEALER, err, "DEALER");
    if (io->dealer == NULL) {
        return -1;
    }
    if (set_dealer_options(io->dealer) != 0) {
        return fail(err, "cannot set options on the DEALER socket: %s", zmq_strerror(errno));
    }
    if (open_monitor(io, err) != 0) {
        return -1;
    }
    if (zmq_connect(io->dealer, endpoint) != 0) {
        return fail(err,
                    "cannot connect to bridge.plugin_endpoint \"%s\": %s; use a ZeroMQ "
                    "endpoint such as tcp://127.0.0.1:5555 or ipc:///run/mzb/plugin.sock",
                    endpoint, zmq_strerror(errno));
    }
    return 0;
}

static void free_io(struct mzbp_io *io)
{
    close_socket(&io->feed_out);
    close_socket(&io->feed_in);
    if (io->monitor != NULL) {
        (void)zmq_socket_monitor(io->dealer, NULL, 0);
    }
    close_socket(&io->monitor);
    close_socket(&io->dealer);
    term_context(&io->zctx);
    mzbp_unacked_destroy(&io->unacked);
    if (io->handoff_ready) {
        mzbp_handoff_destroy(&io->handoff);
    }
    free(io);
}

static void update_gauges(struct mzbp_io *io)
{
    mzbp_stat_set(&io->stats->unacked, mzbp_unacked_count(io->unacked));
    mzbp_stat_set(&io->stats->unsent, mzbp_unacked_unsent_count(io->unacked));
    mzbp_stat_set(&io->stats->deferred, mzbp_unacked_deferred_count(io->unacked));
    mzbp_stat_set(&io->stats->bridge_alive, (uint64_t)io->bridge_alive);
}

/* Returns 0 when the heartbeat went out, EAGAIN when no bridge is connected to take it. */
static int send_heartbeat(struct mzbp_io *io)
{
    char json[STATS_JSON_CAP];
    size_t len;
    int rc;

    update_gauges(io);
    len = mzbp_stats_json(io->stats, json, sizeof(json));
    if (len == 0) {
        len = (size_t)snprintf(json, sizeof(json), "{}");
    }
    rc = mzbp_wire_send_heartbeat(io->dealer, io->instance, json, len);
    if (rc != 0 && rc != EAGAIN) {
        mzbp_stat_add(&io->stats->send_errors, 1);
    }
    return rc;
}

/* Copies the held entries from p on, at most MZBP_RESEND_RECORDS, into one BATCH body. */
static uint8_t *resend_body(struct mzbp_pending *p, size_t *len, size_t *count)
{
    size_t total = 0;
    size_t n = 0;
    uint8_t *body;

    for (struct mzbp_pending *q = p; q != NULL && n < MZBP_RESEND_RECORDS; q = q->qnext, n++) {
        if (n > 0 && total + q->record_len > MZBP_WAKE_BYTES) {
            break;
        }
        total += q->record_len;
    }
    body = malloc(total > 0 ? total : 1);
    if (body == NULL) {
        return NULL;
    }
    *len = 0;
    for (size_t i = 0; i < n; i++, p = p->qnext) {
        memcpy(body + *len, p->record, p->record_len);
        *len += p->record_len;
    }
    *count = n;
    return body;
}

/* Marks the first n queued entries sent and counts them as first sends or resends. */
static void mark_sent(struct mzbp_io *io, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct mzbp_pending *p = mzbp_unacked_first_queued(io->unacked);

        mzbp_stat_add(p->sent_before ? &io->stats->resent : &io->stats->sent, 1);
        p->sent_before = 1;
        mzbp_unacked_mark_first_sent(io->unacked);
    }
}

/*
 * Queues the deferred messages whose time has come, then sends the queue in
 * order, several to a BATCH, until the socket takes no more.
 */
static void flush_unsent(struct mzbp_io *io)
{
    struct mzbp_pending *p;

    (void)mzbp_unacked_release_due(io->unacked, mzb_now_ms());
    if (io->paused) {
        return;
    }
    while ((p = mzbp_unacked_first_queued(io->unacked)) != NULL) {
        size_t len = 0;
        size_t count = 0;
        uint8_t *body = resend_body(p, &len, &count);
        int rc;

        if (body == NULL) {
            mzbp_stat_add(&io->stats->send_errors, 1);
            return;
        }
        rc = mzbp_wire_send_batch(io->dealer, body, len);
        if (rc != 0) {
            if (rc != EAGAIN) {
                mzbp_stat_add(&io->stats->send_errors, 1);
            }
            return;
        }
        mark_sent(io, count);
    }
}

/*
 * Counts records that a full socket did not take: with IMMEDIATE set that
 * means no bridge is connected, unless the bridge answers heartbeats, in
 * which case it is connected but has not read the last MZBP_DEALER_SNDHWM
 * batches yet.
 */
static void count_not_taken(struct mzbp_io *io, uint64_t n)
{
    int busy = io->bridge_alive && !io->paused;

    mzbp_stat_add(busy ? &io->stats->dropped_bridge_busy : &io->stats->dropped_no_bridge, n);
}

/* Sends a body of records that are not held: once when a bridge can take it, else dropped. */
static void send_unheld(struct mzbp_io *io, uint8_t *body, size_t len, uint32_t count)
{
    int rc = mzbp_wire_send_batch(io->dealer, body, len);

    if (rc == 0) {
        mzbp_stat_add(&io->stats->sent, count);
    } else if (rc == EAGAIN) {
        count_not_taken(io, count);
    } else {
        mzbp_stat_add(&io->stats->send_errors, count);
    }
}

/* QoS 1 and 2, unless plugin.max_unacked is 0: held until acknowledged. */
static int is_held(const struct mzbp_io *io, const struct mzb_batch_record *rec)
{
    return io->max_unacked > 0 && rec->meta[2] > 0;
}

/* Adds a held record to the table, behind any older queued message; 0 when it is held. */
static int hold(struct mzbp_io *io, const uint8_t *record, size_t len,
                const struct mzb_batch_record *rec)
{
    struct mzbp_pending *p = mzbp_pending_new(mzb_get_u64(rec->meta + 8), record, len);
    int rc;

    if (p == NULL) {
        mzbp_stat_add(&io->stats->handoff_errors, 1);
        return -1;
    }
    rc = mzbp_unacked_add(io->unacked, p);
    if (rc != MZBP_UNACKED_OK) {
        mzbp_stat_add(rc == MZBP_UNACKED_E_FULL ? &io->stats->unacked_full_dropped
                                                : &io->stats->handoff_errors,
                      1);
        mzbp_pending_free(&p);
        return -1;
    }
    return 0;
}

/* What sorting a batch found: how many records are held, and whether all went in order. */
struct sorted {
    uint32_t held;
    uint32_t unheld;
    int clean; /* every record readable, every held one added */
};

/* Adds the batch's held records to the table, in order, and counts the others. */
static void sort_batch(struct mzbp_io *io, const struct mzbp_handoff_batch *b, struct sorted *out)
{
    struct mzb_batch_record rec;
    size_t offset = 0;
    size_t start = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->clean = 1;
    while ((rc = mzb_batch_next(b->data, b->len, &offset, &rec)) == MZB_BATCH_OK) {
        if (rec.meta_len < MZB_META_HEADER_SIZE) {
            mzbp_stat_add(&io->stats->handoff_errors, 1);
            out->clean = 0;
        } else if (is_held(io, &rec)) {
            out->held++;
            if (hold(io, b->data + start, offset - start, &rec) != 0) {
                out->clean = 0;
            }
        } else {
            out->unheld++;
        }
        start = offset;
    }
    if (rc != MZB_BATCH_END) {
        mzbp_stat_add(&io->stats->handoff_errors, 1);
        out->clean = 0;
    }
}

/* Copies the records of the batch that are not held into dst (room for b->len); their length. */
static size_t copy_unheld(const struct mzbp_io *io, const struct mzbp_handoff_batch *b,
                          uint8_t *dst)
{
    struct mzb_batch_record rec;
    size_t offset = 0;
    size_t start = 0;
    size_t len = 0;

    while (mzb_batch_next(b->data, b->len, &offset, &rec) == MZB_BATCH_OK) {
        if (rec.meta_len >= MZB_META_HEADER_SIZE && !is_held(io, &rec)) {
            memcpy(dst + len, b->data + start, offset - start);
            len += offset - start;
        }
        start = offset;
    }
    return len;
}

/* Sends the records of the batch that are not held, on their own. */
static void send_unheld_part(struct mzbp_io *io, const struct mzbp_handoff_batch *b, uint32_t count)
{
    uint8_t *body;

    if (count == 0) {
        return;
    }
    body = malloc(b->len);
    if (body == NULL) {
        mzbp_stat_add(&io->stats->handoff_errors, count);
        return;
    }
    send_unheld(io, body, copy_unheld(io, b, body), count);
}

/*
 * Sends what the broker's thread handed over. Held records join the table
 * first. The batch goes as it is, without a copy, unless held records would
 * overtake older ones still waiting to be sent (or a record could not be
 * held): then the records that are not held go on their own and the held
 * ones wait their turn in the send queue.
 */
static void send_batch(struct mzbp_io *io, struct mzbp_handoff_batch *b)
{
    int in_order = !io->paused && mzbp_unacked_first_queued(io->unacked) == NULL;
    struct sorted s;
    int rc;

    sort_batch(io, b, &s);
    if (!s.clean || (s.held > 0 && !in_order)) {
        send_unheld_part(io, b, s.unheld);
        free(b->data);
        b->data = NULL;
        flush_unsent(io);
        return;
    }

    rc = mzbp_wire_send_batch(io->dealer, b->data, b->len);
    b->data = NULL;
    if (rc == 0) {
        mark_sent(io, s.held);
        mzbp_stat_add(&io->stats->sent, s.unheld);
        return;
    }
    /* Held records stay queued for the next flush; the others are gone. */
    if (rc == EAGAIN) {
        count_not_taken(io, s.unheld);
    } else {
        mzbp_stat_add(&io->stats->send_errors, s.unheld);
    }
}

/* Takes and sends what the broker's thread handed over. */
static void take_handoff(struct mzbp_io *io)
{
    struct mzbp_handoff_batch b;

    if (mzbp_handoff_take(&io->handoff, &b)) {
        io->last_take_ms = mzb_now_ms();
        send_batch(io, &b);
    }
}

/* Reads the wake-ups; a wake-up read before the take means no append is left unseen. */
static void drain_feed(struct mzbp_io *io)
{
    char token[1];

    while (zmq_recv(io->feed_in, token, sizeof(token), ZMQ_DONTWAIT) >= 0) {
    }
    atomic_store(&io->wake_sent, 0);
    take_handoff(io);
}

static void handle_ack(struct mzbp_io *io, const struct mzbp_bridge_msg *m)
{
    for (size_t i = 0; i < m->id_count; i++) {
        struct mzbp_pending *p = mzbp_unacked_take(io->unacked, mzb_get_u64(m->ids + 8 * i));

        if (p == NULL) {
            mzbp_stat_add(&io->stats->ack_unknown, 1);
            continue;
        }
        mzbp_stat_add(&io->stats->acked, 1);
        mzbp_pending_free(&p);
    }
}

/*
 * A service queue in the bridge was full: each message stays held and goes
 * again after its backoff, while the messages behind it go on at once.
 */
static void handle_retry(struct mzbp_io *io, const struct mzbp_bridge_msg *m, uint64_t now_ms)
{
    for (size_t i = 0; i < m->id_count; i++) {
        uint64_t id = mzb_get_u64(m->ids + 8 * i);

        if (mzbp_unacked_defer(io->unacked, id, now_ms) != NULL) {
            mzbp_stat_add(&io->stats->retries_received, 1);
        } else {
            mzbp_stat_add(&io->stats->retry_unknown, 1);
        }
    }
}

/*
 * Queues every held message again, oldest first, for a bridge that may have
 * lost them; deferred ones too, with their backoff forgotten, since a new
 * connection or bridge instance says nothing about the old one's queues.
 */
static void requeue_all(struct mzbp_io *io)
{
    mzbp_unacked_mark_all_unsent(io->unacked);
    mzbp_stat_set(&io->stats->last_requeue, mzbp_unacked_count(io->unacked));
}

/*
 * A new bridge instance, or the same one after a silence, may have lost what
 * it was sent, so everything held goes again, in order. When a broken
 * connection (drain_monitor) queued it all again already, a second time would
 * only send duplicates. A heartbeat read while paused came through the broken
 * connection, so it tells nothing about the bridge now.
 */
static void handle_bridge_heartbeat(struct mzbp_io *io, uint64_t instance, uint64_t now_ms)
{
    int restarted = io->bridge_seen && instance != io->bridge_instance;
    int returned = io->bridge_seen && !restarted && !io->bridge_alive;

    mzbp_stat_add(&io->stats->bridge_heartbeats, 1);
    if (io->paused) {
        return;
    }
    if (restarted || returned) {
        mzbp_stat_add(restarted ? &io->stats->bridge_restarts : &io->stats->bridge_returns, 1);
        if (!io->requeued) {
            requeue_all(io);
        }
    }
    io->requeued = 0;
    io->bridge_seen = 1;
    io->bridge_alive = 1;
    io->bridge_instance = instance;
    io->last_bridge_ms = now_ms;
    mzbp_stat_set(&io->stats->bridge_instance, instance);
    flush_unsent(io);
}

static void drain_bridge(struct mzbp_io *io, uint64_t now_ms)
{
    zmq_msg_t frames[MZBP_WIRE_MAX_FRAMES];
    struct mzbp_bridge_msg m;

    for (int i = 0; i < READS_PER_PASS; i++) {
        int n = 0;

        if (mzbp_wire_recv(io->dealer, frames, MZBP_WIRE_MAX_FRAMES, &n) != 0) {
            return;
        }
        mzbp_wire_parse_bridge(frames, n, &m);
        if (m.kind == MZBP_BRIDGE_ACK) {
            handle_ack(io, &m);
        } else if (m.kind == MZBP_BRIDGE_RETRY) {
            handle_retry(io, &m, now_ms);
        } else if (m.kind == MZBP_BRIDGE_HEARTBEAT) {
            handle_bridge_heartbeat(io, m.instance, now_ms);
        } else {
            mzbp_stat_add(&io->stats->bridge_malformed, 1);
        }
        mzbp_wire_close(frames, n > MZBP_WIRE_MAX_FRAMES ? MZBP_WIRE_MAX_FRAMES : n);
    }
}

/*
 * ZeroMQ drops what it still queued for a connection that breaks, so every
 * held message is queued again. Sends wait for the next connection: until
 * the socket has seen the old one go, a send could still land in it and be
 * lost with it.
 */
static void handle_monitor_event(struct mzbp_io *io, uint16_t event)
{
    if (event == ZMQ_EVENT_DISCONNECTED) {
        mzbp_stat_add(&io->stats->bridge_disconnects, 1);
        requeue_all(io);
        io->requeued = 1;
        io->paused = 1;
        io->pause_until_ms = mzb_now_ms() + MZBP_PAUSE_MS;
    } else if (event == ZMQ_EVENT_CONNECTED) {
        io->paused = 0;
    }
}

/* Monitor events are two frames: event number and value, then the endpoint. */
static void drain_monitor(struct mzbp_io *io)
{
    zmq_msg_t frames[MZBP_WIRE_MAX_FRAMES];
    uint16_t event;

    for (int i = 0; i < READS_PER_PASS; i++) {
        int n = 0;

        if (mzbp_wire_recv(io->monitor, frames, MZBP_WIRE_MAX_FRAMES, &n) != 0) {
            return;
        }
        if (n >= 1 && zmq_msg_size(&frames[0]) >= sizeof(event)) {
            memcpy(&event, zmq_msg_data(&frames[0]), sizeof(event));
            handle_monitor_event(io, event);
        }
        mzbp_wire_close(frames, n > MZBP_WIRE_MAX_FRAMES ? MZBP_WIRE_MAX_FRAMES : n);
    }
}

static void run_timers(struct mzbp_io *io, uint64_t now_ms)
{
    if (io->bridge_alive && now_ms - io->last_bridge_ms > MZBP_BRIDGE_SILENCE_MS) {
        io->bridge_alive = 0;
    }
    /* In case the CONNECTED event was lost: the old connection is long gone by now. */
    if (io->paused && now_ms >= io->pause_until_ms) {
        io->paused = 0;
    }
    if (now_ms >= io->next_heartbeat_ms) {
        /* Until a bridge is connected, try again soon so that it hears from us at once. */
        int rc = send_heartbeat(io);

        io->next_heartbeat_ms = now_ms + (rc == EAGAIN ? MZBP_POLL_MS : MZBP_HEARTBEAT_MS);
    }
}

/* Until the next heartbeat or the next deferred message's time, at most MZBP_POLL_MS. */
static long poll_timeout(struct mzbp_io *io, uint64_t now_ms)
{
    long timeout = MZBP_POLL_MS;
    uint64_t due;

    if (io->next_heartbeat_ms > now_ms && (long)(io->next_heartbeat_ms - now_ms) < timeout) {
        timeout = (long)(io->next_heartbeat_ms - now_ms);
    }
    if (mzbp_unacked_next_due(io->unacked, &due)) {
        long wait = due > now_ms ? (long)(due - now_ms) : 0;

        timeout = wait < timeout ? wait : timeout;
    }
    return timeout;
}

/*
 * With records waiting, or while messages flow (something was taken within
 * MZBP_LINGER_MS), the thread looks again within MZBP_SWEEP_MS and the
 * broker's thread wakes it at most once per coalescing time. Otherwise it says
 * it sleeps before it looks a last time, so the next record wakes it at once:
 * the broker's thread reads that flag after each append, so one of the two
 * sees the other.
 */
static long feed_timeout(struct mzbp_io *io, long timeout, uint64_t now_ms)
{
    long sweep = timeout < MZBP_SWEEP_MS ? timeout : MZBP_SWEEP_MS;

    if (mzbp_handoff_pending(&io->handoff) > 0 || now_ms - io->last_take_ms < MZBP_LINGER_MS) {
        return sweep;
    }
    atomic_store(&io->sleeping, 1);
    if (mzbp_handoff_pending(&io->handoff) > 0) {
        atomic_store(&io->sleeping, 0);
        return sweep;
    }
    return timeout;
}

static void poll_once(struct mzbp_io *io, uint64_t now_ms)
{
    zmq_pollitem_t items[3] = {
        {io->feed_in, 0, ZMQ_POLLIN, 0},
        {io->dealer, 0, ZMQ_POLLIN, 0},
        {io->monitor, 0, ZMQ_POLLIN, 0},
    };
    long timeout = feed_timeout(io, poll_timeout(io, now_ms), now_ms);
    int n;

    /* POLLOUT wakes the thread as soon as a bridge can take held messages again. */
    if (!io->paused && mzbp_unacked_first_queued(io->unacked) != NULL) {
        items[1].events |= ZMQ_POLLOUT;
    }

    n = zmq_poll(items, 3, timeout);
    atomic_store(&io->sleeping, 0);
    if (n <= 0) {
        take_handoff(io); /* the sweep: records waited a whole timeout */
        return;           /* timeout or EINTR: the caller's loop runs the timers again */
    }
    if (items[0].revents & ZMQ_POLLIN) {
        drain_feed(io);
    }
    if (items[2].revents & ZMQ_POLLIN) {
        drain_monitor(io);
    }
    if (items[1].revents & ZMQ_POLLIN) {
        drain_bridge(io, mzb_now_ms());
    }
}

static void *io_main(void *arg)
{
    struct mzbp_io *io = arg;

    io->next_heartbeat_ms = mzb_now_ms();
    while (!atomic_load(&io->stop)) {
        run_timers(io, mzb_now_ms());
        flush_unsent(io);
        update_gauges(io);
        poll_once(io, mzb_now_ms());
    }
    /* What the broker's thread handed over last joins the counts its stop message reports. */
    take_handoff(io);
    update_gauges(io);
    return NULL;
}

/* The broker's signals (SIGHUP, SIGINT, ...) must reach its own thread, not this one. */
static int start_thread(struct mzbp_io *io, struct mzbp_io_error *err)
{
    sigset_t all;
    sigset_t old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&io->thread, NULL, io_main, io);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        return fail(err, "cannot start the I/O thread: %s", strerror(rc));
    }
    io->thread_started = 1;
    return 0;
}

int mzbp_io_start(const struct mzbp_io_settings *settings, struct mzbp_stats *stats,
                  struct mzbp_io **out, struct mzbp_io_error *err)
{
    struct mzbp_io *io = calloc(1, sizeof(*io));

    *out = NULL;
    if (io == NULL) {
        return fail(err, "out of memory");
    }
    atomic_init(&io->stop, 0);
    atomic_init(&io->wake_sent, 0);
    atomic_init(&io->sleeping, 0);
    io->coalesce_us = MZBP_COALESCE_MIN_US;
    io->stats = stats;
    io->instance = settings->instance;
    io->max_unacked = settings->max_unacked;
    io->unacked = mzbp_unacked_new(settings->max_unacked);
    io->zctx = zmq_ctx_new();
    if (io->unacked == NULL || io->zctx == NULL) {
        fail(err, "cannot set up the I/O thread: %s",
             io->zctx == NULL ? zmq_strerror(errno) : "out of memory");
        goto failed;
    }
    if (mzbp_handoff_init(&io->handoff, settings->queue_limit) != 0) {
        fail(err, "cannot set up the lock between the broker's thread and the I/O thread");
        goto failed;
    }
    io->handoff_ready = 1;
    if (open_feed(io, err) != 0 || open_dealer(io, settings->endpoint, err) != 0 ||
        start_thread(io, err) != 0) {
        goto failed;
    }
    *out = io;
    return 0;

failed:
    free_io(io);
    return -1;
}

void mzbp_io_stop(struct mzbp_io **iop)
{
    struct mzbp_io *io = iop ? *iop : NULL;

    if (io == NULL) {
        return;
    }
    atomic_store(&io->stop, 1);
    if (io->thread_started) {
        /* A wake-up saves waiting out the poll; when the queue is full the timeout does it. */
        (void)zmq_send(io->feed_out, "", 0, ZMQ_DONTWAIT);
        pthread_join(io->thread, NULL);
    }
    free_io(io);
    *iop = NULL;
}

/* Follows the rate of dispatches, measured over the time since the last wake-up. */
static void adapt_coalescing(struct mzbp_io *io, uint64_t now, uint32_t waiting)
{
    uint64_t span = now - io->last_wake_us;
    uint64_t rate = span > 0 ? (uint64_t)waiting * 1000000u / span : io->rate;
    uint64_t t;

    io->rate = (3 * io->rate + rate) / 4;
    t = io->rate / MZBP_COALESCE_RATE_PER_US;
    io->coalesce_us = t < MZBP_COALESCE_MIN_US   ? MZBP_COALESCE_MIN_US
                      : t > MZBP_COALESCE_MAX_US ? MZBP_COALESCE_MAX_US
                                                 : t;
}

/* One wake-up at a time: the I/O thread takes everything that waits when it reads it. */
static void wake(struct mzbp_io *io, uint64_t now)
{
    adapt_coalescing(io, now, mzbp_handoff_pending(&io->handoff));
    io->last_wake_us = now;
    if (atomic_exchange(&io->wake_sent, 1)) {
        return;
    }
    if (zmq_send(io->feed_out, "", 0, ZMQ_DONTWAIT) < 0) {
        /* Not sent (a signal, or a full pipe): the sweep takes the records instead. */
        atomic_store(&io->wake_sent, 0);
    }
}

int mzbp_io_feed(struct mzbp_io *io, const char *service, size_t service_len,
                 const struct mzb_meta *meta, const void *payload, size_t payload_len)
{
    uint32_t waiting = 0;
    size_t bytes = 0;
    uint64_t now;
    int rc = mzbp_handoff_append(&io->handoff, service, service_len, meta, payload, payload_len,
                                 &waiting, &bytes);

    if (rc != 0) {
        return rc;
    }

    if (waiting >= MZBP_WAKE_RECORDS || bytes >= MZBP_WAKE_BYTES) {
        wake(io, mzb_now_us());
        return 0;
    }
    /* Without TICKs nothing would hand this over within the coalescing time: do it now. */
    now = mzb_now_us();
    if (now - io->last_tick_us > MZBP_TICK_STALE_US) {
        wake(io, now);
    }
    return 0;
}

void mzbp_io_tick(struct mzbp_io *io, uint64_t now)
{
    if (io == NULL) {
        return;
    }
    io->last_tick_us = now;
    if (mzbp_handoff_pending(&io->handoff) == 0) {
        return;
    }
    if (atomic_load(&io->sleeping) || now - io->last_wake_us >= io->coalesce_us) {
        wake(io, now);
    }
}
