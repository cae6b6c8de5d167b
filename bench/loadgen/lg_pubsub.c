#include <string.h>

#include "lg.h"

/* Publishes per publisher per loop turn, so subscribers in the same thread get their turn. */
#define PUB_BURST 64
/* A publisher behind its rate by more than this restarts its schedule instead of bursting. */
#define MAX_LAG_NS 100000000
/* Subscribers silent this long while a publisher's window is full: count the rest as lost. */
#define STALL_NS 1000000000

struct lg_header {
    uint32_t magic;
    uint32_t pub;
    uint64_t seq;
    int64_t sent_ns;
};

static int in_window(const struct lg_run *run, int64_t t)
{
    return t >= atomic_load_explicit(&run->measure_ns, memory_order_relaxed) &&
           t <= atomic_load_explicit(&run->end_ns, memory_order_relaxed);
}

/*
 * The window bounds what one publisher has in the system: messages libmosquitto still holds
 * (unwritten at QoS 0, unacknowledged at QoS 1/2), and, with subscribers, messages not yet
 * received by all of them. Saturating runs then measure throughput without growing the
 * broker's queues until it drops.
 */
static int window_open(struct lg_client *cl, int64_t now)
{
    const struct lg_opts *o = cl->w->run->opts;
    struct lg_pub_shared *sh = &cl->w->run->pubs[cl->index];
    uint64_t subs = (uint64_t)o->subs;
    uint64_t accounted;
    uint64_t expected;

    if (atomic_load_explicit(&sh->unacked, memory_order_relaxed) >= (uint64_t)o->window) {
        return 0;
    }
    if (subs == 0) {
        return 1;
    }
    expected = atomic_load_explicit(&sh->sent, memory_order_relaxed) * subs;
    accounted = atomic_load_explicit(&sh->delivered, memory_order_relaxed) +
                atomic_load_explicit(&sh->written_off, memory_order_relaxed);
    if (expected < accounted + (uint64_t)o->window * subs) {
        cl->stalled_since_ns = 0;
        return 1;
    }
    if (cl->stalled_since_ns == 0) {
        cl->stalled_since_ns = now;
    } else if (now - cl->stalled_since_ns > STALL_NS &&
               now - atomic_load_explicit(&cl->w->run->last_rx_ns, memory_order_relaxed) >
                   STALL_NS) {
        atomic_fetch_add(&sh->written_off, expected - accounted);
        cl->stalled_since_ns = 0;
        return 1;
    }
    return 0;
}

static int publish_one(struct lg_client *cl)
{
    struct lg_run *run = cl->w->run;
    const struct lg_opts *o = run->opts;
    struct lg_pub_shared *sh = &run->pubs[cl->index];
    struct lg_header h = {LG_MAGIC, (uint32_t)cl->index, cl->seq, lg_now_ns()};
    int rc;

    memcpy(cl->payload, &h, sizeof(h));

    /* Counted first: QoS 0 completes inside the call, and a subscriber may see it at once. */
    atomic_fetch_add_explicit(&sh->sent, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->unacked, 1, memory_order_relaxed);
    rc = mosquitto_publish_v5(cl->mosq, NULL, cl->topic, (int)o->size, cl->payload, o->qos, false,
                              NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        lg_client_fail(cl, "client %s cannot publish to %s: %s", cl->id, cl->topic,
                       mosquitto_strerror(rc));
        return -1;
    }

    cl->seq++;
    cl->w->c.sent++;
    if (in_window(run, h.sent_ns)) {
        cl->w->c.sent_in_window++;
    }
    return 0;
}

static void advance_schedule(struct lg_client *cl, int64_t now)
{
    const struct lg_opts *o = cl->w->run->opts;
    int64_t interval = (int64_t)(1e9 * o->pubs / o->rate);

    cl->next_due_ns += interval > 0 ? interval : 1;
    if (cl->next_due_ns < now - MAX_LAG_NS) {
        cl->next_due_ns = now;
    }
}

void lg_pub_drive(struct lg_client *cl, int64_t now)
{
    struct lg_run *run = cl->w->run;
    const struct lg_opts *o = run->opts;

    if (atomic_load(&run->phase) != LG_PHASE_RUN || !cl->ready) {
        return;
    }
    if (cl->next_due_ns == 0) {
        cl->next_due_ns = now;
    }
    for (int i = 0; i < PUB_BURST; i++) {
        if (cl->quota == 0) {
            return;
        }
        if ((o->rate > 0 && now < cl->next_due_ns) || !window_open(cl, now)) {
            return;
        }
        if (publish_one(cl) != 0) {
            return;
        }
        lg_quota_take(cl);
        if (o->rate > 0) {
            advance_schedule(cl, now);
        }
    }
}

void lg_pub_on_publish(struct lg_client *cl)
{
    atomic_fetch_sub_explicit(&cl->w->run->pubs[cl->index].unacked, 1, memory_order_relaxed);
}

static void count_receipt(struct lg_client *cl, const struct lg_header *h, size_t len, int64_t now)
{
    struct lg_run *run = cl->w->run;
    struct lg_counters *c = &cl->w->c;
    uint64_t expect = cl->expect[h->pub];
    uint64_t accounted = 1;

    c->received++;
    if (h->seq < expect) {
        c->dups++;
        return;
    }
    if (h->seq > expect) {
        /* Topics keep their order, so a skipped number is a message that will not come. */
        c->gaps += h->seq - expect;
        accounted += h->seq - expect;
    }
    cl->expect[h->pub] = h->seq + 1;
    atomic_fetch_add_explicit(&run->pubs[h->pub].delivered, accounted, memory_order_relaxed);

    if (in_window(run, now)) {
        c->received_in_window++;
        c->bytes_in_window += len;
    }
    if (in_window(run, h->sent_ns)) {
        lg_hist_add(&cl->w->hist, (uint64_t)(now - h->sent_ns));
    }
}

void lg_sub_on_message(struct lg_client *cl, const struct mosquitto_message *msg, int64_t now)
{
    struct lg_header h;

    if (msg->payloadlen < (int)sizeof(h)) {
        cl->w->c.strays++;
        return;
    }
    memcpy(&h, msg->payload, sizeof(h));
    if (h.magic != LG_MAGIC || h.pub >= (uint32_t)cl->w->run->opts->pubs) {
        cl->w->c.strays++;
        return;
    }
    count_receipt(cl, &h, (size_t)msg->payloadlen, now);
}

int lg_pubsub_complete(const struct lg_run *run)
{
    const struct lg_opts *o = run->opts;

    for (int i = 0; i < o->pubs; i++) {
        struct lg_pub_shared *sh = &run->pubs[i];
        uint64_t expected = atomic_load(&sh->sent) * (uint64_t)o->subs;

        if (atomic_load(&sh->unacked) != 0 ||
            atomic_load(&sh->delivered) + atomic_load(&sh->written_off) < expected) {
            return 0;
        }
    }
    return 1;
}
