/* mzb-loadgen: MQTT load for the benchmarks (bench/README.md). Not installed. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lg.h"

#define CONNECT_TIMEOUT_NS 10000000000LL
#define STEER_TICK_NS 2000000L
/* QoS 0 loses silently: after this long without a delivery, draining stops. */
#define QOS0_IDLE_NS 1000000000LL

static volatile sig_atomic_t stop_signals;

static void on_signal(int sig)
{
    (void)sig;
    stop_signals++;
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        return -1;
    }
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

static double cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void sleep_tick(void)
{
    struct timespec ts = {0, STEER_TICK_NS};

    /* An interrupted sleep is a signal, which the next check sees. */
    nanosleep(&ts, NULL);
}

/* Client k goes to worker k % threads; pubsub lists publishers first, then subscribers. */
static int role_of(const struct lg_opts *o, int k, int *index)
{
    if (o->mode == LG_MODE_RR || o->mode == LG_MODE_ECHO) {
        *index = k;
        return o->mode == LG_MODE_RR ? LG_ROLE_RR : LG_ROLE_ECHO;
    }
    if (k < o->pubs) {
        *index = k;
        return LG_ROLE_PUB;
    }
    *index = k - o->pubs;
    return LG_ROLE_SUB;
}

static uint64_t quota_of(const struct lg_opts *o, int role, int index)
{
    int senders = o->mode == LG_MODE_PUBSUB ? o->pubs : o->clients;

    if (o->count == 0 || (role != LG_ROLE_PUB && role != LG_ROLE_RR)) {
        return UINT64_MAX;
    }
    return o->count / (uint64_t)senders + ((uint64_t)index < o->count % (uint64_t)senders);
}

static int setup_workers(struct lg_run *run, struct lg_worker *workers, int nworkers)
{
    const struct lg_opts *o = run->opts;
    size_t per = (size_t)(run->total_clients / nworkers + 1);

    for (int t = 0; t < nworkers; t++) {
        workers[t].run = run;
        workers[t].index = t;
        workers[t].clients = calloc(per, sizeof(struct lg_client));
        workers[t].pfds = calloc(per, sizeof(struct pollfd));
        if (!workers[t].clients || !workers[t].pfds) {
            return -1;
        }
    }
    for (int k = 0; k < run->total_clients; k++) {
        struct lg_worker *w = &workers[k % nworkers];
        struct lg_client *cl = &w->clients[w->nclients];
        int index;
        int role = role_of(o, k, &index);

        if (lg_client_init(cl, w, role, index) != 0) {
            lg_client_free(cl);
            return -1;
        }
        cl->quota = quota_of(o, role, index);
        if (cl->quota == 0) {
            atomic_fetch_add(&run->senders_finished, 1);
        }
        w->nclients++;
    }
    return 0;
}

static void free_workers(struct lg_worker *workers, int nworkers)
{
    for (int t = 0; t < nworkers; t++) {
        for (size_t i = 0; i < workers[t].nclients; i++) {
            lg_client_free(&workers[t].clients[i]);
        }
        free(workers[t].clients);
        free(workers[t].pfds);
    }
}

static int wait_connected(struct lg_run *run)
{
    int64_t deadline = lg_now_ns() + CONNECT_TIMEOUT_NS;

    while (atomic_load(&run->ready) < run->total_clients) {
        if (atomic_load(&run->failed) || stop_signals) {
            return -1;
        }
        if (lg_now_ns() > deadline) {
            fprintf(stderr,
                    "mzb-loadgen: only %d of %d connections were ready after 10 s; "
                    "is the broker at %s:%d up and accepting clients?\n",
                    atomic_load(&run->ready), run->total_clients, run->opts->host, run->opts->port);
            return -1;
        }
        sleep_tick();
    }
    return 0;
}

static int senders_done(const struct lg_run *run, int64_t now)
{
    const struct lg_opts *o = run->opts;

    if (stop_signals) {
        return 1;
    }
    if (o->duration_s > 0) {
        return now >= atomic_load(&run->measure_ns) + (int64_t)(o->duration_s * 1e9);
    }
    if (o->mode == LG_MODE_ECHO) {
        return 0;
    }
    return atomic_load(&run->senders_finished) >= run->senders;
}

static int drained(const struct lg_run *run, int64_t now, int64_t end)
{
    const struct lg_opts *o = run->opts;
    int64_t last_rx = atomic_load(&run->last_rx_ns);

    if (stop_signals > 1 || o->mode == LG_MODE_ECHO || now > end + (int64_t)(o->drain_s * 1e9)) {
        return 1;
    }
    if (o->mode == LG_MODE_RR) {
        return atomic_load(&run->rr_waiting) == 0;
    }
    if (lg_pubsub_complete(run)) {
        return 1;
    }
    return o->qos == 0 && o->subs > 0 && now - end > QOS0_IDLE_NS && now - last_rx > QOS0_IDLE_NS;
}

