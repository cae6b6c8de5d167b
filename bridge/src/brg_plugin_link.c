#include "brg_bridge.h"

#include "mzb_proto.h"

#include <errno.h>
#include <string.h>

#define ACKS_PER_FRAME 1024
#define META_QOS_OFFSET 2
#define META_ID_OFFSET 8

/* Frame positions after the routing id. */
enum {
    F_ID = 0,
    F_PROTO = 1,
    F_CMD = 2,
    F_SERVICE = 3,
    F_META = 4,
    F_PAYLOAD = 5,
    F_INSTANCE = 3,
    F_STATS = 4,
};

static void malformed(struct brg_bridge *b, struct brg_msg *m, const char *why)
{
    char hex[65];

    b->counters.plugin_frames_malformed++;
    brg_log_limited(&b->rl.plugin_malformed,
                    "plugin socket: message from peer %s dropped: %s (plugin and bridge must "
                    "both speak MZB01, docs/protocol.md section 1)",
                    brg_hex(brg_frame_data(m, F_ID), brg_frame_size(m, F_ID), hex, sizeof(hex)),
                    why);
}

/*
 * A malformed DISPATCH of QoS 1 or 2 would stay in the plugin until it
 * overflows: when the header still shows its id, acknowledge it as dropped.
 */
static void release_malformed(struct brg_bridge *b, struct brg_msg *m)
{
    const uint8_t *meta = brg_frame_data(m, F_META);
    size_t len = brg_frame_size(m, F_META);

    if (m->count > F_META && len >= META_ID_OFFSET + 8 && meta[META_QOS_OFFSET] >= 1 &&
        meta[META_QOS_OFFSET] <= 2) {
        (void)brg_plugins_queue_ack(&b->plugins, brg_frame_data(m, F_ID), brg_frame_size(m, F_ID),
                                    mzb_get_u64(meta + META_ID_OFFSET), mzb_now_ms());
    }
}

static void dispatch_malformed(struct brg_bridge *b, struct brg_msg *m, const char *why)
{
    char hex[65];

    b->counters.dispatches_malformed++;
    brg_log_limited(&b->rl.dispatch_malformed,
                    "DISPATCH from plugin %s dropped: %s (is the plugin the same version as "
                    "the bridge?)",
                    brg_hex(brg_frame_data(m, F_ID), brg_frame_size(m, F_ID), hex, sizeof(hex)),
                    why);
    release_malformed(b, m);
}

/* A resend of a message still queued or in flight: answers now go to the sender's connection. */
static int drop_duplicate(struct brg_bridge *b, struct brg_msg *m, const struct mzb_meta *meta)
{
    struct brg_request *dup;

    if (meta->qos == 0) {
        return 0;
    }
    dup = brg_request_find_msg(b->reg, meta->msg_id);
    if (!dup) {
        return 0;
    }
    b->counters.duplicates_dropped++;
    (void)brg_request_set_peer(dup, brg_frame_data(m, F_ID), brg_frame_size(m, F_ID));
    mzb_log(MZB_LOG_DEBUG,
            "DISPATCH %016llx for service \"%s\" dropped: already queued or in "
            "flight",
            (unsigned long long)meta->msg_id, dup->service->name);
    return 1;
}

static void out_of_memory(struct brg_bridge *b, const char *what)
{
    b->counters.drop_out_of_memory++;
    brg_log_limited(&b->rl.no_memory, "%s dropped: out of memory", what);
}

static void on_dispatch(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    struct brg_request_init init = {.origin = BRG_ORIGIN_PLUGIN, .now_ms = now_ms};
    struct mzb_meta meta;
    struct brg_request *r;
    int rc;

    b->counters.dispatches_received++;
    if (m->total != F_PAYLOAD + 1) {
        dispatch_malformed(b, m, "it does not have exactly five frames");
        return;
    }
    if (!brg_service_name_ok(brg_frame_data(m, F_SERVICE), brg_frame_size(m, F_SERVICE))) {
        dispatch_malformed(b, m, "the service name is empty, too long or not UTF-8");
        return;
    }
    rc = mzb_meta_decode(brg_frame_data(m, F_META), brg_frame_size(m, F_META), &meta);
    if (rc != MZB_META_OK) {
        dispatch_malformed(b, m, mzb_meta_strerror(rc));
        return;
    }
    if (drop_duplicate(b, m, &meta)) {
        return;
    }

    init.service =
        brg_service_get(b->reg, brg_frame_data(m, F_SERVICE), brg_frame_size(m, F_SERVICE));
    init.meta_frame = brg_frame_data(m, F_META);
    init.meta_len = brg_frame_size(m, F_META);
    init.meta = &meta;
    init.payload = &m->frames[F_PAYLOAD];
    init.peer = brg_frame_data(m, F_ID);
    init.peer_len = brg_frame_size(m, F_ID);
    r = init.service ? brg_request_new(b->reg, &init) : NULL;
    if (!r) {
        out_of_memory(b, "DISPATCH");
        return;
    }
    if (r->qos >= 1 && brg_request_track(b->reg, r) != 0) {
        out_of_memory(b, "duplicate detection for a DISPATCH");
    }
    brg_dispatch_accept(b, r);
}

