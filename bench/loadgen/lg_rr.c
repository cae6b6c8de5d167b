#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "lg.h"

/* How often a client looks for requests that waited past --timeout. */
#define TIMEOUT_SCAN_NS 10000000
#define MAX_LAG_NS 100000000

static int in_window(const struct lg_run *run, int64_t t)
{
    return t >= atomic_load_explicit(&run->measure_ns, memory_order_relaxed) &&
           t <= atomic_load_explicit(&run->end_ns, memory_order_relaxed);
}

static int build_props(const struct lg_client *cl, uint32_t slot, uint64_t seq,
                       mosquitto_property **props)
{
    unsigned char corr[LG_CORR_SIZE];

    memcpy(corr, &slot, 4);
    memcpy(corr + 4, &seq, 8);
    *props = NULL;
    if (mosquitto_property_add_string(props, MQTT_PROP_RESPONSE_TOPIC, cl->reply_topic) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_property_add_binary(props, MQTT_PROP_CORRELATION_DATA, corr, sizeof(corr)) !=
            MOSQ_ERR_SUCCESS) {
        mosquitto_property_free_all(props);
        return -1;
    }
    return 0;
}

static int send_request(struct lg_client *cl, uint32_t slot_index)
{
    struct lg_run *run = cl->w->run;
    const struct lg_opts *o = run->opts;
    struct lg_slot *slot = &cl->slots[slot_index];
    mosquitto_property *props = NULL;
    int rc;

    if (build_props(cl, slot_index, cl->seq, &props) != 0) {
        lg_client_fail(cl, "client %s: out of memory building request properties", cl->id);
        return -1;
    }
    if (o->size >= sizeof(cl->seq)) {
        memcpy(cl->payload, &cl->seq, sizeof(cl->seq));
    }
    slot->waiting = 1;
    slot->seq = cl->seq;
    slot->sent_ns = lg_now_ns();
    atomic_fetch_add_explicit(&run->rr_waiting, 1, memory_order_relaxed);

    rc = mosquitto_publish_v5(cl->mosq, NULL, cl->topic, (int)o->size, cl->payload, o->qos, false,
                              props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS) {
        lg_client_fail(cl, "client %s cannot publish a request to %s: %s", cl->id, cl->topic,
                       mosquitto_strerror(rc));
        return -1;
    }

    cl->seq++;
    lg_quota_take(cl);
    cl->w->c.sent++;
    if (in_window(run, slot->sent_ns)) {
        cl->w->c.sent_in_window++;
    }
    return 0;
}

static void release_slot(struct lg_client *cl, struct lg_slot *slot)
{
    slot->waiting = 0;
    atomic_fetch_sub_explicit(&cl->w->run->rr_waiting, 1, memory_order_relaxed);
}

static void expire_requests(struct lg_client *cl, int64_t now)
{
    int64_t limit = (int64_t)cl->w->run->opts->timeout_ms * 1000000;

    if (now - cl->last_scan_ns < TIMEOUT_SCAN_NS) {
        return;
    }
    cl->last_scan_ns = now;
    for (int i = 0; i < cl->w->run->opts->inflight; i++) {
        if (cl->slots[i].waiting && now - cl->slots[i].sent_ns > limit) {
            cl->w->c.timeouts++;
            release_slot(cl, &cl->slots[i]);
        }
    }
}

static int may_send(struct lg_client *cl, int64_t now)
{
    const struct lg_opts *o = cl->w->run->opts;

    if (cl->quota == 0 || atomic_load(&cl->w->run->phase) != LG_PHASE_RUN) {
        return 0;
    }
    return o->rate == 0 || now >= cl->next_due_ns;
}

static void advance_schedule(struct lg_client *cl, int64_t now)
{
    const struct lg_opts *o = cl->w->run->opts;
    int64_t interval = (int64_t)(1e9 * o->clients / o->rate);

    if (o->rate == 0) {
        return;
    }
    cl->next_due_ns += interval > 0 ? interval : 1;
    if (cl->next_due_ns < now - MAX_LAG_NS) {
        cl->next_due_ns = now;
    }
}

void lg_rr_drive(struct lg_client *cl, int64_t now)
{
    if (!cl->ready) {
        return;
    }
    expire_requests(cl, now);
    if (cl->next_due_ns == 0) {
        cl->next_due_ns = now;
    }
    for (int i = 0; i < cl->w->run->opts->inflight; i++) {
        if (!may_send(cl, now)) {
            return;
        }
        if (!cl->slots[i].waiting) {
            if (send_request(cl, (uint32_t)i) != 0) {
                return;
            }
            advance_schedule(cl, now);
        }
    }
}

/* Returns 1 when the reply carries the bridge's mzb-error user property. */
static int is_error_reply(struct lg_client *cl, const struct mosquitto_message *msg,
                          const mosquitto_property *props)
{
    const mosquitto_property *p = props;
    char *key = NULL;
    char *value = NULL;
    int found = 0;
    int skip = 0;

    while (!found && (p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &key,
                                                              &value, skip)) != NULL) {
        found = strcmp(key, "mzb-error") == 0;
        if (found && cl->w->c.errors == 0) {
            fprintf(stderr, "mzb-loadgen: client %s got an error reply (mzb-error=%s): %.*s\n",
                    cl->id, value, msg->payloadlen > 200 ? 200 : msg->payloadlen,
                    (const char *)msg->payload);
        }
        free(key);
        free(value);
        key = NULL;
        value = NULL;
        skip = 1;
    }
    return found;
}

/* Finds the slot the reply answers; NULL for replies to expired or unknown requests. */
static struct lg_slot *match_slot(struct lg_client *cl, const mosquitto_property *props,
                                  uint32_t *index)
{
    void *corr = NULL;
    uint16_t len = 0;
    uint64_t seq;
    struct lg_slot *slot = NULL;

    mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &len, false);
    if (corr && len == LG_CORR_SIZE) {
        memcpy(index, corr, 4);
        memcpy(&seq, (unsigned char *)corr + 4, 8);
        if (*index < (uint32_t)cl->w->run->opts->inflight && cl->slots[*index].waiting &&
            cl->slots[*index].seq == seq) {
            slot = &cl->slots[*index];
        }
    }
    free(corr);
    return slot;
}

void lg_rr_on_message(struct lg_client *cl, const struct mosquitto_message *msg,
                      const mosquitto_property *props, int64_t now)
{
    struct lg_run *run = cl->w->run;
    struct lg_counters *c = &cl->w->c;
    uint32_t index = 0;
    struct lg_slot *slot = match_slot(cl, props, &index);

    if (!slot) {
        c->strays++;
        return;
    }
    c->received++;
    if (is_error_reply(cl, msg, props)) {
        c->errors++;
    } else {
        if (in_window(run, now)) {
            c->received_in_window++;
            c->bytes_in_window += (uint64_t)msg->payloadlen;
        }
        if (in_window(run, slot->sent_ns)) {
            lg_hist_add(&cl->w->hist, (uint64_t)(now - slot->sent_ns));
        }
    }
    release_slot(cl, slot);

    /* Closed loop: the freed slot goes out again at once, without waiting for the poll turn. */
    if (run->opts->rate == 0 && may_send(cl, now)) {
        send_request(cl, index);
    }
}
