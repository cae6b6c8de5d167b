#include "io_thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_wire.h"
#include "mzb_log.h"
#include "mzb_meta.h"
#include "unacked.h"

#define FEED_ENDPOINT "inproc://mzb-plugin-feed"
#define MONITOR_ENDPOINT "inproc://mzb-plugin-monitor"
/* Longest wait after a broken connection before sends resume without a CONNECTED event. */
#define MZBP_PAUSE_MS 2000
/* Messages read per socket per loop pass, so neither direction starves the other. */
#define BATCH 256
#define STATS_JSON_CAP 4096

struct mzbp_io {
    void *zctx;
    void *feed_out; /* broker's thread: sends dispatches */
    void *feed_in;  /* I/O thread: receives them */
    void *dealer;   /* I/O thread: talks to the bridge */
    void *monitor;  /* I/O thread: hears when the DEALER's connection breaks */
    pthread_t thread;
    int thread_started;
    atomic_int stop;

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
 * For inproc ZeroMQ adds the receiver's RCVHWM to the sender's SNDHWM, and an
 * RCVHWM of 0 would lift the bound entirely, so the receiving end keeps a
 * token bound of 1 and the sender carries plugin.queue_limit.
 */
static int open_feed(struct mzbp_io *io, uint32_t queue_limit, struct mzbp_io_error *err)
{
    int limit = queue_limit == 0 ? 1 : (queue_limit > INT32_MAX ? INT32_MAX : (int)queue_limit);

    io->feed_in = open_socket(io, ZMQ_PAIR, err, "inproc receiving");
    io->feed_out = open_socket(io, ZMQ_PAIR, err, "inproc sending");
    if (io->feed_in == NULL || io->feed_out == NULL) {
        return -1;
    }
    if (set_int(io->feed_in, ZMQ_RCVHWM, 1) != 0 || set_int(io->feed_out, ZMQ_SNDHWM, limit) != 0) {
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

/*
 * Queues the deferred messages whose time has come, then sends the queue in
 * order until the socket takes no more.
 */
static void flush_unsent(struct mzbp_io *io)
{
    struct mzbp_pending *p;

    (void)mzbp_unacked_release_due(io->unacked, mzb_now_ms());
    if (io->paused) {
        return;
    }
    while ((p = mzbp_unacked_first_queued(io->unacked)) != NULL) {
        int rc = mzbp_wire_send_dispatch(io->dealer, p->frames, 1);

        if (rc == EAGAIN) {
            return;
        }
        if (rc != 0) {
            mzbp_stat_add(&io->stats->send_errors, 1);
            return;
        }
        mzbp_stat_add(p->sent_before ? &io->stats->resent : &io->stats->sent, 1);
        p->sent_before = 1;
        mzbp_unacked_mark_first_sent(io->unacked);
    }
}

/* Sent once when a bridge can take it, else dropped; never held, never resent. */
static void forward_unheld(struct mzbp_io *io, zmq_msg_t *frames)
{
    int rc = mzbp_wire_send_dispatch(io->dealer, frames, 0);

    if (rc == 0) {
        mzbp_stat_add(&io->stats->sent, 1);
    } else if (rc == EAGAIN) {
        mzbp_stat_add(&io->stats->dropped_no_bridge, 1);
    } else {
        mzbp_stat_add(&io->stats->send_errors, 1);
    }
}

/* QoS 1 and 2: held until acknowledged, sent behind any older queued message. */
static void hold_and_send(struct mzbp_io *io, uint64_t id, zmq_msg_t *frames)
{
    struct mzbp_pending *p = mzbp_pending_new(id);
    int rc;

    if (p == NULL) {
        mzbp_stat_add(&io->stats->handoff_errors, 1);
        return;
    }
    for (int i = 0; i < MZBP_FRAME_COUNT; i++) {
        (void)zmq_msg_move(&p->frames[i], &frames[i]);
    }
    rc = mzbp_unacked_add(io->unacked, p);
    if (rc != MZBP_UNACKED_OK) {
        mzbp_stat_add(rc == MZBP_UNACKED_E_FULL ? &io->stats->unacked_full_dropped
                                                : &io->stats->handoff_errors,
                      1);
        mzbp_pending_free(&p);
        return;
    }
    flush_unsent(io);
}

static void handle_dispatch(struct mzbp_io *io, zmq_msg_t *frames)
{
    const uint8_t *meta = zmq_msg_data(&frames[MZBP_FRAME_META]);

    if (zmq_msg_size(&frames[MZBP_FRAME_META]) < MZB_META_HEADER_SIZE) {
        mzbp_stat_add(&io->stats->handoff_errors, 1);
        return;
    }
    /* plugin.max_unacked 0 means QoS 1 and 2 are not held either. */
    if (meta[2] == 0 || io->max_unacked == 0) {
        forward_unheld(io, frames);
    } else {
        hold_and_send(io, mzb_get_u64(meta + 8), frames);
    }
}

/* Reads what the broker's thread handed over; a one-frame message only wakes the thread. */
static void drain_feed(struct mzbp_io *io)
{
    zmq_msg_t frames[MZBP_WIRE_MAX_FRAMES];

    for (int i = 0; i < BATCH; i++) {
        int n = 0;
        int rc = mzbp_wire_recv(io->feed_in, frames, MZBP_WIRE_MAX_FRAMES, &n);

        if (rc != 0) {
            return;
        }
        if (n == MZBP_FRAME_COUNT) {
            handle_dispatch(io, frames);
        } else if (n != 1) {
            mzbp_stat_add(&io->stats->handoff_errors, 1);
        }
        mzbp_wire_close(frames, n > MZBP_WIRE_MAX_FRAMES ? MZBP_WIRE_MAX_FRAMES : n);
    }
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

    for (int i = 0; i < BATCH; i++) {
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

    for (int i = 0; i < BATCH; i++) {
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

static void poll_once(struct mzbp_io *io, uint64_t now_ms)
{
    zmq_pollitem_t items[3] = {
        {io->feed_in, 0, ZMQ_POLLIN, 0},
        {io->dealer, 0, ZMQ_POLLIN, 0},
        {io->monitor, 0, ZMQ_POLLIN, 0},
    };
    long timeout = poll_timeout(io, now_ms);

    /* POLLOUT wakes the thread as soon as a bridge can take held messages again. */
    if (!io->paused && mzbp_unacked_first_queued(io->unacked) != NULL) {
        items[1].events |= ZMQ_POLLOUT;
    }

    if (zmq_poll(items, 3, timeout) <= 0) {
        return; /* timeout or EINTR: the caller's loop runs the timers again */
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
    if (open_feed(io, settings->queue_limit, err) != 0 ||
        open_dealer(io, settings->endpoint, err) != 0 || start_thread(io, err) != 0) {
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

static int feed_frames(void *sock, const char *service, size_t service_len, zmq_msg_t *meta,
                       zmq_msg_t *body)
{
    int rc;

    /* A signal can interrupt ZeroMQ's command processing even in a non-blocking send. */
    do {
        rc = zmq_send(sock, service, service_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        return errno;
    }
    /* The first frame was taken, so the pipe takes the rest of this message too. */
    if (zmq_msg_send(meta, sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return errno;
    }
    if (zmq_msg_send(body, sock, ZMQ_DONTWAIT) < 0) {
        return errno;
    }
    return 0;
}

int mzbp_io_feed(struct mzbp_io *io, const char *service, size_t service_len, zmq_msg_t *meta,
                 const void *payload, size_t payload_len)
{
    zmq_msg_t body;
    int rc;

    /* Everything is allocated before the first frame goes, so no message is left half-sent. */
    if (zmq_msg_init_size(&body, payload_len) != 0) {
        rc = errno;
        (void)zmq_msg_close(meta);
        return rc;
    }
    if (payload_len > 0) {
        memcpy(zmq_msg_data(&body), payload, payload_len);
    }

    rc = feed_frames(io->feed_out, service, service_len, meta, &body);
    if (rc != 0) {
        (void)zmq_msg_close(meta);
        (void)zmq_msg_close(&body);
    }
    return rc;
}
