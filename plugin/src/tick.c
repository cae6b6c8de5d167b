/*
 * The TICK callback: the broker's thread logs what the I/O thread counted
 * (it may not call mosquitto_log_printf itself), changes in the bridge's
 * state, and the counters now and then. Forwarding never waits for it.
 */
#include <inttypes.h>
#include <stddef.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"
#include "unacked.h"

#define STATS_JSON_CAP 4096

/* I/O-thread counters worth a line when they move, and what the operator can do. */
static const struct {
    size_t offset;
    const char *what;
    const char *advice;
} watched[] = {
    {offsetof(struct mzbp_stats, dropped_no_bridge),
     "dispatches dropped because no bridge took them (QoS 0, or all with max_unacked 0)",
     "check that mzb-bridge runs and listens on the endpoint"},
    {offsetof(struct mzbp_stats, dropped_bridge_busy),
     "dispatches dropped because the bridge, though up, had not read the last 1,000 batches "
     "sent to it (QoS 0, or all with max_unacked 0)",
     "the bridge cannot keep up: give it more CPU, add handlers, or route less"},
    {offsetof(struct mzbp_stats, unacked_full_dropped),
     "QoS 1/2 dispatches dropped because plugin.max_unacked messages await acknowledgement",
     "bring the bridge back, add handlers for slow services or raise plugin.max_unacked"},
    {offsetof(struct mzbp_stats, bridge_malformed), "malformed messages received from the bridge",
     "check that the bridge at the endpoint is an mzb-bridge of the same version"},
    {offsetof(struct mzbp_stats, ack_unknown),
     "acknowledgements of messages the plugin does not hold",
     "none needed if the plugin restarted; otherwise check that one bridge serves one broker"},
    {offsetof(struct mzbp_stats, retry_unknown), "RETRYs of messages the plugin does not hold",
     "none needed if the plugin restarted; with plugin.max_unacked 0 those messages are lost"},
    {offsetof(struct mzbp_stats, send_errors), "sends to the bridge that failed",
     "look for ZeroMQ errors on the bridge's side"},
    {offsetof(struct mzbp_stats, handoff_errors), "dispatches lost inside the plugin",
     "the host may be out of memory"},
};

_Static_assert(sizeof(watched) / sizeof(watched[0]) <=
                   sizeof(((struct mzbp_tick_state *)0)->last_drops) /
                       sizeof(((struct mzbp_tick_state *)0)->last_drops[0]),
               "tick state keeps one value per watched counter");

/* What each broker-thread log cause is about, for the line that reports held-back ones. */
static const char *const event_names[MZBP_LOG_EVENT_COUNT] = {
    [MZBP_LOG_QUEUE_FULL] = "dispatches dropped or refused because plugin.queue_limit was reached",
    [MZBP_LOG_REPLY_REFUSED] = "requests not dispatched for their reply destination",
    [MZBP_LOG_PROPS_UNREADABLE] = "publishes with unreadable v5 properties",
    [MZBP_LOG_USER_PROPS_DROPPED] = "publishes with more than 64 user properties",
    [MZBP_LOG_HANDOFF_ERROR] = "dispatches lost to an unexpected error",
    [MZBP_LOG_DEDUP_EVICTED] = "QoS 2 repeat-table overflows",
};

static uint64_t counter_at(struct mzbp_ctx *ctx, size_t offset)
{
    return mzbp_stat_get((atomic_uint_fast64_t *)((char *)&ctx->stats + offset));
}

void mzbp_tick_init(struct mzbp_ctx *ctx, uint64_t now_ms)
{
    struct mzbp_tick_state *t = &ctx->tick;

    t->started_ms = now_ms;
    t->next_drop_check_ms = now_ms;
    t->next_stats_ms = now_ms + (uint64_t)ctx->routes->cfg->stats_interval_s * 1000u;
}

/*
 * Deferring is the bridge pushing a slow service's backlog back into the
 * plugin, not a loss, but it fills plugin.max_unacked, so it gets a line.
 */