static void send_heartbeat(struct brg_bridge *b, struct brg_msg *m)
{
    uint8_t cmd = MZB_CMD_BRIDGE_HEARTBEAT;
    struct brg_part parts[] = {
        {brg_frame_data(m, F_ID), brg_frame_size(m, F_ID), NULL},
        {MZB_PROTO_ID, strlen(MZB_PROTO_ID), NULL},
        {&cmd, 1, NULL},
        {b->instance, sizeof(b->instance), NULL},
    };

    if (brg_send(b->plugin_sock, parts, sizeof(parts) / sizeof(parts[0])) != 0) {
        mzb_log(MZB_LOG_DEBUG, "HEARTBEAT to a plugin not sent: %s", zmq_strerror(errno));
    }
}

static void note_instance(struct brg_plugin *pl, const uint8_t *instance)
{
    char id_hex[65];
    char inst_hex[17];

    if (pl->has_instance && memcmp(pl->instance, instance, BRG_INSTANCE_SIZE) == 0) {
        return;
    }
    memcpy(pl->instance, instance, BRG_INSTANCE_SIZE);
    pl->has_instance = 1;
    mzb_log(MZB_LOG_INFO, "plugin %s connected (instance %s)",
            brg_hex(pl->id, pl->id_len, id_hex, sizeof(id_hex)),
            brg_hex(instance, BRG_INSTANCE_SIZE, inst_hex, sizeof(inst_hex)));
}

static void on_heartbeat(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    struct brg_plugin *pl;
    json_error_t err;
    json_t *stats;

    if (m->total != F_STATS + 1 || brg_frame_size(m, F_INSTANCE) != BRG_INSTANCE_SIZE) {
        malformed(b, m, "HEARTBEAT is not an 8-byte instance and a statistics frame");
        return;
    }
    send_heartbeat(b, m);

    pl = brg_plugins_touch(&b->plugins, brg_frame_data(m, F_ID), brg_frame_size(m, F_ID), now_ms);
    if (!pl) {
        return;
    }
    note_instance(pl, brg_frame_data(m, F_INSTANCE));
    stats = json_loadb((const char *)brg_frame_data(m, F_STATS), brg_frame_size(m, F_STATS),
                       JSON_DECODE_ANY, &err);
    if (!stats && brg_frame_size(m, F_STATS) > 0) {
        malformed(b, m, "its statistics are not JSON");
    }
    brg_plugin_set_stats(pl, stats);
}

static const struct {
    uint8_t cmd;
    void (*fn)(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms);
} plugin_commands[] = {
    {MZB_CMD_DISPATCH, on_dispatch},
    {MZB_CMD_HEARTBEAT, on_heartbeat},
};

void brg_plugin_on_message(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    uint8_t cmd;

    if (m->count <= F_CMD || !brg_frame_is(m, F_PROTO, MZB_PROTO_ID) ||
        brg_frame_size(m, F_CMD) != 1) {
        malformed(b, m, "it does not start with \"MZB01\" and a one-byte command");
        return;
    }
    cmd = brg_frame_data(m, F_CMD)[0];
    for (size_t i = 0; i < sizeof(plugin_commands) / sizeof(plugin_commands[0]); i++) {
        if (plugin_commands[i].cmd == cmd) {
            plugin_commands[i].fn(b, m, now_ms);
            return;
        }
    }
    malformed(b, m, "unknown command");
}

void brg_plugin_queue_ack(struct brg_bridge *b, struct brg_request *r)
{
    if (r->origin != BRG_ORIGIN_PLUGIN || r->qos == 0) {
        return;
    }
    if (brg_plugins_queue_ack(&b->plugins, r->peer, r->peer_len, r->msg_id, mzb_now_ms()) != 0) {
        out_of_memory(b, "ACK");
    }
}

/* Sends up to ACKS_PER_FRAME ids from the front of pl's list; returns how many, or 0. */
static size_t send_ack_frame(struct brg_bridge *b, struct brg_plugin *pl, size_t from)
{
    uint8_t ids[ACKS_PER_FRAME * 8];
    uint8_t cmd = MZB_CMD_ACK;
    size_t n = pl->ack_count - from;

    if (n > ACKS_PER_FRAME) {
        n = ACKS_PER_FRAME;
    }
    for (size_t i = 0; i < n; i++) {
        mzb_put_u64(ids + 8 * i, pl->acks[from + i]);
    }

    struct brg_part parts[] = {
        {pl->id, pl->id_len, NULL},
        {MZB_PROTO_ID, strlen(MZB_PROTO_ID), NULL},
        {&cmd, 1, NULL},
        {ids, 8 * n, NULL},
    };
    if (brg_send(b->plugin_sock, parts, sizeof(parts) / sizeof(parts[0])) != 0) {
        return 0;
    }
    b->counters.acks_sent += n;
    return n;
}

/* Returns 1 when every ack went out; the rest stays for the next flush. */
static int flush_one(struct brg_bridge *b, struct brg_plugin *pl)
{
    size_t sent = 0;

    while (sent < pl->ack_count) {
        size_t n = send_ack_frame(b, pl, sent);

        if (n == 0) {
            break;
        }
        sent += n;
    }
    memmove(pl->acks, pl->acks + sent, (pl->ack_count - sent) * sizeof(*pl->acks));
    pl->ack_count -= sent;
    return pl->ack_count == 0;
}

void brg_plugin_flush_acks(struct brg_bridge *b)
{
    struct brg_link retry;
    struct brg_plugin *pl;

    brg_list_init(&retry);
    while ((pl = brg_plugins_next_dirty(&b->plugins)) != NULL) {
        if (!flush_one(b, pl)) {
            brg_list_push_back(&retry, &pl->dirty_link);
        }
    }
    while (!brg_list_empty(&retry)) {
        brg_list_push_back(&b->plugins.dirty, brg_list_pop_front(&retry));
    }
}
