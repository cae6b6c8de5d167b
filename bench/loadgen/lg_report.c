#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg.h"

struct totals {
    struct lg_counters c;
    struct lg_hist hist;
    uint64_t sent_all; /* pubsub: what the subscribers should have received, all of them */
};

static void add_counters(struct lg_counters *dst, const struct lg_counters *src)
{
    dst->sent += src->sent;
    dst->sent_in_window += src->sent_in_window;
    dst->received += src->received;
    dst->received_in_window += src->received_in_window;
    dst->bytes_in_window += src->bytes_in_window;
    dst->dups += src->dups;
    dst->gaps += src->gaps;
    dst->errors += src->errors;
    dst->timeouts += src->timeouts;
    dst->strays += src->strays;
    dst->served += src->served;
    dst->unanswerable += src->unanswerable;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static double window_s(const struct lg_run *run)
{
    int64_t end = atomic_load(&run->end_ns);
    double w = (double)(end - atomic_load(&run->measure_ns)) / 1e9;

    return w > 0 ? w : 0;
}

static double per_s(uint64_t n, double seconds)
{
    return seconds > 0 ? (double)n / seconds : 0;
}

static void print_latency(const char *prefix, const struct lg_hist *h)
{
    printf(" %s_p50_us=%.1f %s_p90_us=%.1f %s_p99_us=%.1f %s_max_us=%.1f %s_count=%llu", prefix,
           us(lg_hist_quantile(h, 0.50)), prefix, us(lg_hist_quantile(h, 0.90)), prefix,
           us(lg_hist_quantile(h, 0.99)), prefix, us(lg_hist_quantile(h, 1.0)), prefix,
           (unsigned long long)h->count);
}

/* Says where the messages that never arrived were held, for a run that did not drain. */
static void explain_loss(const struct lg_run *run)
{
    const struct lg_opts *o = run->opts;

    for (int i = 0; i < o->pubs; i++) {
        const struct lg_pub_shared *sh = &run->pubs[i];
        uint64_t sent = atomic_load(&sh->sent);
        uint64_t delivered = atomic_load(&sh->delivered);

        if (atomic_load(&sh->unacked) != 0 || delivered < sent * (uint64_t)o->subs) {
            fprintf(stderr,
                    "publisher %d: sent %llu, receipts %llu of %llu, %llu still unacknowledged "
                    "by the broker\n",
                    i, (unsigned long long)sent, (unsigned long long)delivered,
                    (unsigned long long)(sent * (uint64_t)o->subs),
                    (unsigned long long)atomic_load(&sh->unacked));
        }
    }
}

static void report_pubsub(const struct lg_run *run, const struct totals *t, double w)
{
    const struct lg_opts *o = run->opts;
    uint64_t unique = t->c.received - t->c.dups;
    uint64_t lost = t->sent_all > unique ? t->sent_all - unique : 0;
    double rate = per_s(t->c.received_in_window, w);

    printf(" pubs=%d subs=%d window=%d sent=%llu send_rate=%.0f delivered=%llu rate=%.0f "
           "mb_s=%.2f lost=%llu dups=%llu strays=%llu errors=%llu",
           o->pubs, o->subs, o->window, (unsigned long long)t->c.sent,
           per_s(t->c.sent_in_window, w), (unsigned long long)unique, rate,
           per_s(t->c.bytes_in_window, w) / 1e6, (unsigned long long)lost,
           (unsigned long long)t->c.dups, (unsigned long long)t->c.strays,
           (unsigned long long)t->c.errors);
    print_latency("lat", &t->hist);
    fprintf(stderr,
            "pubsub: %d publishers -> %d subscribers, QoS %d, %zu B: sent %.0f msg/s, "
            "delivered %.0f msg/s at subscribers, %llu lost, latency p50 %.1f us p99 %.1f us "
            "max %.1f us\n",
            o->pubs, o->subs, o->qos, o->size, per_s(t->c.sent_in_window, w), rate,
            (unsigned long long)lost, us(lg_hist_quantile(&t->hist, 0.5)),
            us(lg_hist_quantile(&t->hist, 0.99)), us(t->hist.max));
    if (lost > 0) {
        explain_loss(run);
    }
}

static void report_rr(const struct lg_run *run, const struct totals *t, double w)
{
    const struct lg_opts *o = run->opts;
    uint64_t unanswered = atomic_load(&run->rr_waiting);
    double rate = per_s(t->c.received_in_window, w);

    printf(" clients=%d inflight=%d sent=%llu replies=%llu rate=%.0f errors=%llu "
           "timeouts=%llu unanswered=%llu strays=%llu",
           o->clients, o->inflight, (unsigned long long)t->c.sent,
           (unsigned long long)t->c.received, rate, (unsigned long long)t->c.errors,
           (unsigned long long)t->c.timeouts, (unsigned long long)unanswered,
           (unsigned long long)t->c.strays);
    print_latency("rtt", &t->hist);
    fprintf(stderr,
            "rr: %d clients x %d in flight, QoS %d, %zu B: %.0f requests/s answered, "
            "%llu errors, %llu timeouts, round trip p50 %.1f us p99 %.1f us max %.1f us\n",
            o->clients, o->inflight, o->qos, o->size, rate, (unsigned long long)t->c.errors,
            (unsigned long long)t->c.timeouts, us(lg_hist_quantile(&t->hist, 0.5)),
            us(lg_hist_quantile(&t->hist, 0.99)), us(t->hist.max));
}

static void report_echo(const struct lg_run *run, const struct totals *t, double wall_s)
{
    printf(" clients=%d served=%llu unanswerable=%llu", run->opts->clients,
           (unsigned long long)t->c.served, (unsigned long long)t->c.unanswerable);
    fprintf(stderr,
            "echo-server: answered %llu requests in %.1f s (%llu without Response "
            "Topic)\n",
            (unsigned long long)t->c.served, wall_s, (unsigned long long)t->c.unanswerable);
}

static void sum_workers(const struct lg_run *run, struct lg_worker *workers, int nworkers,
                        struct totals *t)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < nworkers; i++) {
        add_counters(&t->c, &workers[i].c);
        lg_hist_merge(&t->hist, &workers[i].hist);
    }
    for (int i = 0; i < run->opts->pubs; i++) {
        t->sent_all += atomic_load(&run->pubs[i].sent) * (uint64_t)run->opts->subs;
    }
}