static void log_deferrals(struct mzbp_ctx *ctx)
{
    struct mzbp_tick_state *t = &ctx->tick;
    uint64_t n = mzbp_stat_get(&ctx->stats.retries_received);

    if (n == t->last_retries) {
        return;
    }
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         MZBP_LOG_PREFIX "%" PRIu64 " QoS 1/2 dispatches deferred since the last "
                                         "report because service queues in the bridge at %s are "
                                         "full (bridge.max_queue); they are kept (%" PRIu64
                                         " waiting now; at most plugin.max_unacked = %u are "
                                         "held in all) and sent again after %u ms, then twice "
                                         "as long each time up to %u ms: add handlers for the "
                                         "slow services or raise bridge.max_queue",
                         n - t->last_retries, ctx->endpoint, mzbp_stat_get(&ctx->stats.deferred),
                         ctx->max_unacked, MZBP_RETRY_FIRST_MS, MZBP_RETRY_MAX_MS);
    t->last_retries = n;
}

static void log_watched(struct mzbp_ctx *ctx)
{
    struct mzbp_tick_state *t = &ctx->tick;

    for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++) {
        uint64_t v = counter_at(ctx, watched[i].offset);

        if (v == t->last_drops[i]) {
            continue;
        }
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             MZBP_LOG_PREFIX "%" PRIu64 " %s since the last report (bridge "
                                             "endpoint %s): %s",
                             v - t->last_drops[i], watched[i].what, ctx->endpoint,
                             watched[i].advice);
        t->last_drops[i] = v;
    }
}

static void log_drops(struct mzbp_ctx *ctx, uint64_t now_ms)
{
    struct mzbp_tick_state *t = &ctx->tick;
    uint64_t interval_ms = (uint64_t)ctx->routes->cfg->log_interval_s * 1000u;

    if (now_ms < t->next_drop_check_ms) {
        return;
    }
    t->next_drop_check_ms = now_ms + (interval_ms > 0 ? interval_ms : 1000u);
    log_watched(ctx);
    log_deferrals(ctx);
}

static void log_bridge_back(struct mzbp_ctx *ctx, uint64_t instance)
{
    struct mzbp_tick_state *t = &ctx->tick;
    uint64_t held = mzbp_stat_get(&ctx->stats.last_requeue);

    if (!t->bridge_seen) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             MZBP_LOG_PREFIX "bridge at %s answers (instance %016" PRIx64 ")",
                             ctx->endpoint, instance);
    } else if (instance != t->bridge_instance) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             MZBP_LOG_PREFIX "bridge at %s restarted (instance %016" PRIx64
                                             "); the %" PRIu64 " unacknowledged messages "
                                             "are sent again",
                             ctx->endpoint, instance, held);
    } else {
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             MZBP_LOG_PREFIX "bridge at %s answers again; the %" PRIu64
                                             " unacknowledged messages are sent again",
                             ctx->endpoint, held);
    }
}

/*
 * A burst's last lines are held back by the rate limit; once its interval has
 * passed, say how many there were, since no new event may come to carry it.
 */
static void log_held_back(struct mzbp_ctx *ctx, uint64_t now_ms)
{
    uint64_t interval_ms = (uint64_t)ctx->routes->cfg->log_interval_s * 1000u;
    uint64_t held = 0;

    for (int i = 0; i < MZBP_LOG_EVENT_COUNT; i++) {
        struct mzb_ratelimit *rl = &ctx->limits[i];

        if (rl->suppressed == 0 || now_ms - rl->last_ms < interval_ms) {
            continue;
        }
        if (mzb_ratelimit_allow(rl, now_ms, interval_ms, &held) && held > 0) {
            mosquitto_log_printf(MOSQ_LOG_WARNING,
                                 MZBP_LOG_PREFIX "%" PRIu64 " more %s since the last such line",
                                 held, event_names[i]);
        }
    }
}

static void log_disconnects(struct mzbp_ctx *ctx)
{
    uint64_t n = mzbp_stat_get(&ctx->stats.bridge_disconnects);

    if (n == ctx->tick.disconnects) {
        return;
    }
    ctx->tick.disconnects = n;
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         MZBP_LOG_PREFIX "connection to the bridge at %s broke; the %" PRIu64
                                         " unacknowledged messages go again once it is back",
                         ctx->endpoint, mzbp_stat_get(&ctx->stats.last_requeue));
}

/*
 * What happens to routed dispatches while no bridge answers. Held ones count
 * against plugin.max_unacked together with those held before, and past it
 * newer ones are dropped: the publisher has had its PUBACK and cannot know.
 */
