#include "brg_mqtt.h"

#include "brg_list.h"
#include "mzb_log.h"
#include "mzb_proto.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MIN_MS 1000u
#define RETRY_MAX_MS 5000u
#define MISC_INTERVAL_MS 1000u
#define LOG_INTERVAL_MS 10000u
#define REPLY_MAX_PAYLOAD 268435455u
#define REPLY_MAX_BINARY 65535u
#define TOPIC_STACK 512

struct kept_reply {
    struct brg_link link;
    struct brg_mqtt_reply reply; /* points into the copies below */
    void *payload;
    void *correlation;
    size_t topic_len;
    uint8_t topic[];
};

struct brg_mqtt {
    const struct mzb_mqtt_config *cfg;
    struct mosquitto *mosq;
    struct brg_counters *counters;
    struct brg_link backlog;
    size_t backlog_count;
    uint32_t backlog_limit;
    int started;       /* the first connect was attempted */
    int connected;     /* CONNACK accepted and no disconnect since */
    int stopping;      /* brg_mqtt_destroy is running: callbacks stay quiet */
    int outage_logged; /* the current outage has been reported */
    int flush_due;     /* connected again: publish the backlog */
    uint64_t down_since_ms;
    uint64_t next_attempt_ms;
    uint64_t next_misc_ms;
    uint32_t retry_ms;
    char refusal[128]; /* why the broker refused the last CONNECT */
    struct mzb_ratelimit rl_publish;
};

/* libmosquitto's sentences end in a period; ours go mid-line. */
static const char *reason_text(int rc, char *buf, size_t cap)
{
    const char *text = rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
    size_t len = strlen(text);

    if (len > 0 && text[len - 1] == '.') {
        len--;
    }
    snprintf(buf, cap, "%.*s", (int)len, text);
    if (buf[0] >= 'A' && buf[0] <= 'Z') {
        buf[0] = (char)(buf[0] - 'A' + 'a');
    }
    return buf;
}

static void connection_failed(struct brg_mqtt *m, const char *reason)
{
    uint64_t now = mzb_now_ms();

    m->connected = 0;
    if (!m->outage_logged) {
        mzb_log(MZB_LOG_WARNING,
                "MQTT broker %s:%d: %s; retrying every %u s at most, keeping up to %u replies "
                "until it is back (check bridge.mqtt and that the broker runs)",
                m->cfg->host, m->cfg->port, m->refusal[0] ? m->refusal : reason,
                RETRY_MAX_MS / 1000u, m->backlog_limit);
        m->outage_logged = 1;
        m->down_since_ms = now;
    } else {
        mzb_log(MZB_LOG_DEBUG, "MQTT broker %s:%d: %s", m->cfg->host, m->cfg->port, reason);
    }
    m->refusal[0] = '\0';
    m->next_attempt_ms = now + m->retry_ms;
    m->retry_ms = m->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : m->retry_ms * 2;
}

static void on_connect(struct mosquitto *mosq, void *arg, int rc, int flags,
                       const mosquitto_property *props)
{
    struct brg_mqtt *m = arg;

    (void)mosq;
    (void)flags;
    (void)props;
    if (rc != 0) {
        /* libmosquitto closes the socket next and reports it through on_disconnect. */
        snprintf(m->refusal, sizeof(m->refusal), "refused the connection: %s",
                 mosquitto_reason_string(rc));
        return;
    }

    if (m->outage_logged) {
        mzb_log(MZB_LOG_NOTICE,
                "MQTT broker %s:%d: connected again after %llu s; %zu kept "
                "replies go out now",
                m->cfg->host, m->cfg->port,
                (unsigned long long)((mzb_now_ms() - m->down_since_ms) / 1000u), m->backlog_count);
    } else {
        mzb_log(MZB_LOG_INFO, "MQTT broker %s:%d: connected as client \"%s\"", m->cfg->host,
                m->cfg->port, m->cfg->client_id);
    }
    m->connected = 1;
    m->outage_logged = 0;
    m->flush_due = 1;
    m->retry_ms = RETRY_MIN_MS;
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc,
                          const mosquitto_property *props)
{
    struct brg_mqtt *m = arg;
    char why[128];

    (void)mosq;
    (void)props;
    if (m->stopping) {
        return;
    }
    if (m->connected) {
        m->counters->mqtt_disconnects++;
    }
    connection_failed(m, rc == 0 ? "connection closed" : reason_text(rc, why, sizeof(why)));
}

