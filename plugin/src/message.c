/*
 * The broker's thread: what happens to each PUBLISH. Nothing here blocks;
 * a routed publish is appended to the batch the I/O thread takes (handoff.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "mzb_meta.h"
#include "mzb_reply.h"
#include "plugin.h"
#include "props.h"

/* How much of a client-chosen string a log line quotes. */
#define QUOTE_MAX 200

/* Facts about one PUBLISH, gathered once for all the services it goes to. */
struct publish {
    const struct mosquitto_evt_message *ev;
    const char *client_id; /* never NULL */
    const char *username;  /* NULL when the client has none */
    size_t topic_len;
    struct mzbp_props props;
    struct mzb_meta meta; /* the fields every dispatch of this publish shares */
};

enum outcome {
    OUT_DISPATCHED = 0,
    OUT_SKIPPED = 1, /* not sent to this service; the publish itself goes on */
    OUT_REFUSE = 2,  /* the publish must be refused to its client */
};

static const uint8_t no_bytes[1];

static struct mzb_bytes bytes_of(const void *p, size_t len)
{
    struct mzb_bytes b = {p != NULL ? p : no_bytes, len};

    return b;
}

/* Client-chosen text as a log line shows it. */
struct quoted {
    char text[QUOTE_MAX + 1];
};

/*
 * At most QUOTE_MAX bytes, control characters shown as '?': MQTT lets a
 * topic or client id hold a newline, which must not forge a log line.
 */
