/*
 * brg_bridge: the mzb-bridge daemon. One thread runs one zmq_poll loop over
 * the plugin ROUTER, the handler ROUTER, the MQTT client's socket and a
 * signalfd. docs/protocol.md sections 1, 3 and 4 describe the wire.
 *
 * The struct is shared by the bridge's own files (dispatch, MDP, plugin
 * link, stats); nothing outside bridge/ sees it.
 */
#ifndef BRG_BRIDGE_H
#define BRG_BRIDGE_H

#include "brg_counters.h"
#include "brg_frames.h"
#include "brg_mqtt.h"
#include "brg_plugins.h"
#include "brg_registry.h"
#include "mzb_config.h"
#include "mzb_log.h"

#include <jansson.h>
#include <stdint.h>

#define BRG_LOG_INTERVAL_MS 10000u /* at most one warning per repeated cause in this time */
#define BRG_INFO_INTERVAL_MS 1000u /* the same for routine lines (handlers come and go) */

/* The settings a SIGHUP changes at once. */
struct brg_limits {
    uint32_t heartbeat_ms;
    uint32_t liveness;
    uint32_t max_queue;
    uint32_t stats_interval_s;
};

/* One limiter per cause that a peer can repeat per message. */
struct brg_ratelimits {
    struct mzb_ratelimit plugin_malformed;
    struct mzb_ratelimit dispatch_malformed;
    struct mzb_ratelimit handler_malformed;
    struct mzb_ratelimit unknown_service;
    struct mzb_ratelimit duplicate;
    struct mzb_ratelimit plugin_instance;
    struct mzb_ratelimit plugin_send_failed;
    struct mzb_ratelimit deferred;
    struct mzb_ratelimit queue_full;
    struct mzb_ratelimit client_queue_full;
    struct mzb_ratelimit client_service_limit;
    struct mzb_ratelimit ready_service_limit;
    struct mzb_ratelimit registered;
    struct mzb_ratelimit dropped;
    struct mzb_ratelimit unknown_worker;
    struct mzb_ratelimit client_send_failed;
    struct mzb_ratelimit disconnect_failed;
    struct mzb_ratelimit unexpected_reply;
    struct mzb_ratelimit late_reply;
    struct mzb_ratelimit no_reply_topic;
    struct mzb_ratelimit no_memory;
    struct mzb_ratelimit send_failed;
};

struct brg_bridge {
    struct mzb_config *cfg; /* as loaded at start: endpoints and MQTT settings in effect */
    const char *config_path;
    struct brg_limits limits;
    void *zctx;
    void *plugin_sock;
    void *handler_sock;
    int sigfd;
    struct brg_mqtt *mqtt;
    struct brg_registry *reg;
    struct brg_plugins plugins;
    struct brg_counters counters;
    struct brg_ratelimits rl;
    uint8_t instance[BRG_INSTANCE_SIZE];
    uint64_t started_ms;
    uint64_t next_heartbeat_ms;
    uint64_t next_stats_ms;
    uint64_t next_gc_ms;
    uint64_t next_ack_ms; /* when waiting ACKs and RETRYs go; 0 when none wait */
    int stop;
};

/*
 * Makes a bridge from cfg (ownership passes to the bridge, also on failure):
 * binds both sockets, creates the MQTT client and starts connecting. The
 * caller must have blocked SIGINT, SIGTERM and SIGHUP in every thread first.
 * Returns NULL after logging why it failed.
 */
struct brg_bridge *brg_bridge_new(struct mzb_config *cfg, const char *config_path);

/* Runs until SIGINT or SIGTERM. Returns 0, or 1 after a fatal error (logged). */
int brg_bridge_run(struct brg_bridge *b);

/* Closes everything (sockets with LINGER 0) and sets *b to NULL. Accepts NULL. */
void brg_bridge_destroy(struct brg_bridge **b);

/* The signals brg_bridge_run handles; block them before brg_bridge_new. */
int brg_bridge_block_signals(void);

/* brg_dispatch.c: what happens to requests. */
void brg_dispatch_accept(struct brg_bridge *b, struct brg_request *r);
void brg_dispatch_defer(struct brg_bridge *b, struct brg_service *svc, const void *peer,
                        size_t peer_len, uint64_t msg_id);
void brg_dispatch_pump(struct brg_bridge *b, struct brg_service *svc);
void brg_dispatch_reply(struct brg_bridge *b, struct brg_handler *h, uint64_t key, zmq_msg_t *body,
                        uint64_t now_ms);
void brg_dispatch_drop_handler(struct brg_bridge *b, struct brg_handler *h, const char *why,
                               uint64_t *counter);
void brg_dispatch_expire(struct brg_bridge *b, uint64_t now_ms);
/*
 * Drops silent and unreachable handlers and heartbeats the rest. stalled: the
 * bridge did not run for a while, so no handler is judged by its silence
 * this time; each gets a fresh window instead.
 */
void brg_dispatch_heartbeat(struct brg_bridge *b, uint64_t now_ms, int stalled);
void brg_dispatch_finish(struct brg_bridge *b, struct brg_request *r);

/* brg_mdp.c: the handler socket. */
void brg_mdp_on_message(struct brg_bridge *b, struct brg_msg *msg, uint64_t now_ms);
int brg_mdp_send_request(struct brg_bridge *b, struct brg_handler *h, struct brg_request *r);
int brg_mdp_send_command(struct brg_bridge *b, const void *id, size_t len, int cmd);
void brg_mdp_send_client_reply(struct brg_bridge *b, struct brg_request *r, zmq_msg_t *body);

/* brg_plugin_link.c: the plugin socket. */
void brg_plugin_on_message(struct brg_bridge *b, struct brg_msg *msg, uint64_t now_ms);
void brg_plugin_queue_ack(struct brg_bridge *b, struct brg_request *r);
void brg_plugin_flush(struct brg_bridge *b);

/* brg_stats.c: counters out. */
json_t *brg_stats_json(struct brg_bridge *b, uint64_t now_ms);
void brg_stats_log(struct brg_bridge *b);

/* A rate-limited warning: logs when lim allows, with the count it suppressed. */
void brg_log_limited(struct mzb_ratelimit *lim, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The same at any level, at most one line per interval_ms. */
void brg_log_every(struct mzb_ratelimit *lim, int level, uint64_t interval_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The heartbeat window: a handler idle and silent this long is dropped. */
uint64_t brg_silence_window_ms(const struct brg_bridge *b);

#endif