static int configure(struct brg_mqtt *m)
{
    const struct mzb_mqtt_config *cfg = m->cfg;
    int rc;

    rc = mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    }
    if (rc == MOSQ_ERR_SUCCESS && cfg->username) {
        rc = mosquitto_username_pw_set(m->mosq, cfg->username, cfg->password);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        /* Only libmosquitto's own loops read this; it documents the policy brg_mqtt_tick runs. */
        rc = mosquitto_reconnect_delay_set(m->mosq, RETRY_MIN_MS / 1000u, RETRY_MAX_MS / 1000u,
                                           true);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        mzb_log(MZB_LOG_ERROR, "MQTT client \"%s\": cannot be set up: %s", cfg->client_id,
                mosquitto_strerror(rc));
        return -1;
    }
    mosquitto_connect_v5_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
    return 0;
}

struct brg_mqtt *brg_mqtt_new(const struct mzb_mqtt_config *cfg, uint32_t backlog_limit,
                              struct brg_counters *counters)
{
    struct brg_mqtt *m = calloc(1, sizeof(*m));

    if (!m) {
        mzb_log(MZB_LOG_ERROR, "MQTT client: out of memory");
        return NULL;
    }
    m->cfg = cfg;
    m->counters = counters;
    m->backlog_limit = backlog_limit;
    m->retry_ms = RETRY_MIN_MS;
    brg_list_init(&m->backlog);

    m->mosq = mosquitto_new(cfg->client_id, true, m);
    if (!m->mosq) {
        mzb_log(MZB_LOG_ERROR, "MQTT client \"%s\": cannot be created: %s", cfg->client_id,
                strerror(errno));
        free(m);
        return NULL;
    }
    if (configure(m) != 0) {
        mosquitto_destroy(m->mosq);
        free(m);
        return NULL;
    }
    return m;
}

static void free_kept(struct kept_reply *k)
{
    free(k->payload);
    free(k->correlation);
    free(k);
}

void brg_mqtt_destroy(struct brg_mqtt **mp)
{
    struct brg_mqtt *m;
    struct brg_link *l;

    if (!mp || !*mp) {
        return;
    }
    m = *mp;
    m->stopping = 1;
    if (m->connected && mosquitto_disconnect(m->mosq) != MOSQ_ERR_SUCCESS) {
        mzb_log(MZB_LOG_DEBUG, "MQTT broker %s:%d: DISCONNECT not sent", m->cfg->host,
                m->cfg->port);
    }
    if (m->backlog_count > 0) {
        mzb_log(MZB_LOG_WARNING,
                "MQTT broker %s:%d: %zu replies kept while it was away are "
                "lost at shutdown",
                m->cfg->host, m->cfg->port, m->backlog_count);
    }
    while ((l = brg_list_pop_front(&m->backlog)) != NULL) {
        free_kept(brg_container_of(l, struct kept_reply, link));
    }
    mosquitto_destroy(m->mosq);
    free(m);
    *mp = NULL;
}

static void attempt(struct brg_mqtt *m)
{
    char why[128];
    int rc;

    if (m->started) {
        rc = mosquitto_reconnect_async(m->mosq);
    } else {
        rc = mosquitto_connect_async(m->mosq, m->cfg->host, m->cfg->port, m->cfg->keepalive);
        m->started = 1;
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        connection_failed(m, reason_text(rc, why, sizeof(why)));
    }
}