void lg_report(const struct lg_run *run, struct lg_worker *workers, int nworkers, double cpu_s,
               double wall_s)
{
    static const char *const names[] = {"pubsub", "rr", "echo-server"};
    const struct lg_opts *o = run->opts;
    struct totals *t = calloc(1, sizeof(*t));
    double w = o->mode == LG_MODE_ECHO ? wall_s : window_s(run);

    if (!t) {
        fprintf(stderr, "mzb-loadgen: out of memory writing the report\n");
        return;
    }
    sum_workers(run, workers, nworkers, t);
    printf("mode=%s qos=%d size=%zu protocol=%s threads=%d rate_target=%.0f seconds=%.3f",
           names[o->mode], o->qos, o->size, o->protocol == MQTT_PROTOCOL_V5 ? "5" : "311",
           o->threads, o->rate, w);
    if (o->mode == LG_MODE_PUBSUB) {
        report_pubsub(run, t, w);
    } else if (o->mode == LG_MODE_RR) {
        report_rr(run, t, w);
    } else {
        report_echo(run, t, wall_s);
    }
    printf(" cpu_pct=%.1f\n", wall_s > 0 ? 100.0 * cpu_s / wall_s : 0);
    fprintf(stderr, "loadgen CPU: %.1f%% of one core\n", wall_s > 0 ? 100.0 * cpu_s / wall_s : 0);
    fflush(stdout);
    free(t);
}
