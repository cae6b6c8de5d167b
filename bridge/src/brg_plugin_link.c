#include "brg_bridge.h"

#include "mzb_batch.h"
#include "mzb_proto.h"

#include <errno.h>
#include <string.h>

#define IDS_PER_FRAME 1024 /* message ids per ACK or RETRY frame */
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

/* One dispatch, from a DISPATCH message or from a record of a BATCH. */
struct incoming {
    const uint8_t *peer; /* the plugin's routing id */
    size_t peer_len;
    struct mzb_batch_record rec;
    zmq_msg_t *payload_frame; /* DISPATCH: the frame itself, taken without a copy */
};

/*
 * A malformed dispatch of QoS 1 or 2 would stay in the plugin until it
 * overflows: when the header still shows its id, acknowledge it as dropped.
 */
static void release_malformed(struct brg_bridge *b, const struct incoming *in)
{
    if (in->rec.meta != NULL && in->rec.meta_len >= META_ID_OFFSET + 8 &&
        in->rec.meta[META_QOS_OFFSET] >= 1 && in->rec.meta[META_QOS_OFFSET] <= 2) {
        (void)brg_plugins_queue_ack(&b->plugins, in->peer, in->peer_len,
                                    mzb_get_u64(in->rec.meta + META_ID_OFFSET), mzb_now_ms());
    }
}

static void dispatch_malformed(struct brg_bridge *b, const struct incoming *in, const char *why)
{
    char hex[65];

    b->counters.dispatches_malformed++;
    brg_log_limited(&b->rl.dispatch_malformed,
                    "dispatch from plugin %s dropped: %s (is the plugin the same version as "
                    "the bridge?)",
                    brg_hex(in->peer, in->peer_len, hex, sizeof(hex)), why);
    release_malformed(b, in);
}

/* A resend of a message still queued or in flight: answers now go to the sender's connection. */
static int drop_duplicate(struct brg_bridge *b, const struct incoming *in,
                          const struct mzb_meta *meta)
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
    (void)brg_request_set_peer(dup, in->peer, in->peer_len);
    brg_log_every(&b->rl.duplicate, MZB_LOG_DEBUG, BRG_INFO_INTERVAL_MS,
                  "DISPATCH %016llx for service \"%s\" dropped: already queued or in flight",
                  (unsigned long long)meta->msg_id, dup->service->shown);
    return 1;
}

static void out_of_memory(struct brg_bridge *b, const char *what)
{
    b->counters.drop_out_of_memory++;
    brg_log_limited(&b->rl.no_memory, "%s dropped: out of memory", what);
}

/*
 * The plugin and the bridge read the same config, so a service no route names
 * means the two disagree (most likely the broker was reloaded and the bridge
 * was not). Queueing it would let a peer fill memory with invented services;
 * an ACK lets the plugin drop it instead of holding it forever.
 */
static void unknown_service(struct brg_bridge *b, const struct incoming *in,
                            const struct mzb_meta *meta)
{
    char name[BRG_NAME_MAX + 1];

    b->counters.dispatch_unknown_service++;
    brg_log_limited(&b->rl.unknown_service,
                    "DISPATCH for service \"%s\" dropped%s: no route in the bridge's config "
                    "names it (the broker's plugin has a newer config? send SIGHUP to the "
                    "bridge too, or messages for new services are lost)",
                    brg_printable(in->rec.service, in->rec.service_len, name, sizeof(name)),
                    meta->qos >= 1 ? " and acknowledged" : "");
    if (meta->qos >= 1 && brg_plugins_queue_ack(&b->plugins, in->peer, in->peer_len, meta->msg_id,
                                                mzb_now_ms()) != 0) {
        out_of_memory(b, "ACK");
    }
}

/* Returns 0 when the dispatch is one the bridge can read; else counts and logs it. */
static int check_dispatch(struct brg_bridge *b, const struct incoming *in, struct mzb_meta *meta)
{
    int rc;

    if (!brg_service_name_ok(in->rec.service, in->rec.service_len)) {
        dispatch_malformed(b, in, "the service name is empty, too long or not UTF-8");
        return -1;
    }
    rc = mzb_meta_decode(in->rec.meta, in->rec.meta_len, meta);
    if (rc != MZB_META_OK) {
        dispatch_malformed(b, in, mzb_meta_strerror(rc));
        return -1;
    }
    return 0;
}

/* The configured service the dispatch names, or NULL after refusing it. */
static struct brg_service *dispatch_service(struct brg_bridge *b, const struct incoming *in,
                                            const struct mzb_meta *meta)
{
    struct brg_service *svc = brg_service_find(b->reg, in->rec.service, in->rec.service_len);

    if (!svc || !svc->configured) {
        unknown_service(b, in, meta);
        return NULL;
    }

    /* Checked before the request is made, so a deferred event costs no copy of its payload. */
    if (brg_service_admit(svc, BRG_ORIGIN_PLUGIN, meta->mode, meta->qos, b->limits.max_queue) ==
        BRG_ADMIT_RETRY) {
        brg_dispatch_defer(b, svc, in->peer, in->peer_len, meta->msg_id);
        return NULL;
    }
    return svc;
}

/*
 * A BATCH record's payload lives in the BATCH frame, which is gone after this
 * pass: a small one is lent (the registry copies small payloads anyway), a
 * large one is copied once into a frame of its own, which the registry keeps.
 */
static int payload_frame(const struct incoming *in, zmq_msg_t *frame)
{
    if (in->rec.payload_len <= BRG_PAYLOAD_COPY_MAX) {
        return zmq_msg_init_data(frame, (void *)in->rec.payload, in->rec.payload_len, NULL, NULL);
    }
    if (zmq_msg_init_size(frame, in->rec.payload_len) != 0) {
        return -1;
    }
    memcpy(zmq_msg_data(frame), in->rec.payload, in->rec.payload_len);
    return 0;
}

