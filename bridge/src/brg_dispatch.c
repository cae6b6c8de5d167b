#include "brg_bridge.h"

#include "mzb_proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* An error sentence never comes near this; service names are at most 255 bytes. */
#define SENTENCE_MAX 512

static void publish(struct brg_bridge *b, struct brg_request *r, const void *payload, size_t len,
                    const char *error_word)
{
    struct brg_mqtt_reply reply = {
        .topic = r->reply_topic.ptr,
        .topic_len = r->reply_topic.len,
        .payload = payload,
        .payload_len = len,
        .correlation = r->correlation.ptr,
        .correlation_len = r->correlation.len,
        .has_correlation = r->has_correlation,
        .error_word = error_word,
        .qos = r->reply_qos,
        .v5 = r->protocol >= 5,
    };

    if (!r->has_reply_topic) {
        b->counters.reply_undeliverable++;
        brg_log_limited(&b->rl.no_reply_topic,
                        "answer for service \"%s\" dropped: the request has no reply topic "
                        "(give the route a reply_topic, or let clients send a Response Topic)",
                        r->service->shown);
        return;
    }
    brg_mqtt_publish(b->mqtt, &reply);
}

/* Only plugin requests in request mode get MQTT error replies; the caller counts the kind. */
static void error_reply(struct brg_bridge *b, struct brg_request *r, const char *word,
                        const char *sentence)
{
    if (r->origin == BRG_ORIGIN_PLUGIN && r->mode == MZB_MODE_REQUEST) {
        publish(b, r, sentence, strlen(sentence), word);
    }
}

static void reply_timeout(struct brg_bridge *b, struct brg_request *r)
{
    char text[SENTENCE_MAX];

    b->counters.error_timeout++;
    snprintf(text, sizeof(text), "no handler answered service \"%s\" within %llu ms",
             r->service->shown, (unsigned long long)(r->deadline.when - r->arrival_ms));
    error_reply(b, r, MZB_ERROR_TIMEOUT, text);
}

static void reply_no_handler(struct brg_bridge *b, struct brg_request *r)
{
    char text[SENTENCE_MAX];

    b->counters.error_no_handler++;
    snprintf(text, sizeof(text), "service \"%s\" has no live handler", r->service->shown);
    error_reply(b, r, MZB_ERROR_NO_HANDLER, text);
}

static void reply_overloaded(struct brg_bridge *b, struct brg_request *r)
{
    char text[SENTENCE_MAX];

    b->counters.error_overloaded++;
    snprintf(text, sizeof(text),
             "service \"%s\" already has %zu requests waiting, its limit; try again later",
             r->service->shown, r->service->queued);
    error_reply(b, r, MZB_ERROR_OVERLOADED, text);
}

static void reply_handler_lost(struct brg_bridge *b, struct brg_request *r)
{
    char text[SENTENCE_MAX];

    b->counters.error_handler_lost++;
    snprintf(text, sizeof(text), "the handler serving service \"%s\" was lost before it answered",
             r->service->shown);
    error_reply(b, r, MZB_ERROR_HANDLER_LOST, text);
}

void brg_dispatch_finish(struct brg_bridge *b, struct brg_request *r)
{
    brg_plugin_queue_ack(b, r);
    brg_request_free(b->reg, r);
}

void brg_dispatch_defer(struct brg_bridge *b, struct brg_service *svc, const void *peer,
                        size_t peer_len, uint64_t msg_id)
{
    b->counters.deferred_queue_full++;
    if (brg_plugins_queue_retry(&b->plugins, peer, peer_len, msg_id, mzb_now_ms()) != 0) {
        b->counters.drop_out_of_memory++;
        brg_log_limited(&b->rl.no_memory,
                        "RETRY for an event of service \"%s\" not queued: out of memory; the "
                        "plugin resends it when its own retry timer runs out",
                        svc->shown);
    }
    brg_log_limited(&b->rl.deferred,
                    "event for service \"%s\" handed back to the plugin (RETRY): %zu events "
                    "already wait, the bridge.max_queue limit; the plugin sends it again later "
                    "(start more handlers or raise the limit)",
                    svc->shown, svc->queued);
}

static void drop_event(struct brg_bridge *b, struct brg_request *r)
{
    b->counters.drop_event_queue_full++;
    brg_log_limited(&b->rl.queue_full,
                    "QoS 0 event for service \"%s\" dropped: %zu events already wait, the "
                    "bridge.max_queue limit (start more handlers or raise the limit)",
                    r->service->shown, r->service->queued);
    brg_dispatch_finish(b, r);
}

