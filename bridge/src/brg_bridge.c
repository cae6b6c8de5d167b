#include "brg_bridge.h"

#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define MAX_BATCH 256         /* messages read from one socket before the others get a turn */
#define GC_INTERVAL_MS 10000u /* forgetting empty services and silent plugins */
#define PLUGIN_MAX_AGE_MS 30000u
#define MAX_POLL_MS 1000
/*
 * ACKs and RETRYs wait this long to travel together. Nobody waits for an ACK
 * (the broker answered the publisher long ago; it only frees the plugin's
 * copy), but each one sent alone wakes a thread in the bridge and two in the
 * broker's plugin.
 */
#define ACK_DELAY_MS 5u

static void vlog_limited(struct mzb_ratelimit *lim, int level, uint64_t interval_ms,
                         const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void vlog_limited(struct mzb_ratelimit *lim, int level, uint64_t interval_ms,
                         const char *fmt, va_list ap)
{
    char text[1024];
    uint64_t suppressed;

    if (!mzb_ratelimit_allow(lim, mzb_now_ms(), interval_ms, &suppressed)) {
        return;
    }
    vsnprintf(text, sizeof(text), fmt, ap);
    if (suppressed > 0) {
        mzb_log(level, "%s; %llu more like this not logged since the last one", text,
                (unsigned long long)suppressed);
    } else {
        mzb_log(level, "%s", text);
    }
}

void brg_log_limited(struct mzb_ratelimit *lim, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog_limited(lim, MZB_LOG_WARNING, BRG_LOG_INTERVAL_MS, fmt, ap);
    va_end(ap);
}

void brg_log_every(struct mzb_ratelimit *lim, int level, uint64_t interval_ms, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog_limited(lim, level, interval_ms, fmt, ap);
    va_end(ap);
}

uint64_t brg_silence_window_ms(const struct brg_bridge *b)
{
    return (uint64_t)b->limits.heartbeat_ms * b->limits.liveness;
}

static void fill_signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

int brg_bridge_block_signals(void)
{
    sigset_t set;

    fill_signal_set(&set);
    /* A peer that vanishes mid-write must not kill the daemon. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        return -1;
    }
    return sigprocmask(SIG_BLOCK, &set, NULL);
}

static void limits_from(struct brg_limits *l, const struct mzb_config *cfg)
{
    l->heartbeat_ms = cfg->heartbeat_ms;
    l->liveness = cfg->liveness;
    l->max_queue = cfg->max_queue;
    l->stats_interval_s = cfg->stats_interval_s;
}

static int mark_configured(struct brg_bridge *b, const struct mzb_config *cfg)
{
    if (brg_registry_configure(b->reg, cfg->services, cfg->service_count) != 0) {
        mzb_log(MZB_LOG_ERROR, "out of memory while taking over the routes' services");
        return -1;
    }
    return 0;
}

/*
 * MDP workers send no heartbeats while they work, so a busy worker is judged
 * by its connection: libzmq pings it every heartbeat_ms and closes the
 * connection when nothing comes back within heartbeat_ms * liveness. The
 * worker's own libzmq answers in its I/O thread, busy or not. The values are
 * taken at bind time, so a SIGHUP does not change them.
 */
static int set_zmtp_heartbeat(void *sock, const struct brg_limits *l)
{
    uint64_t timeout = (uint64_t)l->heartbeat_ms * l->liveness;
    int ivl = l->heartbeat_ms > INT_MAX ? INT_MAX : (int)l->heartbeat_ms;
    int tmo = timeout > INT_MAX ? INT_MAX : (int)timeout;

    if (zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl)) != 0 ||
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &tmo, sizeof(tmo)) != 0) {
        return -1;
    }
    return 0;
}

