#include "brg_bridge.h"

#include "mzb_proto.h"

#include <errno.h>
#include <string.h>

#define MMI_PREFIX "mmi."
#define CREDIT_PREFIX "credit="
#define CREDIT_DIGITS_MAX 4 /* BRG_CREDIT_MAX has four */

/* Frame positions after the routing id: "", protocol, then per protocol. */
enum {
    F_ID = 0,
    F_EMPTY = 1,
    F_PROTO = 2,
    F_CMD = 3,     /* worker */
    F_SERVICE = 3, /* client */
    F_READY_NAME = 4,
    F_READY_CREDIT = 5, /* optional */
    F_ADDRESS = 4,      /* REPLY */
    F_DELIM = 5,
    F_BODY = 6,
    F_CLIENT_BODY = 4,
};

int brg_mdp_send_command(struct brg_bridge *b, const void *id, size_t len, int cmd)
{
    uint8_t c = (uint8_t)cmd;
    struct brg_part parts[] = {
        {id, len, NULL},
        {"", 0, NULL},
        {MDP_WORKER_ID, strlen(MDP_WORKER_ID), NULL},
        {&c, 1, NULL},
    };

    return brg_send(b->handler_sock, parts, sizeof(parts) / sizeof(parts[0]));
}

int brg_mdp_send_request(struct brg_bridge *b, struct brg_handler *h, struct brg_request *r)
{
    uint8_t cmd = MDP_REQUEST;
    uint8_t key[BRG_KEY_SIZE];
    zmq_msg_t payload;

    /* A copy shares the payload's buffer, so the request keeps it for a resend. */
    if (zmq_msg_init(&payload) != 0) {
        return -1;
    }
    if (zmq_msg_copy(&payload, &r->payload) != 0) {
        zmq_msg_close(&payload);
        return -1;
    }
    brg_request_key_bytes(r, key);

    struct brg_part parts[] = {
        {h->id, h->id_len, NULL},
        {"", 0, NULL},
        {MDP_WORKER_ID, strlen(MDP_WORKER_ID), NULL},
        {&cmd, 1, NULL},
        {key, sizeof(key), NULL},
        {"", 0, NULL},
        {NULL, 0, &payload},
        {r->meta, r->meta_len, NULL},
    };
    return brg_send(b->handler_sock, parts, sizeof(parts) / sizeof(parts[0]));
}

static void send_to_client(struct brg_bridge *b, const void *id, size_t len, const char *service,
                           size_t service_len, struct brg_part *body)
{
    struct brg_part parts[] = {
        {id, len, NULL},
        {"", 0, NULL},
        {MDP_CLIENT_ID, strlen(MDP_CLIENT_ID), NULL},
        {service, service_len, NULL},
        *body,
    };

    if (brg_send(b->handler_sock, parts, sizeof(parts) / sizeof(parts[0])) != 0) {
        char text[BRG_NAME_MAX + 1];

        brg_log_every(&b->rl.client_send_failed, MZB_LOG_DEBUG, BRG_INFO_INTERVAL_MS,
                      "MDP client reply for service \"%s\" not sent: %s",
                      brg_printable(service, service_len, text, sizeof(text)), zmq_strerror(errno));
    }
}

void brg_mdp_send_client_reply(struct brg_bridge *b, struct brg_request *r, zmq_msg_t *body)
{
    zmq_msg_t empty;
    struct brg_part part = {NULL, 0, body};

    if (!body) {
        if (zmq_msg_init(&empty) != 0) {
            return;
        }
        part.msg = &empty;
    }
    send_to_client(b, r->peer, r->peer_len, r->service->name, r->service->name_len, &part);
}

static void malformed(struct brg_bridge *b, struct brg_msg *m, const char *why)
{
    char hex[65];

    b->counters.handler_frames_malformed++;
    brg_log_limited(&b->rl.handler_malformed,
                    "handler socket: message from peer %s dropped: %s (it does not speak "
                    "MDP/0.1 as docs/protocol.md section 3 describes)",
                    brg_hex(brg_frame_data(m, F_ID), brg_frame_size(m, F_ID), hex, sizeof(hex)),
                    why);
}

/* Tells the worker at the message's routing id to go away (MDP DISCONNECT). */
static void send_disconnect(struct brg_bridge *b, struct brg_msg *m)
{
    if (brg_mdp_send_command(b, brg_frame_data(m, F_ID), brg_frame_size(m, F_ID), MDP_DISCONNECT) !=
        0) {
        brg_log_every(&b->rl.disconnect_failed, MZB_LOG_DEBUG, BRG_INFO_INTERVAL_MS,
                      "DISCONNECT not sent: %s", zmq_strerror(errno));
    }
}