static void log_bridge_silent(struct mzbp_ctx *ctx)
{
    if (ctx->max_unacked == 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             MZBP_LOG_PREFIX "bridge at %s has not answered for %d s; routed "
                                             "dispatches of every QoS are not kept "
                                             "(plugin.max_unacked is 0) and may be lost until "
                                             "it returns: check that mzb-bridge runs",
                             ctx->endpoint, MZBP_BRIDGE_SILENCE_MS / 1000);
        return;
    }
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         MZBP_LOG_PREFIX "bridge at %s has not answered for %d s; until it "
                                         "returns, routed QoS 1/2 dispatches are kept in memory "
                                         "up to plugin.max_unacked = %u in all, newer ones "
                                         "beyond that are dropped, and QoS 0 ones are not kept: "
                                         "check that mzb-bridge runs",
                         ctx->endpoint, MZBP_BRIDGE_SILENCE_MS / 1000, ctx->max_unacked);
}

static void log_no_bridge_yet(struct mzbp_ctx *ctx)
{
    if (ctx->max_unacked == 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             MZBP_LOG_PREFIX "no bridge answers at %s yet; publishes still "
                                             "reach subscribers, routed ones are not kept for it "
                                             "(plugin.max_unacked is 0): start mzb-bridge or "
                                             "check bridge.plugin_endpoint",
                             ctx->endpoint);
        return;
    }
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         MZBP_LOG_PREFIX "no bridge answers at %s yet; publishes still reach "
                                         "subscribers, routed QoS 1/2 ones are kept for it up "
                                         "to plugin.max_unacked = %u and newer ones beyond that "
                                         "dropped: start mzb-bridge or check "
                                         "bridge.plugin_endpoint",
                         ctx->endpoint, ctx->max_unacked);
}

static void log_bridge_state(struct mzbp_ctx *ctx, uint64_t now_ms)
{
    struct mzbp_tick_state *t = &ctx->tick;
    int alive = mzbp_stat_get(&ctx->stats.bridge_alive) != 0;
    uint64_t instance = mzbp_stat_get(&ctx->stats.bridge_instance);

    if (alive && (!t->bridge_alive || instance != t->bridge_instance)) {
        log_bridge_back(ctx, instance);
    } else if (!alive && t->bridge_alive) {
        log_bridge_silent(ctx);
    } else if (!alive && !t->bridge_seen && !t->warned_no_bridge &&
               now_ms - t->started_ms > MZBP_BRIDGE_SILENCE_MS) {
        t->warned_no_bridge = 1;
        log_no_bridge_yet(ctx);
    }
    if (alive) {
        t->bridge_instance = instance;
        t->bridge_seen = 1;
    }
    t->bridge_alive = alive;
}

static void log_stats(struct mzbp_ctx *ctx, uint64_t now_ms)
{
    uint32_t every_s = ctx->routes->cfg->stats_interval_s;
    char json[STATS_JSON_CAP];

    if (every_s == 0 || now_ms < ctx->tick.next_stats_ms) {
        return;
    }
    ctx->tick.next_stats_ms = now_ms + (uint64_t)every_s * 1000u;
    if (mzbp_stats_json(&ctx->stats, json, sizeof(json)) > 0) {
        mosquitto_log_printf(MOSQ_LOG_INFO, MZBP_LOG_PREFIX "counters %s", json);
    }
}

int mzbp_on_tick(int event, void *event_data, void *userdata)
{
    struct mzbp_ctx *ctx = userdata;
    /* Mosquitto 2.0 leaves the event's time fields at zero, so read the clock. */
    uint64_t now_us = mzb_now_us();
    uint64_t now_ms = now_us / 1000u;

    (void)event;
    (void)event_data;
    /* First: the end of an event-loop pass is when a batch of dispatches goes. */
    mzbp_io_tick(ctx->io, now_us);

    /*
     * A busy broker ticks after every pass of its loop; the lines below follow
     * counters and states that a tenth of a second late is soon enough for.
     */
    if (now_ms < ctx->tick.next_log_ms) {
        return MOSQ_ERR_SUCCESS;
    }
    ctx->tick.next_log_ms = now_ms + MZBP_TICK_LOG_MS;
    log_disconnects(ctx);
    log_bridge_state(ctx, now_ms);
    log_drops(ctx, now_ms);
    log_held_back(ctx, now_ms);
    log_stats(ctx, now_ms);
    return MOSQ_ERR_SUCCESS;
}