static void drop_client(struct brg_bridge *b, struct brg_request *r)
{
    b->counters.drop_client_queue_full++;
    brg_log_limited(&b->rl.client_queue_full,
                    "MDP client request for service \"%s\" dropped: %zu requests already "
                    "wait, the bridge.max_queue limit",
                    r->service->shown, r->service->queued);
    brg_dispatch_finish(b, r);
}

void brg_dispatch_accept(struct brg_bridge *b, struct brg_request *r)
{
    struct brg_service *svc = r->service;

    switch (brg_service_admit(svc, r->origin, r->mode, r->qos, b->limits.max_queue)) {
    case BRG_ADMIT_QUEUE:
        brg_request_enqueue(r, 0);
        brg_dispatch_pump(b, svc);
        break;
    case BRG_ADMIT_NO_HANDLER:
        reply_no_handler(b, r);
        brg_dispatch_finish(b, r);
        break;
    case BRG_ADMIT_OVERLOADED:
        reply_overloaded(b, r);
        brg_dispatch_finish(b, r);
        break;
    case BRG_ADMIT_RETRY:
        /* Not finished: no ACK, the plugin keeps it and resends it. */
        brg_dispatch_defer(b, svc, r->peer, r->peer_len, r->msg_id);
        brg_request_free(b->reg, r);
        break;
    case BRG_ADMIT_DROP_EVENT:
        drop_event(b, r);
        break;
    default:
        drop_client(b, r);
        break;
    }
}

static void send_failed(struct brg_bridge *b, struct brg_handler *h, int err)
{
    char hex[65];

    brg_log_limited(
        &b->rl.send_failed, "handler %s of service \"%s\": REQUEST not sent: %s; retried later",
        brg_hex(h->id, h->id_len, hex, sizeof(hex)), h->service->shown, zmq_strerror(err));
}

/*
 * Each round costs one heap lookup and one O(log handlers) reorder, so a pump
 * that sends many requests never rescans the service's handlers.
 */
void brg_dispatch_pump(struct brg_bridge *b, struct brg_service *svc)
{
    while (svc->queued > 0) {
        struct brg_handler *h = brg_service_pick(svc);
        struct brg_request *r;
        int err;

        if (!h) {
            return;
        }
        r = brg_service_dequeue(svc);
        if (brg_mdp_send_request(b, h, r) == 0) {
            brg_request_assign(r, h);
            b->counters.requests_dispatched++;
            continue;
        }

        err = errno;
        brg_request_enqueue(r, 1);
        if (err == EHOSTUNREACH) {
            brg_dispatch_drop_handler(b, h, "its connection is gone",
                                      &b->counters.handlers_dropped_unreachable);
            continue;
        }
        /* Its queue is full or the send failed otherwise: others of its load go first later. */
        brg_handler_touch(h);
        send_failed(b, h, err);
        return;
    }
}

static void deliver(struct brg_bridge *b, struct brg_request *r, zmq_msg_t *body)
{
    if (r->origin == BRG_ORIGIN_CLIENT) {
        brg_mdp_send_client_reply(b, r, body);
    } else if (r->mode == MZB_MODE_REQUEST) {
        publish(b, r, body ? zmq_msg_data(body) : NULL, body ? zmq_msg_size(body) : 0, NULL);
    }
}

static void stray_reply(struct brg_bridge *b, struct brg_handler *h, uint64_t key)
{
    char hex[65];

    b->counters.unexpected_replies++;
    brg_log_limited(&b->rl.unexpected_reply,
                    "handler %s of service \"%s\" sent a REPLY for request %016llx, which it "
                    "does not hold; dropped (a worker bug, or a reply sent twice)",
                    brg_hex(h->id, h->id_len, hex, sizeof(hex)), h->service->shown,
                    (unsigned long long)key);
}

void brg_dispatch_reply(struct brg_bridge *b, struct brg_handler *h, uint64_t key, zmq_msg_t *body,
                        uint64_t now_ms)
{
    struct brg_request *r = brg_handler_find_request(h, key);
    struct brg_service *svc = h->service;

    if (!r) {
        stray_reply(b, h, key);
        return;
    }

    if (r->state == BRG_REQ_LATE) {
        b->counters.late_replies++;
        brg_log_limited(&b->rl.late_reply,
                        "service \"%s\": a reply came after the request had timed out; dropped "
                        "(raise the route's timeout_ms or speed up the handler)",
                        svc->shown);
        brg_request_free(b->reg, r);
    } else {
        b->counters.replies_received++;
        svc->served++;
        h->served++;
        deliver(b, r, body);
        brg_dispatch_finish(b, r);
    }

    /* Its silence clock was stopped while it worked; it starts again once it holds nothing. */
    brg_handler_refresh(h, now_ms, brg_silence_window_ms(b));
    brg_dispatch_pump(b, svc);
}

