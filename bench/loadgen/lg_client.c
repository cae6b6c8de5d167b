#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mqtt_protocol.h>

#include "lg.h"

static const char role_letter[] = {'p', 's', 'r', 'e'};

void lg_client_fail(struct lg_client *cl, const char *fmt, ...)
{
    struct lg_worker *w = cl->w;
    va_list ap;

    if (w->first_error[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
        va_end(ap);
    }
    atomic_store(&w->run->failed, 1);
}

void lg_quota_take(struct lg_client *cl)
{
    if (cl->quota == UINT64_MAX) {
        return;
    }
    cl->quota--;
    if (cl->quota == 0) {
        atomic_fetch_add(&cl->w->run->senders_finished, 1);
    }
}

static void mark_ready(struct lg_client *cl)
{
    if (!cl->ready) {
        cl->ready = 1;
        atomic_fetch_add(&cl->w->run->ready, 1);
    }
}

static int subscription(const struct lg_client *cl, char *buf, size_t cap)
{
    const struct lg_opts *o = cl->w->run->opts;
    int n;

    switch (cl->role) {
    case LG_ROLE_SUB:
        n = snprintf(buf, cap, "%s/#", o->topic);
        break;
    case LG_ROLE_RR:
        n = snprintf(buf, cap, "%s/%s/#", o->reply_prefix, cl->id);
        break;
    case LG_ROLE_ECHO:
        n = o->share ? snprintf(buf, cap, "$share/%s/%s/#", o->share, o->topic)
                     : snprintf(buf, cap, "%s/#", o->topic);
        break;
    default:
        return 0;
    }
    return n > 0 && (size_t)n < cap ? 1 : -1;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct lg_client *cl = obj;
    char filter[LG_TOPIC_MAX + 64];
    int want;
    int src;

    (void)flags;
    (void)props;
    if (rc != 0) {
        lg_client_fail(cl, "client %s: the broker refused the connection: %s", cl->id,
                       mosquitto_reason_string(rc));
        return;
    }
    cl->connected = 1;

    want = subscription(cl, filter, sizeof(filter));
    if (want == 0) {
        mark_ready(cl);
        return;
    }
    src = want < 0 ? MOSQ_ERR_INVAL
                   : mosquitto_subscribe_v5(mosq, NULL, filter, cl->w->run->opts->qos, 0, NULL);
    if (src != MOSQ_ERR_SUCCESS) {
        lg_client_fail(cl, "client %s: cannot subscribe to %s: %s", cl->id, filter,
                       mosquitto_strerror(src));
    }
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    struct lg_client *cl = obj;

    (void)mosq;
    (void)mid;
    (void)props;
    if (count < 1 || granted[0] > 2) {
        lg_client_fail(cl, "client %s: the broker refused the subscription (reason %d)", cl->id,
                       count < 1 ? -1 : granted[0]);
        return;
    }
    mark_ready(cl);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    struct lg_client *cl = obj;

    (void)mosq;
    (void)props;
    cl->connected = 0;
    if (rc != 0 && atomic_load(&cl->w->run->phase) != LG_PHASE_STOP) {
        lg_client_fail(cl,
                       "client %s lost its connection to the broker (%s); check the broker's "
                       "log and limits",
                       cl->id, rc < 128 ? mosquitto_strerror(rc) : mosquitto_reason_string(rc));
    }
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    struct lg_client *cl = obj;

    (void)mosq;
    (void)mid;
    (void)props;
    if (reason >= 0x80) {
        cl->w->c.errors++;
    }
    if (cl->role == LG_ROLE_PUB) {
        lg_pub_on_publish(cl);
    }
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct lg_client *cl = obj;
    int64_t now = lg_now_ns();

    (void)mosq;
    atomic_store_explicit(&cl->w->run->last_rx_ns, now, memory_order_relaxed);
    switch (cl->role) {
    case LG_ROLE_SUB:
        lg_sub_on_message(cl, msg, now);
        break;
    case LG_ROLE_RR:
        lg_rr_on_message(cl, msg, props, now);
        break;
    case LG_ROLE_ECHO:
        lg_echo_on_message(cl, msg, props);
        break;
    default:
        cl->w->c.strays++;
        break;
    }
}

static int set_names(struct lg_client *cl)
{
    const struct lg_opts *o = cl->w->run->opts;
    int n;

    n = snprintf(cl->id, sizeof(cl->id), "%s-%ld-%c%d", o->id_prefix, (long)getpid(),
                 role_letter[cl->role], cl->index);
    if (n < 0 || (size_t)n >= sizeof(cl->id)) {
        return -1;
    }
    n = snprintf(cl->topic, sizeof(cl->topic), "%s/%d", o->topic, cl->index);
    if (n < 0 || (size_t)n >= sizeof(cl->topic)) {
        return -1;
    }
    n = snprintf(cl->reply_topic, sizeof(cl->reply_topic), "%s/%s/r", o->reply_prefix, cl->id);
    return n > 0 && (size_t)n < sizeof(cl->reply_topic) ? 0 : -1;
}

static int alloc_role_state(struct lg_client *cl)
{
    const struct lg_opts *o = cl->w->run->opts;

    if (cl->role == LG_ROLE_PUB || cl->role == LG_ROLE_RR) {
        cl->payload = calloc(1, o->size > 0 ? o->size : 1);
        if (!cl->payload) {
            return -1;
        }
    }
    if (cl->role == LG_ROLE_SUB) {
        cl->expect = calloc((size_t)o->pubs, sizeof(*cl->expect));
        return cl->expect ? 0 : -1;
    }
    if (cl->role == LG_ROLE_RR) {
        cl->slots = calloc((size_t)o->inflight, sizeof(*cl->slots));
        return cl->slots ? 0 : -1;
    }
    return 0;
}

static int set_options(struct lg_client *cl)
{
    const struct lg_opts *o = cl->w->run->opts;
    struct mosquitto *m = cl->mosq;

    /* Without TCP_NODELAY a QoS 1 round trip stalls 40-90 ms on delayed ACKs. */
    if (mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS ||
        mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, o->protocol) != MOSQ_ERR_SUCCESS) {
        return -1;
    }
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_subscribe_v5_callback_set(m, on_subscribe);
    mosquitto_disconnect_v5_callback_set(m, on_disconnect);
    mosquitto_publish_v5_callback_set(m, on_publish);
    mosquitto_message_v5_callback_set(m, on_message);
    return 0;
}