/* A worker broke the protocol: tell it to go, and forget it if it was registered. */
static void violation(struct brg_bridge *b, struct brg_msg *m, struct brg_handler *h,
                      const char *why)
{
    struct brg_service *svc = h ? h->service : NULL;

    malformed(b, m, why);
    send_disconnect(b, m);
    if (h) {
        brg_dispatch_drop_handler(b, h, why, &b->counters.handlers_dropped_protocol);
        brg_dispatch_pump(b, svc);
    }
}

/* A worker the bridge does not know (it restarted, or dropped the worker): make it re-register. */
static void unknown_worker(struct brg_bridge *b, struct brg_msg *m, const char *what)
{
    char hex[65];

    brg_log_every(&b->rl.unknown_worker, MZB_LOG_DEBUG, BRG_INFO_INTERVAL_MS,
                  "handler %s sent %s without READY; sent DISCONNECT so it registers again",
                  brg_hex(brg_frame_data(m, F_ID), brg_frame_size(m, F_ID), hex, sizeof(hex)),
                  what);
    send_disconnect(b, m);
}

static int is_mmi(const void *name, size_t len)
{
    return len >= strlen(MMI_PREFIX) && memcmp(name, MMI_PREFIX, strlen(MMI_PREFIX)) == 0;
}

/* The service a READY names, or NULL after refusing the worker with DISCONNECT. */
static struct brg_service *ready_service(struct brg_bridge *b, struct brg_msg *m)
{
    const uint8_t *name = brg_frame_data(m, F_READY_NAME);
    size_t len = brg_frame_size(m, F_READY_NAME);
    struct brg_service *svc = NULL;
    int rc = brg_service_open(b->reg, name, len, BRG_MAX_UNCONFIGURED, &svc);
    char text[BRG_NAME_MAX + 1];

    if (rc == BRG_OPEN_LIMIT) {
        b->counters.ready_service_limit++;
        brg_log_limited(&b->rl.ready_service_limit,
                        "handler for service \"%s\" refused with DISCONNECT: no route names "
                        "that service and %zu such services exist already, the limit (add a "
                        "route for it, or find what starts workers with invented names)",
                        brg_printable(name, len, text, sizeof(text)), b->reg->unconfigured_count);
    } else if (rc != BRG_OPEN_OK) {
        b->counters.drop_out_of_memory++;
        brg_log_limited(&b->rl.no_memory,
                        "handler for service \"%s\" not registered: out of "
                        "memory",
                        brg_printable(name, len, text, sizeof(text)));
    }
    if (rc != BRG_OPEN_OK) {
        send_disconnect(b, m);
        return NULL;
    }
    return svc;
}

/*
 * The credit a READY's optional last frame offers: "credit=N", N in decimal
 * from 1 to BRG_CREDIT_MAX without leading zeros. Returns 0 when it is not that.
 */
static size_t parse_credit(const uint8_t *text, size_t len)
{
    size_t prefix = strlen(CREDIT_PREFIX);
    size_t value = 0;

    if (len <= prefix || len > prefix + CREDIT_DIGITS_MAX ||
        memcmp(text, CREDIT_PREFIX, prefix) != 0 || text[prefix] == '0') {
        return 0;
    }
    for (size_t i = prefix; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return 0;
        }
        value = value * 10 + (size_t)(text[i] - '0');
    }
    return value <= BRG_CREDIT_MAX ? value : 0;
}

/* The credit a READY offers: BRG_CREDIT_DEFAULT without a credit frame, 0 when it is bad. */
static size_t ready_credit(struct brg_msg *m)
{
    if (m->total == F_READY_NAME + 1) {
        return BRG_CREDIT_DEFAULT;
    }
    return parse_credit(brg_frame_data(m, F_READY_CREDIT), brg_frame_size(m, F_READY_CREDIT));
}

static void on_ready(struct brg_bridge *b, struct brg_msg *m, struct brg_handler *h,
                     uint64_t now_ms)
{
    const uint8_t *name = brg_frame_data(m, F_READY_NAME);
    size_t len = brg_frame_size(m, F_READY_NAME);
    struct brg_service *svc;
    size_t credit;
    char hex[65];

    if (h) {
        violation(b, m, h, "it sent READY while already registered");
        return;
    }
    if (m->total < F_READY_NAME + 1 || m->total > F_READY_CREDIT + 1 ||
        !brg_service_name_ok(name, len) || is_mmi(name, len)) {
        violation(b, m, NULL,
                  "READY without one valid service name (1 to 255 bytes of UTF-8, "
                  "not starting with \"mmi.\") and at most a credit frame after it");
        return;
    }
    credit = ready_credit(m);
    if (credit == 0) {
        violation(b, m, NULL,
                  "READY with a credit frame that is not \"credit=N\", N from 1 to 1000 "
                  "in decimal");
        return;
    }

    svc = ready_service(b, m);
    if (!svc) {
        return;
    }
    h = brg_handler_add(b->reg, svc, brg_frame_data(m, F_ID), brg_frame_size(m, F_ID), credit,
                        now_ms + brg_silence_window_ms(b));
    if (!h) {
        b->counters.drop_out_of_memory++;
        brg_log_limited(&b->rl.no_memory,
                        "handler for service \"%s\" not registered: out of "
                        "memory",
                        svc->shown);
        send_disconnect(b, m);
        return;
    }

    b->counters.handlers_registered++;
    brg_log_every(&b->rl.registered, MZB_LOG_INFO, BRG_INFO_INTERVAL_MS,
                  "handler %s registered for service \"%s\" with credit %zu (%zu handlers now)",
                  brg_hex(h->id, h->id_len, hex, sizeof(hex)), svc->shown, credit,
                  svc->handler_count);
    brg_dispatch_pump(b, svc);
}