void brg_mqtt_start(struct brg_mqtt *m, uint64_t now_ms)
{
    m->next_attempt_ms = now_ms;
    attempt(m);
}

static int undeliverable(struct brg_mqtt *m, const struct brg_mqtt_reply *r, const char *why)
{
    uint64_t suppressed;

    m->counters->reply_undeliverable++;
    if (mzb_ratelimit_allow(&m->rl_publish, mzb_now_ms(), LOG_INTERVAL_MS, &suppressed)) {
        mzb_log(MZB_LOG_WARNING,
                "reply to topic \"%.*s\" dropped: %s (%llu more like this "
                "not logged)",
                (int)(r->topic_len > 200 ? 200 : r->topic_len), (const char *)r->topic, why,
                (unsigned long long)suppressed);
    }
    return BRG_PUB_UNDELIVERABLE;
}

static int build_props(const struct brg_mqtt_reply *r, mosquitto_property **props)
{
    int rc = MOSQ_ERR_SUCCESS;

    *props = NULL;
    if (!r->v5) {
        return MOSQ_ERR_SUCCESS;
    }
    if (r->has_correlation) {
        rc = mosquitto_property_add_binary(props, MQTT_PROP_CORRELATION_DATA, r->correlation,
                                           (uint16_t)r->correlation_len);
    }
    if (rc == MOSQ_ERR_SUCCESS && r->error_word) {
        rc = mosquitto_property_add_string_pair(props, MQTT_PROP_USER_PROPERTY, MZB_ERROR_PROPERTY,
                                                r->error_word);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_property_free_all(props);
    }
    return rc;
}

/* Returns a MOSQ_ERR code; topic is r->topic as a C string. */
static int send_reply(struct brg_mqtt *m, const struct brg_mqtt_reply *r, const char *topic)
{
    mosquitto_property *props;
    int rc = build_props(r, &props);

    if (rc != MOSQ_ERR_SUCCESS) {
        return rc;
    }
    rc = mosquitto_publish_v5(m->mosq, NULL, topic, (int)r->payload_len, r->payload, r->qos, false,
                              props);
    mosquitto_property_free_all(&props);
    return rc;
}

static int keep(struct brg_mqtt *m, const struct brg_mqtt_reply *r)
{
    struct kept_reply *k;

    if (m->backlog_count >= m->backlog_limit) {
        m->counters->drop_reply_backlog_full++;
        return BRG_PUB_DROPPED;
    }
    k = calloc(1, sizeof(*k) + r->topic_len);
    if (!k) {
        m->counters->drop_reply_backlog_full++;
        return BRG_PUB_DROPPED;
    }
    k->payload = malloc(r->payload_len ? r->payload_len : 1);
    k->correlation = malloc(r->correlation_len ? r->correlation_len : 1);
    if (!k->payload || !k->correlation) {
        free_kept(k);
        m->counters->drop_reply_backlog_full++;
        return BRG_PUB_DROPPED;
    }

    k->reply = *r;
    memcpy(k->topic, r->topic, r->topic_len);
    k->reply.topic = k->topic;
    if (r->payload_len > 0) {
        memcpy(k->payload, r->payload, r->payload_len);
    }
    k->reply.payload = k->payload;
    if (r->correlation_len > 0) {
        memcpy(k->correlation, r->correlation, r->correlation_len);
    }
    k->reply.correlation = k->correlation;
    brg_list_push_back(&m->backlog, &k->link);
    m->backlog_count++;
    return BRG_PUB_KEPT;
}

static const char *check_reply(const struct brg_mqtt_reply *r)
{
    if (r->topic_len == 0 || memchr(r->topic, '\0', r->topic_len)) {
        return "the reply topic is empty or holds a NUL byte";
    }
    if (r->payload_len > REPLY_MAX_PAYLOAD) {
        return "the payload is larger than MQTT allows";
    }
    if (r->has_correlation && r->correlation_len > REPLY_MAX_BINARY) {
        return "the correlation data is longer than MQTT allows";
    }
    return NULL;
}