int lg_client_init(struct lg_client *cl, struct lg_worker *w, enum lg_role role, int index)
{
    memset(cl, 0, sizeof(*cl));
    cl->w = w;
    cl->role = role;
    cl->index = index;
    cl->fd = -1;
    cl->quota = UINT64_MAX;

    if (set_names(cl) != 0 || alloc_role_state(cl) != 0) {
        return -1;
    }
    cl->mosq = mosquitto_new(cl->id, true, cl);
    if (!cl->mosq) {
        return -1;
    }
    return set_options(cl);
}

int lg_client_connect(struct lg_client *cl)
{
    const struct lg_opts *o = cl->w->run->opts;
    mosquitto_property *props = NULL;
    int rc;

    /*
     * Mosquitto 2.0.11 can exceed a v5 client's Receive Maximum under load (fixed in 2.0.13,
     * eclipse/mosquitto#2301), and libmosquitto then drops the connection as a protocol
     * error; the largest Receive Maximum keeps the broker's bug out of the measurement.
     */
    if (o->protocol == MQTT_PROTOCOL_V5 &&
        mosquitto_property_add_int16(&props, MQTT_PROP_RECEIVE_MAXIMUM, 65535) !=
            MOSQ_ERR_SUCCESS) {
        lg_client_fail(cl, "client %s: out of memory", cl->id);
        return -1;
    }
    rc = mosquitto_connect_bind_v5(cl->mosq, o->host, o->port, o->keepalive, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS) {
        lg_client_fail(cl, "client %s cannot connect to %s:%d: %s", cl->id, o->host, o->port,
                       rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return -1;
    }
    cl->fd = mosquitto_socket(cl->mosq);
    return cl->fd >= 0 ? 0 : -1;
}

void lg_client_disconnect(struct lg_client *cl)
{
    if (cl->mosq && cl->connected) {
        /* Best effort: the run is over, so a failed DISCONNECT changes no figure. */
        if (mosquitto_disconnect_v5(cl->mosq, 0, NULL) == MOSQ_ERR_SUCCESS) {
            mosquitto_loop_write(cl->mosq, 1);
        }
    }
}

void lg_client_free(struct lg_client *cl)
{
    if (cl->mosq) {
        mosquitto_destroy(cl->mosq);
        cl->mosq = NULL;
    }
    free(cl->payload);
    free(cl->expect);
    free(cl->slots);
    cl->payload = NULL;
    cl->expect = NULL;
    cl->slots = NULL;
}