struct lg_clock {
    double cpu0;
    double cpu1;
    int64_t wall0;
    int64_t wall1;
};

static void steer(struct lg_run *run, struct lg_clock *clk)
{
    int64_t now = lg_now_ns();
    int64_t end = 0;

    clk->cpu0 = cpu_seconds();
    clk->wall0 = now;
    atomic_store(&run->measure_ns, now + (int64_t)(run->opts->warmup_s * 1e9));
    atomic_store(&run->phase, LG_PHASE_RUN);
    if (run->opts->mode == LG_MODE_ECHO) {
        /* bench/run.sh waits for this line before it sends requests */
        fprintf(stderr, "mzb-loadgen: echo-server ready on %s/#\n", run->opts->topic);
    }

    while (!atomic_load(&run->failed)) {
        now = lg_now_ns();
        if (atomic_load(&run->phase) == LG_PHASE_RUN) {
            if (senders_done(run, now)) {
                end = now;
                atomic_store(&run->end_ns, end);
                clk->cpu1 = cpu_seconds();
                clk->wall1 = now;
                atomic_store(&run->phase, LG_PHASE_DRAIN);
            }
        } else if (drained(run, now, end)) {
            break;
        }
        sleep_tick();
    }
    if (clk->wall1 == 0) {
        clk->cpu1 = cpu_seconds();
        clk->wall1 = lg_now_ns();
    }
    atomic_store(&run->phase, LG_PHASE_STOP);
}

static int start_threads(struct lg_worker *workers, int nworkers)
{
    sigset_t block;
    sigset_t old;
    int rc = 0;
    int started = 0;

    /* Signals go to the main thread, whose sleep they interrupt. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &block, &old) != 0) {
        return -1;
    }
    for (; started < nworkers; started++) {
        if (pthread_create(&workers[started].thread, NULL, lg_worker_main, &workers[started]) !=
            0) {
            rc = -1;
            break;
        }
    }
    if (pthread_sigmask(SIG_SETMASK, &old, NULL) != 0) {
        rc = -1;
    }
    return rc == 0 ? 0 : -(started + 1);
}

static void print_first_error(const struct lg_worker *workers, int nworkers)
{
    for (int t = 0; t < nworkers; t++) {
        if (workers[t].first_error[0]) {
            fprintf(stderr, "mzb-loadgen: %s\n", workers[t].first_error);
            return;
        }
    }
}

static int run_all(struct lg_run *run, struct lg_worker *workers, int nworkers)
{
    struct lg_clock clk = {0, 0, 0, 0};
    int started = nworkers;
    int ok;
    int rc = start_threads(workers, nworkers);

    if (rc < 0) {
        started = -rc - 1;
        atomic_store(&run->failed, 1);
        fprintf(stderr, "mzb-loadgen: cannot start worker threads\n");
    }
    ok = rc == 0 && wait_connected(run) == 0;
    if (ok) {
        steer(run, &clk);
    }
    atomic_store(&run->phase, LG_PHASE_STOP);
    for (int t = 0; t < started; t++) {
        pthread_join(workers[t].thread, NULL);
    }
    if (!ok || atomic_load(&run->failed)) {
        print_first_error(workers, nworkers);
        return LG_EXIT_FAILURE;
    }
    lg_report(run, workers, nworkers, clk.cpu1 - clk.cpu0, (double)(clk.wall1 - clk.wall0) / 1e9);
    return LG_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct lg_opts opts;
    struct lg_run *run = NULL;
    struct lg_worker *workers = NULL;
    int total;
    int rc = lg_opts_parse(argc, argv, &opts);

    if (rc >= 0) {
        return rc;
    }
    if (install_signals() != 0 || mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mzb-loadgen: cannot set up signals or libmosquitto\n");
        return LG_EXIT_FAILURE;
    }

    /* A worker without connections would only spin; more threads than connections help nothing. */
    total = opts.mode == LG_MODE_PUBSUB ? opts.pubs + opts.subs : opts.clients;
    if (opts.threads > total) {
        opts.threads = total;
    }
    run = calloc(1, sizeof(*run));
    workers = calloc((size_t)opts.threads, sizeof(*workers));
    rc = LG_EXIT_FAILURE;
    if (run && workers) {
        run->opts = &opts;
        run->total_clients = total;
        run->senders = opts.mode == LG_MODE_PUBSUB ? opts.pubs : opts.clients;
        atomic_store(&run->end_ns, INT64_MAX);
        atomic_store(&run->measure_ns, INT64_MAX);
        run->pubs = calloc((size_t)opts.pubs, sizeof(*run->pubs));
        if (run->pubs && setup_workers(run, workers, opts.threads) == 0) {
            rc = run_all(run, workers, opts.threads);
        } else {
            fprintf(stderr, "mzb-loadgen: out of memory setting up %d connections\n",
                    run->total_clients);
        }
        free_workers(workers, opts.threads);
        free(run->pubs);
    }
    free(workers);
    free(run);
    mosquitto_lib_cleanup();
    return rc;
}