static void take_back(struct brg_bridge *b, struct brg_request *r, uint64_t now_ms)
{
    switch (brg_request_lost_action(r, now_ms)) {
    case BRG_LOST_REQUEUE:
        /* The bridge took it already: it goes first, even past bridge.max_queue. */
        b->counters.requests_requeued++;
        brg_request_enqueue(r, 1);
        break;
    case BRG_LOST_TIMEOUT:
        reply_timeout(b, r);
        brg_dispatch_finish(b, r);
        break;
    case BRG_LOST_ERROR:
        reply_handler_lost(b, r);
        brg_dispatch_finish(b, r);
        break;
    case BRG_LOST_DROP:
        b->counters.drop_event_handler_lost++;
        brg_dispatch_finish(b, r);
        break;
    default:
        brg_request_free(b->reg, r);
        break;
    }
}

void brg_dispatch_drop_handler(struct brg_bridge *b, struct brg_handler *h, const char *why,
                               uint64_t *counter)
{
    struct brg_service *svc = h->service;
    struct brg_link taken;
    struct brg_link *l;
    uint64_t now_ms = mzb_now_ms();
    char hex[65];

    brg_log_every(&b->rl.dropped, MZB_LOG_INFO, BRG_INFO_INTERVAL_MS,
                  "handler %s of service \"%s\" dropped: %s; it held %zu requests",
                  brg_hex(h->id, h->id_len, hex, sizeof(hex)), svc->shown, why, h->in_flight);
    (*counter)++;

    brg_list_init(&taken);
    brg_handler_remove(b->reg, h, &taken);

    /* Newest first: each requeued one goes to the head, so the oldest ends up first in line. */
    while ((l = taken.prev) != &taken) {
        brg_list_remove(l);
        take_back(b, brg_container_of(l, struct brg_request, link), now_ms);
    }
}

void brg_dispatch_expire(struct brg_bridge *b, uint64_t now_ms)
{
    struct brg_request *r;

    while ((r = brg_registry_expired(b->reg, now_ms)) != NULL) {
        reply_timeout(b, r);
        if (r->state == BRG_REQ_INFLIGHT) {
            /* Its handler is still busy with it: free it when the late REPLY comes. */
            brg_plugin_queue_ack(b, r);
            brg_request_mark_late(b->reg, r);
        } else {
            brg_dispatch_finish(b, r);
        }
    }
}

/* Returns the reason to drop h, or NULL when it stays. */
static const char *beat(struct brg_bridge *b, struct brg_handler *h, uint64_t now_ms,
                        uint64_t **counter)
{
    if (brg_handler_expired(h, now_ms)) {
        *counter = &b->counters.handlers_dropped_silent;
        return "idle, and no message from it for heartbeat_ms * liveness";
    }
    if (brg_mdp_send_command(b, h->id, h->id_len, MDP_HEARTBEAT) != 0 && errno == EHOSTUNREACH) {
        *counter = &b->counters.handlers_dropped_unreachable;
        return "its connection is gone";
    }
    return NULL;
}

void brg_dispatch_heartbeat(struct brg_bridge *b, uint64_t now_ms, int stalled)
{
    struct brg_link *l = b->reg->handlers.next;
    struct brg_link *s;

    /* Dropping only removes the handler at hand, so the saved next link stays valid. */
    while (l != &b->reg->handlers) {
        struct brg_handler *h = brg_container_of(l, struct brg_handler, link);
        uint64_t *counter = NULL;
        const char *why;

        l = l->next;
        if (stalled) {
            brg_handler_refresh(h, now_ms, brg_silence_window_ms(b));
        }
        why = beat(b, h, now_ms, &counter);
        if (why) {
            brg_dispatch_drop_handler(b, h, why, counter);
        }
    }

    /* Requeued requests, and sends that found a full queue earlier, get their turn now. */
    for (s = b->reg->services.next; s != &b->reg->services; s = s->next) {
        struct brg_service *svc = brg_container_of(s, struct brg_service, link);

        if (svc->queued > 0 && svc->ready_count > 0) {
            brg_dispatch_pump(b, svc);
        }
    }
}