static const char *quote(struct quoted *q, const char *s, size_t len)
{
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        q->text[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    q->text[n] = '\0';
    return q->text;
}

/* The publisher's client id and topic, quoted for a log line. */
struct who {
    struct quoted client;
    struct quoted topic;
};

static void quote_publish(struct who *w, const struct publish *pub)
{
    quote(&w->client, pub->client_id, strlen(pub->client_id));
    quote(&w->topic, pub->ev->topic, pub->topic_len);
}

void mzbp_log_limited(struct mzbp_ctx *ctx, enum mzbp_event_log cause, int level, const char *fmt,
                      ...)
{
    uint64_t interval_ms = (uint64_t)ctx->routes->cfg->log_interval_s * 1000u;
    uint64_t held = 0;
    char text[1024];
    va_list ap;

    if (!mzb_ratelimit_allow(&ctx->limits[cause], mzb_now_ms(), interval_ms, &held)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (held > 0) {
        mosquitto_log_printf(level, MZBP_LOG_PREFIX "%s (%llu similar lines held back)", text,
                             (unsigned long long)held);
    } else {
        mosquitto_log_printf(level, MZBP_LOG_PREFIX "%s", text);
    }
}

/* The bridge's own reply publisher and the broker's $ topics are never routed. */
static int is_routable(const struct mzbp_ctx *ctx, const struct mosquitto_evt_message *ev,
                       const char *client_id)
{
    const char *own = ctx->routes->cfg->mqtt.client_id;

    if (ev->topic == NULL || ev->topic[0] == '$') {
        return 0;
    }
    return own == NULL || strcmp(client_id, own) != 0;
}

static void note_property_trouble(struct mzbp_ctx *ctx, const struct publish *pub)
{
    struct who w;

    if (!pub->props.broken && pub->props.user_props_dropped == 0) {
        return;
    }
    quote_publish(&w, pub);
    if (pub->props.broken) {
        mzbp_stat_add(&ctx->stats.properties_unreadable, 1);
        mzbp_log_limited(ctx, MZBP_LOG_PROPS_UNREADABLE, MOSQ_LOG_WARNING,
                         "the v5 properties of a publish from client \"%s\" on \"%s\" hold an "
                         "entry that is not an MQTT property, so only those before it are "
                         "forwarded; this broker's property layout may differ from "
                         "Mosquitto 2.0's: run a 2.0.x broker",
                         w.client.text, w.topic.text);
    }
    if (pub->props.user_props_dropped > 0) {
        mzbp_stat_add(&ctx->stats.user_props_dropped, pub->props.user_props_dropped);
        mzbp_log_limited(ctx, MZBP_LOG_USER_PROPS_DROPPED, MOSQ_LOG_WARNING,
                         "a publish from client \"%s\" on \"%s\" has %zu user properties; "
                         "the first %d are forwarded and the rest dropped",
                         w.client.text, w.topic.text,
                         MZB_META_MAX_USER_PROPS + pub->props.user_props_dropped,
                         MZB_META_MAX_USER_PROPS);
    }
}

/* Reads the properties, feeding them to the repeat hash when there is one. */
static void read_properties(struct mzbp_ctx *ctx, struct publish *pub, struct mzbp_hash *h)
{
    (void)mzbp_props_read(pub->ev->properties, &pub->props, h);
    note_property_trouble(ctx, pub);
}

static void fill_shared_meta(struct publish *pub, int protocol)
{
    struct mzb_meta *m = &pub->meta;
    const struct mzbp_props *p = &pub->props;

    memset(m, 0, sizeof(*m));
    m->qos = pub->ev->qos;
    m->retain = pub->ev->retain ? 1 : 0;
    m->protocol = protocol > 0 && protocol < 256 ? (uint8_t)protocol : 0;
    m->topic = bytes_of(pub->ev->topic, pub->topic_len);
    m->client_id = bytes_of(pub->client_id, strlen(pub->client_id));
    if (pub->username != NULL) {
        m->username = bytes_of(pub->username, strlen(pub->username));
        m->has_username = 1;
    }
    m->content_type = p->content_type;
    m->has_content_type = p->has_content_type;
    m->response_topic = p->response_topic;
    m->has_response_topic = p->has_response_topic;
    m->correlation = p->correlation;
    m->has_correlation = p->has_correlation;
    m->user_prop_count = p->user_prop_count;
    memcpy(m->user_props, p->user_props, p->user_prop_count * sizeof(p->user_props[0]));
}

static void repeat_hash(const struct mzbp_ctx *ctx, struct publish *pub, struct mzbp_hash *h)
{
    mzbp_hash_init(h, ctx->hash_seed);
    mzbp_hash_bytes(h, pub->client_id, strlen(pub->client_id));
    mzbp_hash_bytes(h, pub->ev->topic, pub->topic_len);
    mzbp_hash_bytes(h, pub->ev->payload, pub->ev->payloadlen);
    mzbp_hash_u64(h, pub->ev->retain ? 1 : 0);
}

static size_t route_number(const struct mzbp_ctx *ctx, const struct mzb_route *route)
{
    return (size_t)(route - ctx->routes->cfg->routes);
}

static void log_reply_refused(struct mzbp_ctx *ctx, const struct publish *pub,
                              const struct mzb_route *route, const char *cause)
{
    struct who w;

    quote_publish(&w, pub);
    mzbp_stat_add(&ctx->stats.reply_topic_refused, 1);
    mzbp_log_limited(ctx, MZBP_LOG_REPLY_REFUSED, MOSQ_LOG_WARNING,
                     "request from client \"%s\" on \"%s\" not dispatched to service \"%s\" "
                     "(routes[%zu], filter \"%s\"): %s",
                     w.client.text, w.topic.text, route->service, route_number(ctx, route),
                     route->filter, cause);
}

/* A v5 Response Topic: allowed only when valid and inside the route's reply_pattern. */
static int check_response_topic(struct mzbp_ctx *ctx, const struct publish *pub,
                                const struct mzb_route *route)
{
    const char *rt = (const char *)pub->props.response_topic.ptr;
    size_t len = pub->props.response_topic.len;
    int rc = mzb_reply_topic_check(rt, len);
    struct quoted q;
    char cause[512];

    quote(&q, rt, len);
    if (rc != MZB_TOPIC_OK) {
        snprintf(cause, sizeof(cause), "its response topic \"%s\" cannot be replied to (%s)",
                 q.text, mzb_topic_strerror(rc));
    } else if (!mzb_reply_pattern_match(route->reply_pattern, rt, len, pub->client_id,
                                        pub->username)) {
        snprintf(cause, sizeof(cause),
                 "its response topic \"%s\" is outside reply_pattern \"%s\"; the client "
                 "must ask for a reply topic that matches it",
                 q.text, route->reply_pattern);
    } else {
        return 0;
    }
    log_reply_refused(ctx, pub, route, cause);
    return -1;
}

/* No Response Topic: the route's reply_topic template, expanded and checked. */
static int expand_reply_template(struct mzbp_ctx *ctx, const struct publish *pub,
                                 const struct mzb_route *route, size_t *len)
{
    struct quoted q;
    char cause[512];
    int rc =
        mzb_reply_template_expand(route->reply_topic, pub->client_id, pub->username, pub->ev->topic,
                                  pub->topic_len, ctx->reply_buf, sizeof(ctx->reply_buf), len);

    if (rc != MZB_REPLY_OK) {
        snprintf(cause, sizeof(cause), "reply_topic \"%s\" cannot be expanded for it (%s)",
                 route->reply_topic, mzb_reply_strerror(rc));
    } else if ((rc = mzb_reply_topic_check(ctx->reply_buf, *len)) != MZB_TOPIC_OK) {
        snprintf(cause, sizeof(cause),
                 "reply_topic \"%s\" gives \"%s\", which cannot be replied to (%s)",
                 route->reply_topic, quote(&q, ctx->reply_buf, *len), mzb_topic_strerror(rc));
    } else {
        return 0;
    }
    log_reply_refused(ctx, pub, route, cause);
    return -1;
}

/* Sets the reply destination of a request; returns -1 when the request must not go out. */
static int choose_reply_topic(struct mzbp_ctx *ctx, struct publish *pub,
                              const struct mzb_route *route)
{
    struct mzb_meta *m = &pub->meta;
    size_t len = 0;

    m->has_reply_topic = 0;
    m->reply_topic = bytes_of(NULL, 0);
    if (pub->props.has_response_topic) {
        if (check_response_topic(ctx, pub, route) != 0) {
            return -1;
        }
        m->reply_topic = pub->props.response_topic;
        m->has_reply_topic = 1;
    } else if (route->reply_topic != NULL) {
        if (expand_reply_template(ctx, pub, route, &len) != 0) {
            return -1;
        }
        m->reply_topic = bytes_of(ctx->reply_buf, len);
        m->has_reply_topic = 1;
    }
    return 0;
}

static uint64_t next_message_id(struct mzbp_ctx *ctx)
{
    uint64_t low = ctx->id_counter++ & ((UINT64_C(1) << 40) - 1);

    return ctx->id_prefix | low;
}

static void set_route_meta(struct mzbp_ctx *ctx, struct publish *pub, const struct mzb_route *route)
{
    struct mzb_meta *m = &pub->meta;
    int request = route->mode == MZB_MODE_REQUEST;

    m->mode = request ? MZB_MODE_REQUEST : MZB_MODE_EVENT;
    m->reply_qos = (uint8_t)(route->qos >= 0 ? route->qos : pub->ev->qos);
    m->timeout_ms = request ? route->timeout_ms : 0;
    m->msg_id = next_message_id(ctx);
    m->route = bytes_of(route->filter, strlen(route->filter));
    if (!request) {
        m->has_reply_topic = 0;
        m->reply_topic = bytes_of(NULL, 0);
    }
}

static enum outcome note_handoff_failure(struct mzbp_ctx *ctx, const struct publish *pub,
                                         const struct mzb_route *route, int err)
{
    struct who w;

    quote_publish(&w, pub);
    if (err != EAGAIN) {
        mzbp_stat_add(&ctx->stats.handoff_errors, 1);
        mzbp_log_limited(ctx, MZBP_LOG_HANDOFF_ERROR, MOSQ_LOG_ERR,
                         "publish from client \"%s\" on \"%s\" not dispatched to service "
                         "\"%s\": %s",
                         w.client.text, w.topic.text, route->service, zmq_strerror(err));
        return OUT_SKIPPED;
    }
    mzbp_stat_add(&ctx->stats.queue_full, 1);
    mzbp_log_limited(ctx, MZBP_LOG_QUEUE_FULL, MOSQ_LOG_WARNING,
                     "%s publish from client \"%s\" on \"%s\" for service \"%s\" "
                     "(routes[%zu]): %u dispatches already wait for the I/O thread "
                     "(plugin.queue_limit); the bridge at %s is too slow or gone",
                     route->refuse_on_overload ? "refused" : "dropped (subscribers still got it)",
                     w.client.text, w.topic.text, route->service, route_number(ctx, route),
                     ctx->queue_limit, ctx->endpoint);
    if (route->refuse_on_overload) {
        mzbp_stat_add(&ctx->stats.refused_overload, 1);
        return OUT_REFUSE;
    }
    return OUT_SKIPPED;
}

static enum outcome dispatch_route(struct mzbp_ctx *ctx, struct publish *pub,
                                   const struct mzb_route *route)
{
    int rc;

    if (route->mode == MZB_MODE_REQUEST && choose_reply_topic(ctx, pub, route) != 0) {
        return OUT_SKIPPED;
    }
    set_route_meta(ctx, pub, route);

    rc = mzbp_io_feed(ctx->io, route->service, strlen(route->service), &pub->meta, pub->ev->payload,
                      pub->ev->payloadlen);
    if (rc != 0) {
        return note_handoff_failure(ctx, pub, route, rc);
    }
    mzbp_stat_bump(&ctx->stats.dispatched);
    return OUT_DISPATCHED;
}

/* Returns 1 when this QoS 2 publish was dispatched within the window already. */
static int is_qos2_repeat(struct mzbp_ctx *ctx, uint64_t hash, uint64_t now_ms)
{
    if (!mzbp_dedup_seen(&ctx->dedup, hash, now_ms)) {
        return 0;
    }
    mzbp_stat_add(&ctx->stats.qos2_repeats_dropped, 1);
    return 1;
}

static void remember_qos2(struct mzbp_ctx *ctx, uint64_t hash, uint64_t now_ms)
{
    uint32_t window = ctx->routes->cfg->qos2_dedup_ms;

    if (mzbp_dedup_record(&ctx->dedup, hash, now_ms, window)) {
        mzbp_stat_add(&ctx->stats.qos2_dedup_evicted, 1);
        mzbp_log_limited(ctx, MZBP_LOG_DEDUP_EVICTED, MOSQ_LOG_WARNING,
                         "more QoS 2 publishes arrive than the repeat table holds for "
                         "plugin.qos2_dedup_ms (%u ms), so a resent QoS 2 publish may be "
                         "dispatched twice; lower plugin.qos2_dedup_ms",
                         window);
    }
}

static int dispatch_all(struct mzbp_ctx *ctx, struct publish *pub, size_t services)
{
    int result = MOSQ_ERR_SUCCESS;
    size_t dispatched = 0;
    int dedup = pub->ev->qos == 2 && ctx->routes->cfg->qos2_dedup_ms > 0;
    uint64_t now_ms = dedup ? mzb_now_ms() : 0;
    struct mzbp_hash h;
    uint64_t hash = 0;

    if (dedup) {
        repeat_hash(ctx, pub, &h);
    }
    read_properties(ctx, pub, dedup ? &h : NULL);
    if (dedup) {
        hash = mzbp_hash_final(&h);
        if (is_qos2_repeat(ctx, hash, now_ms)) {
            return MOSQ_ERR_SUCCESS;
        }
    }

    fill_shared_meta(pub, mosquitto_client_protocol_version(pub->ev->client));
    for (size_t i = 0; i < services; i++) {
        enum outcome out = dispatch_route(ctx, pub, mzbp_routes_hit(ctx->routes, i));

        dispatched += out == OUT_DISPATCHED;
        if (out == OUT_REFUSE) {
            result = MOSQ_ERR_ACL_DENIED;
        }
    }
    if (dedup && dispatched > 0) {
        remember_qos2(ctx, hash, now_ms);
    }
    return result;
}

/*
 * Returns MOSQ_ERR_SUCCESS, or MOSQ_ERR_ACL_DENIED for a publish that a route
 * with on_overload "refuse" could not forward: Mosquitto 2.0.11 disconnects
 * the publisher on any other error.
 */
int mzbp_on_message(int event, void *event_data, void *userdata)
{
    struct mzbp_ctx *ctx = userdata;
    const struct mosquitto_evt_message *ev = event_data;
    struct publish pub;
    const char *client_id;
    size_t services;

    (void)event;
    mzbp_stat_bump(&ctx->stats.messages_seen);
    client_id = mosquitto_client_id(ev->client);
    if (client_id == NULL) {
        client_id = "";
    }
    if (!is_routable(ctx, ev, client_id)) {
        return MOSQ_ERR_SUCCESS;
    }

    pub.topic_len = strlen(ev->topic);
    services = mzbp_routes_select(ctx->routes, ev->topic, pub.topic_len);
    if (services == 0) {
        return MOSQ_ERR_SUCCESS;
    }
    mzbp_stat_bump(&ctx->stats.messages_routed);

    pub.ev = ev;
    pub.client_id = client_id;
    pub.username = mosquitto_client_username(ev->client);
    return dispatch_all(ctx, &pub, services);
}