static void on_reply(struct brg_bridge *b, struct brg_msg *m, struct brg_handler *h,
                     uint64_t now_ms)
{
    if (m->total <= F_DELIM || brg_frame_size(m, F_ADDRESS) != BRG_KEY_SIZE ||
        brg_frame_size(m, F_DELIM) != 0) {
        violation(b, m, h, "REPLY without an 8-byte client address and an empty frame");
        return;
    }
    if (!h) {
        b->counters.unexpected_replies++;
        unknown_worker(b, m, "REPLY");
        return;
    }
    brg_dispatch_reply(b, h, mzb_get_u64(brg_frame_data(m, F_ADDRESS)),
                       m->count > F_BODY ? &m->frames[F_BODY] : NULL, now_ms);
}

static void on_heartbeat(struct brg_bridge *b, struct brg_msg *m, struct brg_handler *h,
                         uint64_t now_ms)
{
    (void)now_ms;
    if (!h) {
        unknown_worker(b, m, "HEARTBEAT");
    }
}

static void on_disconnect(struct brg_bridge *b, struct brg_msg *m, struct brg_handler *h,
                          uint64_t now_ms)
{
    struct brg_service *svc;

    (void)m;
    (void)now_ms;
    if (!h) {
        return;
    }
    svc = h->service;
    brg_dispatch_drop_handler(b, h, "it sent DISCONNECT", &b->counters.handlers_dropped_disconnect);
    brg_dispatch_pump(b, svc);
}

typedef void (*worker_fn)(struct brg_bridge *b, struct brg_msg *m, struct brg_handler *h,
                          uint64_t now_ms);

static const struct {
    uint8_t cmd;
    worker_fn fn;
} worker_commands[] = {
    {MDP_READY, on_ready},
    {MDP_REPLY, on_reply},
    {MDP_HEARTBEAT, on_heartbeat},
    {MDP_DISCONNECT, on_disconnect},
};

static void worker_message(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    struct brg_handler *h =
        brg_handler_find(b->reg, brg_frame_data(m, F_ID), brg_frame_size(m, F_ID));
    uint8_t cmd;

    if (m->count <= F_CMD || brg_frame_size(m, F_CMD) != 1) {
        violation(b, m, h, "the command frame is missing or not one byte");
        return;
    }
    if (h) {
        brg_handler_refresh(h, now_ms, brg_silence_window_ms(b));
    }

    cmd = brg_frame_data(m, F_CMD)[0];
    for (size_t i = 0; i < sizeof(worker_commands) / sizeof(worker_commands[0]); i++) {
        if (worker_commands[i].cmd == cmd) {
            worker_commands[i].fn(b, m, h, now_ms);
            return;
        }
    }
    violation(b, m, h, "unknown MDP worker command");
}

static void mmi_reply_text(struct brg_bridge *b, struct brg_msg *m, const char *text)
{
    struct brg_part body = {text, strlen(text), NULL};

    send_to_client(b, brg_frame_data(m, F_ID), brg_frame_size(m, F_ID),
                   (const char *)brg_frame_data(m, F_SERVICE), brg_frame_size(m, F_SERVICE), &body);
}

static void mmi_service(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    const struct brg_service *svc = NULL;

    (void)now_ms;
    if (m->count > F_CLIENT_BODY) {
        svc = brg_service_find(b->reg, brg_frame_data(m, F_CLIENT_BODY),
                               brg_frame_size(m, F_CLIENT_BODY));
    }
    mmi_reply_text(b, m, svc && svc->handler_count > 0 ? "200" : "404");
}

static void mmi_stats(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    json_t *stats = brg_stats_json(b, now_ms);
    char *text = stats ? json_dumps(stats, JSON_COMPACT) : NULL;

    json_decref(stats);
    if (!text) {
        brg_log_limited(&b->rl.no_memory, "mmi.stats: cannot build the answer: out of memory");
        return;
    }
    mmi_reply_text(b, m, text);
    free(text);
}

