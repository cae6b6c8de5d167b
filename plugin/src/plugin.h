/*
 * The plugin's state, passed to every broker callback as userdata. Everything
 * here belongs to the broker's thread except io's internals and the counters
 * in stats, which the I/O thread also writes.
 */
#ifndef MZBP_PLUGIN_H
#define MZBP_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <mosquitto_broker.h>

#include "dedup.h"
#include "io_thread.h"
#include "mzb_log.h"
#include "mzb_topic.h"
#include "routes.h"
#include "stats.h"

#define MZBP_LOG_PREFIX "mosquitto-zmq-bridge: "

/* Causes the broker's thread logs as they happen, each with its own rate limiter. */
enum mzbp_event_log {
    MZBP_LOG_QUEUE_FULL = 0,
    MZBP_LOG_REPLY_REFUSED,
    MZBP_LOG_PROPS_UNREADABLE,
    MZBP_LOG_USER_PROPS_DROPPED,
    MZBP_LOG_HANDOFF_ERROR,
    MZBP_LOG_DEDUP_EVICTED,
    MZBP_LOG_EVENT_COUNT,
};

/* What the TICK callback remembers between calls, to log changes only. */
/* The TICK looks at counters and states for its log lines at most this often. */
#define MZBP_TICK_LOG_MS 100

struct mzbp_tick_state {
    uint64_t started_ms;
    uint64_t next_log_ms;
    uint64_t next_drop_check_ms;
    uint64_t next_stats_ms;
    uint64_t last_drops[8]; /* last logged value of each watched I/O-thread counter */
    uint64_t bridge_instance;
    uint64_t disconnects;
    uint64_t last_retries; /* retries_received when the deferral line was last written */
    int bridge_seen;
    int bridge_alive;
    int warned_no_bridge;
};

struct mzbp_ctx {
    mosquitto_plugin_id_t *pid;
    char *config_path;
    struct mzbp_routes *routes;
    struct mzbp_io *io;

    /* What the I/O thread was started with; a reload cannot change these. */
    char *endpoint;
    uint32_t queue_limit;
    uint32_t max_unacked;
    uint64_t instance;

    uint64_t hash_seed;
    uint64_t id_prefix; /* random top 24 bits of every message id, already shifted */
    uint64_t id_counter;

    struct mzbp_stats stats;
    struct mzbp_dedup dedup;
    struct mzb_ratelimit limits[MZBP_LOG_EVENT_COUNT];
    struct mzbp_tick_state tick;

    char reply_buf[MZB_TOPIC_MAX_LEN + 1]; /* an expanded reply_topic template */
};

/* The MOSQ_EVT_MESSAGE callback (message.c). */
int mzbp_on_message(int event, void *event_data, void *userdata);

/* The MOSQ_EVT_TICK callback (tick.c). */
int mzbp_on_tick(int event, void *event_data, void *userdata);

/* Sets up the TICK state at plugin start (tick.c). */
void mzbp_tick_init(struct mzbp_ctx *ctx, uint64_t now_ms);

/*
 * Logs one line about an event of the given cause at most once per
 * plugin.log_interval_s; when lines were held back since the last one, their
 * number is appended (message.c).
 */
void mzbp_log_limited(struct mzbp_ctx *ctx, enum mzbp_event_log cause, int level, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

#endif