static void accept_dispatch(struct brg_bridge *b, const struct incoming *in, uint64_t now_ms)
{
    struct brg_request_init init = {.origin = BRG_ORIGIN_PLUGIN, .now_ms = now_ms};
    struct mzb_meta meta;
    struct brg_request *r;
    zmq_msg_t frame;

    b->counters.dispatches_received++;
    if (check_dispatch(b, in, &meta) != 0 || drop_duplicate(b, in, &meta)) {
        return;
    }
    init.service = dispatch_service(b, in, &meta);
    if (!init.service) {
        return;
    }

    init.meta_frame = in->rec.meta;
    init.meta_len = in->rec.meta_len;
    init.meta = &meta;
    init.peer = in->peer;
    init.peer_len = in->peer_len;
    init.payload = in->payload_frame;
    if (init.payload == NULL) {
        if (payload_frame(in, &frame) != 0) {
            out_of_memory(b, "DISPATCH");
            return;
        }
        init.payload = &frame;
    }
    r = brg_request_new(b->reg, &init);
    if (init.payload == &frame) {
        (void)zmq_msg_close(&frame);
    }
    if (!r) {
        out_of_memory(b, "DISPATCH");
        return;
    }
    if (r->qos >= 1 && brg_request_track(b->reg, r) != 0) {
        out_of_memory(b, "duplicate detection for a DISPATCH");
    }
    brg_dispatch_accept(b, r);
}

static void on_dispatch(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    struct incoming in = {
        .peer = brg_frame_data(m, F_ID),
        .peer_len = brg_frame_size(m, F_ID),
        .rec.service = brg_frame_data(m, F_SERVICE),
        .rec.service_len = brg_frame_size(m, F_SERVICE),
        .rec.meta = brg_frame_data(m, F_META),
        .rec.meta_len = brg_frame_size(m, F_META),
        .payload_frame = &m->frames[F_PAYLOAD],
    };

    if (m->total != F_PAYLOAD + 1) {
        if (m->count <= F_META) {
            in.rec.meta = NULL;
            in.rec.meta_len = 0;
        }
        b->counters.dispatches_received++;
        dispatch_malformed(b, &in, "it does not have exactly five frames");
        return;
    }
    accept_dispatch(b, &in, now_ms);
}

/* Every record of a BATCH, in order, as if each came in a DISPATCH of its own. */
static void on_batch(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    struct incoming in = {.peer = brg_frame_data(m, F_ID), .peer_len = brg_frame_size(m, F_ID)};
    const uint8_t *body = brg_frame_data(m, F_SERVICE);
    size_t len = brg_frame_size(m, F_SERVICE);
    size_t offset = 0;
    int rc;

    if (m->total != F_SERVICE + 1) {
        malformed(b, m, "BATCH is not exactly one frame of records");
        return;
    }
    while ((rc = mzb_batch_next(body, len, &offset, &in.rec)) == MZB_BATCH_OK) {
        accept_dispatch(b, &in, now_ms);
    }
    if (rc != MZB_BATCH_END) {
        malformed(b, m, mzb_batch_strerror(rc));
    }
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
        brg_log_every(&b->rl.plugin_send_failed, MZB_LOG_DEBUG, BRG_INFO_INTERVAL_MS,
                      "HEARTBEAT to a plugin not sent: %s", zmq_strerror(errno));
    }
}

static void note_instance(struct brg_bridge *b, struct brg_plugin *pl, const uint8_t *instance)
{
    char id_hex[65];
    char inst_hex[17];

    if (pl->has_instance && memcmp(pl->instance, instance, BRG_INSTANCE_SIZE) == 0) {
        return;
    }
    memcpy(pl->instance, instance, BRG_INSTANCE_SIZE);
    pl->has_instance = 1;
    brg_log_every(&b->rl.plugin_instance, MZB_LOG_INFO, BRG_INFO_INTERVAL_MS,
                  "plugin %s connected (instance %s)",
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
    note_instance(b, pl, brg_frame_data(m, F_INSTANCE));
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
    {MZB_CMD_BATCH, on_batch},
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

/* Sends up to IDS_PER_FRAME ids of list, from index from on, as one cmd; returns how many. */
static size_t send_id_frame(struct brg_bridge *b, struct brg_plugin *pl,
                            const struct brg_id_list *list, size_t from, uint8_t cmd)
{
    uint8_t ids[IDS_PER_FRAME * 8];
    size_t n = list->count - from < IDS_PER_FRAME ? list->count - from : IDS_PER_FRAME;

    for (size_t i = 0; i < n; i++) {
        mzb_put_u64(ids + 8 * i, list->ids[from + i]);
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
    return n;
}

/* Sends what it can of list and keeps the rest; returns how many ids went out. */
static uint64_t flush_list(struct brg_bridge *b, struct brg_plugin *pl, struct brg_id_list *list,
                           uint8_t cmd)
{
    size_t sent = 0;

    while (sent < list->count) {
        size_t n = send_id_frame(b, pl, list, sent, cmd);

        if (n == 0) {
            break;
        }
        sent += n;
    }
    brg_id_list_consume(list, sent);
    return sent;
}

/* Returns 1 when every ACK and RETRY went out; the rest stays for the next flush. */
static int flush_one(struct brg_bridge *b, struct brg_plugin *pl)
{
    b->counters.acks_sent += flush_list(b, pl, &pl->acks, MZB_CMD_ACK);
    b->counters.retries_sent += flush_list(b, pl, &pl->retries, MZB_CMD_RETRY);
    return pl->acks.count == 0 && pl->retries.count == 0;
}

void brg_plugin_flush(struct brg_bridge *b)
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