static const struct {
    const char *name;
    void (*fn)(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms);
} mmi_services[] = {
    {"mmi.service", mmi_service},
    {"mmi.stats", mmi_stats},
};

static void mmi_request(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    b->counters.mmi_requests++;
    for (size_t i = 0; i < sizeof(mmi_services) / sizeof(mmi_services[0]); i++) {
        if (brg_frame_is(m, F_SERVICE, mmi_services[i].name)) {
            mmi_services[i].fn(b, m, now_ms);
            return;
        }
    }
    mmi_reply_text(b, m, "501");
}

/* MDP clients carry no metadata; handlers get a minimal frame naming the service as topic. */
static int client_meta(const struct brg_service *svc, uint8_t *buf, size_t cap, size_t *len,
                       struct mzb_meta *meta)
{
    memset(meta, 0, sizeof(*meta));
    meta->mode = MZB_MODE_EVENT;
    meta->topic.ptr = (const uint8_t *)svc->name;
    meta->topic.len = svc->name_len;
    meta->route.ptr = (const uint8_t *)svc->name;
    meta->route.len = svc->name_len;
    return mzb_meta_encode(meta, buf, cap, len);
}

/* The service an MDP client request names, or NULL after refusing (and answering) it. */
static struct brg_service *client_service(struct brg_bridge *b, struct brg_msg *m)
{
    const uint8_t *name = brg_frame_data(m, F_SERVICE);
    size_t len = brg_frame_size(m, F_SERVICE);
    struct brg_service *svc = NULL;
    int rc = brg_service_open(b->reg, name, len, BRG_MAX_UNCONFIGURED, &svc);
    char text[BRG_NAME_MAX + 1];

    if (rc == BRG_OPEN_BAD_NAME) {
        malformed(b, m, "client request for a service name that is not valid");
    } else if (rc == BRG_OPEN_LIMIT) {
        b->counters.client_service_limit++;
        brg_log_limited(&b->rl.client_service_limit,
                        "MDP client request for service \"%s\" refused with \"404\": no route "
                        "names that service and %zu such services exist already, the limit",
                        brg_printable(name, len, text, sizeof(text)), b->reg->unconfigured_count);
        mmi_reply_text(b, m, "404");
    } else if (rc != BRG_OPEN_OK) {
        b->counters.drop_out_of_memory++;
        brg_log_limited(&b->rl.no_memory,
                        "MDP client request for service \"%s\" dropped: out of memory",
                        brg_printable(name, len, text, sizeof(text)));
    }
    return rc == BRG_OPEN_OK ? svc : NULL;
}

static void client_request(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    uint8_t buf[MZB_META_HEADER_SIZE + 3 * 5 + 2 * BRG_NAME_MAX];
    struct brg_service *svc = client_service(b, m);
    struct brg_request_init init = {.origin = BRG_ORIGIN_CLIENT, .now_ms = now_ms};
    struct mzb_meta meta;
    struct brg_request *r;

    if (!svc) {
        return;
    }
    b->counters.client_requests++;
    if (client_meta(svc, buf, sizeof(buf), &init.meta_len, &meta) != MZB_META_OK) {
        return;
    }
    init.service = svc;
    init.meta_frame = buf;
    init.meta = &meta;
    init.payload = m->count > F_CLIENT_BODY ? &m->frames[F_CLIENT_BODY] : NULL;
    init.peer = brg_frame_data(m, F_ID);
    init.peer_len = brg_frame_size(m, F_ID);

    r = brg_request_new(b->reg, &init);
    if (!r) {
        b->counters.drop_out_of_memory++;
        brg_log_limited(&b->rl.no_memory,
                        "MDP client request for service \"%s\" dropped: out of memory", svc->shown);
        return;
    }
    brg_dispatch_accept(b, r);
}

static void client_message(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    if (m->count <= F_SERVICE) {
        malformed(b, m, "client request without a service frame");
        return;
    }
    if (is_mmi(brg_frame_data(m, F_SERVICE), brg_frame_size(m, F_SERVICE))) {
        mmi_request(b, m, now_ms);
        return;
    }
    client_request(b, m, now_ms);
}

void brg_mdp_on_message(struct brg_bridge *b, struct brg_msg *m, uint64_t now_ms)
{
    if (m->count <= F_PROTO || brg_frame_size(m, F_EMPTY) != 0) {
        malformed(b, m, "no empty frame and protocol frame after the routing id");
        return;
    }
    if (brg_frame_is(m, F_PROTO, MDP_WORKER_ID)) {
        worker_message(b, m, now_ms);
    } else if (brg_frame_is(m, F_PROTO, MDP_CLIENT_ID)) {
        client_message(b, m, now_ms);
    } else {
        malformed(b, m, "the protocol frame is neither \"MDPW01\" nor \"MDPC01\"");
    }
}