/* Publishes now when connected; the result says what became of the reply. */
static int publish_now(struct brg_mqtt *m, const struct brg_mqtt_reply *r)
{
    char stack[TOPIC_STACK];
    char *topic = r->topic_len < sizeof(stack) ? stack : malloc(r->topic_len + 1);
    char why[128];
    int rc;

    if (!topic) {
        return undeliverable(m, r, "out of memory");
    }
    memcpy(topic, r->topic, r->topic_len);
    topic[r->topic_len] = '\0';
    rc = send_reply(m, r, topic);
    if (topic != stack) {
        free(topic);
    }

    if (rc == MOSQ_ERR_SUCCESS) {
        m->counters->replies_published++;
        return BRG_PUB_SENT;
    }
    if (rc == MOSQ_ERR_NO_CONN) {
        m->connected = 0;
        return keep(m, r);
    }
    return undeliverable(m, r, reason_text(rc, why, sizeof(why)));
}

int brg_mqtt_publish(struct brg_mqtt *m, const struct brg_mqtt_reply *r)
{
    const char *bad = check_reply(r);

    if (bad) {
        return undeliverable(m, r, bad);
    }
    if (!m->connected || m->backlog_count > 0) {
        return keep(m, r);
    }
    return publish_now(m, r);
}

static void flush_backlog(struct brg_mqtt *m)
{
    m->flush_due = 0;
    while (m->connected && !brg_list_empty(&m->backlog)) {
        struct brg_link *l = brg_list_pop_front(&m->backlog);
        struct kept_reply *k = brg_container_of(l, struct kept_reply, link);

        m->backlog_count--;
        publish_now(m, &k->reply);
        free_kept(k);
    }
}

int brg_mqtt_fd(struct brg_mqtt *m)
{
    return mosquitto_socket(m->mosq);
}

int brg_mqtt_want_write(struct brg_mqtt *m)
{
    return mosquitto_want_write(m->mosq) ? 1 : 0;
}

void brg_mqtt_handle_io(struct brg_mqtt *m, int readable, int writable, uint64_t now_ms)
{
    /* Errors come back through on_disconnect, which schedules the next attempt. */
    if (readable && mosquitto_socket(m->mosq) >= 0) {
        (void)mosquitto_loop_read(m->mosq, 1);
    }
    if (writable && mosquitto_socket(m->mosq) >= 0) {
        (void)mosquitto_loop_write(m->mosq, 1);
    }
    if (m->flush_due) {
        flush_backlog(m);
    }
    (void)now_ms;
}

void brg_mqtt_tick(struct brg_mqtt *m, uint64_t now_ms)
{
    if (mosquitto_socket(m->mosq) >= 0) {
        if (now_ms >= m->next_misc_ms) {
            (void)mosquitto_loop_misc(m->mosq);
            m->next_misc_ms = now_ms + MISC_INTERVAL_MS;
        }
    } else if (m->started && now_ms >= m->next_attempt_ms) {
        attempt(m);
    }
    if (m->flush_due) {
        flush_backlog(m);
    }
}

uint64_t brg_mqtt_next_wake(const struct brg_mqtt *m, uint64_t now_ms)
{
    (void)now_ms;
    if (mosquitto_socket(m->mosq) < 0) {
        return m->next_attempt_ms;
    }
    return m->next_misc_ms;
}

void brg_mqtt_set_backlog_limit(struct brg_mqtt *m, uint32_t limit)
{
    m->backlog_limit = limit;
}

int brg_mqtt_connected(const struct brg_mqtt *m)
{
    return m->connected;
}

size_t brg_mqtt_backlog(const struct brg_mqtt *m)
{
    return m->backlog_count;
}