/* The handler socket gets ROUTER_MANDATORY and connection heartbeats; the plugin socket neither. */
static void *open_router(struct brg_bridge *b, const char *key, const char *endpoint, int handlers)
{
    void *sock = zmq_socket(b->zctx, ZMQ_ROUTER);
    int zero = 0;

    if (!sock) {
        mzb_log(MZB_LOG_ERROR, "%s: cannot make a ROUTER socket: %s", key, zmq_strerror(errno));
        return NULL;
    }
    if (zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &handlers, sizeof(handlers)) != 0 ||
        (handlers && set_zmtp_heartbeat(sock, &b->limits) != 0)) {
        mzb_log(MZB_LOG_ERROR, "%s: cannot set socket options: %s", key, zmq_strerror(errno));
        (void)zmq_close(sock);
        return NULL;
    }
    if (zmq_bind(sock, endpoint) != 0) {
        mzb_log(MZB_LOG_ERROR,
                "%s \"%s\": cannot bind: %s (is another bridge running, or is "
                "the endpoint wrong?)",
                key, endpoint, zmq_strerror(errno));
        (void)zmq_close(sock);
        return NULL;
    }
    return sock;
}

static int open_signalfd(struct brg_bridge *b)
{
    sigset_t set;

    fill_signal_set(&set);
    b->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (b->sigfd < 0) {
        mzb_log(MZB_LOG_ERROR, "cannot make a signalfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int make_instance(struct brg_bridge *b)
{
    ssize_t n;

    do {
        n = getrandom(b->instance, sizeof(b->instance), 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(b->instance)) {
        mzb_log(MZB_LOG_ERROR, "cannot draw a random instance id: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The request keys start at a random point so a stray REPLY from an old run matches nothing. */
static uint64_t first_key(const struct brg_bridge *b)
{
    return (mzb_get_u64(b->instance) >> 1) | 1u;
}

static int open_all(struct brg_bridge *b)
{
    uint64_t now = mzb_now_ms();

    if (make_instance(b) != 0 || open_signalfd(b) != 0) {
        return -1;
    }
    b->reg = brg_registry_new(first_key(b));
    if (!b->reg || brg_plugins_init(&b->plugins) != 0) {
        mzb_log(MZB_LOG_ERROR, "out of memory at start");
        return -1;
    }
    if (mark_configured(b, b->cfg) != 0) {
        return -1;
    }

    b->zctx = zmq_ctx_new();
    if (!b->zctx) {
        mzb_log(MZB_LOG_ERROR, "cannot make a ZeroMQ context: %s", zmq_strerror(errno));
        return -1;
    }
    b->plugin_sock = open_router(b, "bridge.plugin_endpoint", b->cfg->plugin_endpoint, 0);
    b->handler_sock = open_router(b, "bridge.handler_endpoint", b->cfg->handler_endpoint, 1);
    if (!b->plugin_sock || !b->handler_sock) {
        return -1;
    }

    b->mqtt = brg_mqtt_new(&b->cfg->mqtt, b->limits.max_queue, &b->counters);
    if (!b->mqtt) {
        return -1;
    }

    b->started_ms = now;
    b->next_heartbeat_ms = now + b->limits.heartbeat_ms;
    b->next_stats_ms = now + (uint64_t)b->limits.stats_interval_s * 1000u;
    b->next_gc_ms = now + GC_INTERVAL_MS;
    return 0;
}

struct brg_bridge *brg_bridge_new(struct mzb_config *cfg, const char *config_path)
{
    struct brg_bridge *b = calloc(1, sizeof(*b));
    char hex[17];

    if (!b) {
        mzb_log(MZB_LOG_ERROR, "out of memory at start");
        mzb_config_destroy(&cfg);
        return NULL;
    }
    b->cfg = cfg;
    b->config_path = config_path;
    b->sigfd = -1;
    limits_from(&b->limits, cfg);

    if (open_all(b) != 0) {
        brg_bridge_destroy(&b);
        return NULL;
    }
    mzb_log(MZB_LOG_NOTICE, "bridge %s started: plugins on %s, handlers on %s, MQTT %s:%d",
            brg_hex(b->instance, sizeof(b->instance), hex, sizeof(hex)), cfg->plugin_endpoint,
            cfg->handler_endpoint, cfg->mqtt.host, cfg->mqtt.port);
    return b;
}

static void close_socket(void **sock)
{
    if (*sock && zmq_close(*sock) != 0) {
        mzb_log(MZB_LOG_WARNING, "closing a ZeroMQ socket failed: %s", zmq_strerror(errno));
    }
    *sock = NULL;
}

void brg_bridge_destroy(struct brg_bridge **bp)
{
    struct brg_bridge *b;

    if (!bp || !*bp) {
        return;
    }
    b = *bp;
    brg_mqtt_destroy(&b->mqtt);
    close_socket(&b->plugin_sock);
    close_socket(&b->handler_sock);
    if (b->zctx) {
        int rc;

        do {
            rc = zmq_ctx_term(b->zctx);
        } while (rc != 0 && errno == EINTR);
    }
    if (b->sigfd >= 0 && close(b->sigfd) != 0) {
        mzb_log(MZB_LOG_WARNING, "closing the signalfd failed: %s", strerror(errno));
    }
    brg_registry_destroy(&b->reg);
    brg_plugins_clear(&b->plugins);
    mzb_config_destroy(&b->cfg);
    free(b);
    *bp = NULL;
}

static int str_differs(const char *a, const char *b)
{
    if (!a || !b) {
        return a != b;
    }
    return strcmp(a, b) != 0;
}

static int mqtt_differs(const struct mzb_mqtt_config *a, const struct mzb_mqtt_config *b)
{
    return str_differs(a->host, b->host) || a->port != b->port ||
           str_differs(a->client_id, b->client_id) || str_differs(a->username, b->username) ||
           str_differs(a->password, b->password) || a->keepalive != b->keepalive;
}

/* Appends one "; "-separated item to the text in buf. */
static void append_item(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append_item(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;

    if (used > 0 && used + 2 < cap) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

/*
 * Lists in buf the settings of cfg that differ from those the bridge started
 * with and that only a restart applies; buf stays empty when there are none.
 */
static void restart_only_changes(const struct mzb_config *old, const struct mzb_config *cfg,
                                 char *buf, size_t cap)
{
    buf[0] = '\0';
    if (strcmp(old->plugin_endpoint, cfg->plugin_endpoint) != 0) {
        append_item(buf, cap, "bridge.plugin_endpoint \"%s\" (\"%s\" stays bound)",
                    cfg->plugin_endpoint, old->plugin_endpoint);
    }
    if (strcmp(old->handler_endpoint, cfg->handler_endpoint) != 0) {
        append_item(buf, cap, "bridge.handler_endpoint \"%s\" (\"%s\" stays bound)",
                    cfg->handler_endpoint, old->handler_endpoint);
    }
    if (mqtt_differs(&old->mqtt, &cfg->mqtt)) {
        append_item(buf, cap, "bridge.mqtt (the client stays connected to %s:%d as before)",
                    old->mqtt.host, old->mqtt.port);
    }
    if (old->heartbeat_ms != cfg->heartbeat_ms || old->liveness != cfg->liveness) {
        append_item(buf, cap,
                    "the connection heartbeat of the handler socket (it keeps pinging every "
                    "%u ms with a %llu ms timeout; MDP heartbeats use the new values now)",
                    old->heartbeat_ms, (unsigned long long)old->heartbeat_ms * old->liveness);
    }
}

static void report_reload(const struct brg_bridge *b, const struct mzb_config *cfg)
{
    char ignored[1500];

    restart_only_changes(b->cfg, cfg, ignored, sizeof(ignored));
    if (ignored[0] == '\0') {
        mzb_log(MZB_LOG_NOTICE,
                "SIGHUP: %s reloaded: %zu routes, %zu services, heartbeat_ms=%u liveness=%u "
                "max_queue=%u stats_interval_s=%u",
                b->config_path, cfg->route_count, cfg->service_count, b->limits.heartbeat_ms,
                b->limits.liveness, b->limits.max_queue, b->limits.stats_interval_s);
        return;
    }
    mzb_log(MZB_LOG_WARNING,
            "SIGHUP: %s reloaded: %zu routes, %zu services, heartbeat_ms=%u liveness=%u "
            "max_queue=%u stats_interval_s=%u; changed but ignored until the bridge restarts: "
            "%s (restart the bridge to apply them)",
            b->config_path, cfg->route_count, cfg->service_count, b->limits.heartbeat_ms,
            b->limits.liveness, b->limits.max_queue, b->limits.stats_interval_s, ignored);
}

static void reload(struct brg_bridge *b)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    char text[1200];
    uint64_t now = mzb_now_ms();

    memset(&err, 0, sizeof(err));
    if (mzb_config_load_file(b->config_path, &cfg, &err) != MZB_CONFIG_OK) {
        mzb_log(MZB_LOG_ERROR, "SIGHUP: config not reloaded, the old one stays in effect: %s",
                mzb_config_error_format(&err, text, sizeof(text)));
        return;
    }

    limits_from(&b->limits, cfg);
    (void)mark_configured(b, cfg);
    brg_mqtt_set_backlog_limit(b->mqtt, b->limits.max_queue);
    b->next_heartbeat_ms = now + b->limits.heartbeat_ms;
    b->next_stats_ms = now + (uint64_t)b->limits.stats_interval_s * 1000u;
    report_reload(b, cfg);
    mzb_config_destroy(&cfg);
}

static void read_signals(struct brg_bridge *b)
{
    struct signalfd_siginfo si;
    ssize_t n;

    for (;;) {
        n = read(b->sigfd, &si, sizeof(si));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n != (ssize_t)sizeof(si)) {
            return;
        }
        if (si.ssi_signo == SIGHUP) {
            reload(b);
        } else {
            mzb_log(MZB_LOG_NOTICE, "%s received: stopping", strsignal((int)si.ssi_signo));
            b->stop = 1;
        }
    }
}

static void drain(struct brg_bridge *b, void *sock,
                  void (*on_message)(struct brg_bridge *, struct brg_msg *, uint64_t))
{
    struct brg_msg msg;

    for (int i = 0; i < MAX_BATCH && !b->stop; i++) {
        if (brg_msg_recv(sock, &msg) != 0) {
            if (errno != EAGAIN) {
                mzb_log(MZB_LOG_ERROR, "receiving from a ZeroMQ socket failed: %s",
                        zmq_strerror(errno));
            }
            return;
        }
        on_message(b, &msg, mzb_now_ms());
        brg_msg_close(&msg);
    }
}

static void run_timers(struct brg_bridge *b, uint64_t now)
{
    if (now >= b->next_heartbeat_ms) {
        /* A whole interval late: the bridge itself was stopped or starved, not its handlers. */
        int stalled = now - b->next_heartbeat_ms > b->limits.heartbeat_ms;

        brg_dispatch_heartbeat(b, now, stalled);
        b->next_heartbeat_ms = now + b->limits.heartbeat_ms;
    }
    brg_dispatch_expire(b, now);
    brg_mqtt_tick(b->mqtt, now);
    if (b->limits.stats_interval_s > 0 && now >= b->next_stats_ms) {
        brg_stats_log(b);
        b->next_stats_ms = now + (uint64_t)b->limits.stats_interval_s * 1000u;
    }
    if (now >= b->next_gc_ms) {
        brg_registry_collect(b->reg);
        brg_plugins_expire(&b->plugins, now, PLUGIN_MAX_AGE_MS);
        /*
         * After a burst of peers or queued messages, glibc keeps the freed memory in its
         * arenas (hundreds of MB were seen); hand it back so RSS follows the live load.
         */
        malloc_trim(0);
        b->next_gc_ms = now + GC_INTERVAL_MS;
    }
}

static long poll_timeout(struct brg_bridge *b, uint64_t now)
{
    uint64_t next = b->next_heartbeat_ms;
    uint64_t t;

    t = brg_registry_next_deadline(b->reg);
    next = t < next ? t : next;
    t = brg_mqtt_next_wake(b->mqtt, now);
    next = t < next ? t : next;
    if (b->limits.stats_interval_s > 0 && b->next_stats_ms < next) {
        next = b->next_stats_ms;
    }
    next = b->next_gc_ms < next ? b->next_gc_ms : next;
    if (b->next_ack_ms != 0 && b->next_ack_ms < next) {
        next = b->next_ack_ms;
    }
    if (next <= now) {
        return 0;
    }
    return next - now > MAX_POLL_MS ? MAX_POLL_MS : (long)(next - now);
}

enum { POLL_PLUGIN = 0, POLL_HANDLER = 1, POLL_SIGNAL = 2, POLL_MQTT = 3 };

static int poll_once(struct brg_bridge *b)
{
    zmq_pollitem_t items[4] = {
        [POLL_PLUGIN] = {b->plugin_sock, 0, ZMQ_POLLIN, 0},
        [POLL_HANDLER] = {b->handler_sock, 0, ZMQ_POLLIN, 0},
        [POLL_SIGNAL] = {NULL, b->sigfd, ZMQ_POLLIN, 0},
    };
    int mqtt_fd = brg_mqtt_fd(b->mqtt);
    int count = 3;

    if (mqtt_fd >= 0) {
        items[POLL_MQTT].fd = mqtt_fd;
        items[POLL_MQTT].events =
            (short)(ZMQ_POLLIN | (brg_mqtt_want_write(b->mqtt) ? ZMQ_POLLOUT : 0));
        count = 4;
    }

    if (zmq_poll(items, count, poll_timeout(b, mzb_now_ms())) < 0) {
        if (errno == EINTR) {
            return 0;
        }
        mzb_log(MZB_LOG_ERROR, "zmq_poll failed: %s; stopping", zmq_strerror(errno));
        return -1;
    }

    if (items[POLL_SIGNAL].revents) {
        read_signals(b);
    }
    if (items[POLL_PLUGIN].revents & ZMQ_POLLIN) {
        drain(b, b->plugin_sock, brg_plugin_on_message);
    }
    if (items[POLL_HANDLER].revents & ZMQ_POLLIN) {
        drain(b, b->handler_sock, brg_mdp_on_message);
    }
    if (count == 4 && items[POLL_MQTT].revents && brg_mqtt_fd(b->mqtt) == mqtt_fd) {
        short ev = items[POLL_MQTT].revents;

        brg_mqtt_handle_io(b->mqtt, (ev & (ZMQ_POLLIN | ZMQ_POLLERR)) != 0, (ev & ZMQ_POLLOUT) != 0,
                           mzb_now_ms());
    }
    return 0;
}

/* Sends the waiting ACKs and RETRYs once the first of them has waited ACK_DELAY_MS. */
static void flush_acks(struct brg_bridge *b, uint64_t now)
{
    if (brg_list_empty(&b->plugins.dirty)) {
        b->next_ack_ms = 0;
        return;
    }
    if (b->next_ack_ms == 0) {
        b->next_ack_ms = now + ACK_DELAY_MS;
    }
    if (now >= b->next_ack_ms) {
        brg_plugin_flush(b);
        b->next_ack_ms = 0;
    }
}

int brg_bridge_run(struct brg_bridge *b)
{
    brg_mqtt_start(b->mqtt, mzb_now_ms());
    while (!b->stop) {
        if (poll_once(b) != 0) {
            return 1;
        }
        run_timers(b, mzb_now_ms());
        flush_acks(b, mzb_now_ms());
    }
    /* What a plugin would otherwise send again to the next bridge. */
    brg_plugin_flush(b);
    brg_stats_log(b);
    mzb_log(MZB_LOG_NOTICE, "bridge stopped");
    return 0;
}
