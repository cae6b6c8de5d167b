#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "lg.h"

/* Packets read from one socket before the others get a turn. */
#define READ_BURST 256
/* Longest sleep in ppoll, so phase changes from the main thread are seen soon. */
#define MAX_WAIT_NS 5000000
/* When a publisher waits for subscribers in another thread, nothing wakes this one. */
#define CROSS_THREAD_WAIT_NS 200000

static int bytes_pending(int fd)
{
    int n = 0;

    return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/*
 * libmosquitto reads one packet per call when no QoS 1/2 flow is queued, and its errno after
 * a call also reflects the 1-byte wake-up writes it makes to an internal socketpair; so keep
 * reading while the socket itself still holds bytes.
 */
static void read_burst(struct lg_client *cl)
{
    int rc;

    for (int i = 0; i < READ_BURST; i++) {
        errno = 0;
        rc = mosquitto_loop_read(cl->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            if (atomic_load(&cl->w->run->phase) != LG_PHASE_STOP) {
                lg_client_fail(cl, "client %s: reading from the broker failed: %s", cl->id,
                               rc == MOSQ_ERR_ERRNO ? "system error" : mosquitto_strerror(rc));
            }
            return;
        }
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && !bytes_pending(cl->fd)) {
            return;
        }
    }
}

static void flush(struct lg_client *cl)
{
    int rc;

    if (!mosquitto_want_write(cl->mosq)) {
        return;
    }
    rc = mosquitto_loop_write(cl->mosq, 1);
    if (rc != MOSQ_ERR_SUCCESS && atomic_load(&cl->w->run->phase) != LG_PHASE_STOP) {
        lg_client_fail(cl, "client %s: writing to the broker failed: %s", cl->id,
                       mosquitto_strerror(rc));
    }
}

static void drive_senders(struct lg_worker *w, int64_t now)
{
    for (size_t i = 0; i < w->nclients; i++) {
        struct lg_client *cl = &w->clients[i];

        if (cl->role == LG_ROLE_PUB) {
            lg_pub_drive(cl, now);
        } else if (cl->role == LG_ROLE_RR) {
            lg_rr_drive(cl, now);
        }
    }
}

/* How long ppoll may sleep: until the next rate-limited send, or a short tick. */
static int64_t wait_ns(const struct lg_worker *w, int64_t now, int phase)
{
    const struct lg_opts *o = w->run->opts;
    int64_t wait = MAX_WAIT_NS;

    if (phase != LG_PHASE_RUN) {
        return wait;
    }
    if (o->rate == 0 && o->threads > 1 && o->mode == LG_MODE_PUBSUB) {
        return CROSS_THREAD_WAIT_NS;
    }
    for (size_t i = 0; i < w->nclients; i++) {
        const struct lg_client *cl = &w->clients[i];

        if ((cl->role == LG_ROLE_PUB || cl->role == LG_ROLE_RR) && o->rate > 0 && cl->quota > 0) {
            int64_t d = cl->next_due_ns - now;

            if (d < wait) {
                wait = d > 0 ? d : 0;
            }
        }
    }
    return wait;
}

static void fill_pollfds(struct lg_worker *w)
{
    for (size_t i = 0; i < w->nclients; i++) {
        w->pfds[i].fd = w->clients[i].fd;
        w->pfds[i].events = POLLIN;
        if (mosquitto_want_write(w->clients[i].mosq)) {
            w->pfds[i].events |= POLLOUT;
        }
        w->pfds[i].revents = 0;
    }
}

static void serve_sockets(struct lg_worker *w)
{
    for (size_t i = 0; i < w->nclients; i++) {
        struct lg_client *cl = &w->clients[i];
        short rev = w->pfds[i].revents;

        if (rev & (POLLIN | POLLHUP | POLLERR)) {
            read_burst(cl);
        }
        flush(cl);
    }
}

static void keep_alive(struct lg_worker *w, int64_t now, int64_t *last_misc)
{
    if (now - *last_misc < 1000000000) {
        return;
    }
    *last_misc = now;
    for (size_t i = 0; i < w->nclients; i++) {
        /* Sends PINGREQ when due; a dead connection shows up in the next read instead. */
        mosquitto_loop_misc(w->clients[i].mosq);
    }
}

static void run_loop(struct lg_worker *w)
{
    int64_t last_misc = lg_now_ns();
    int phase;

    while ((phase = atomic_load(&w->run->phase)) != LG_PHASE_STOP) {
        int64_t now = lg_now_ns();
        int64_t wait;
        struct timespec ts;

        if (phase == LG_PHASE_RUN || phase == LG_PHASE_DRAIN) {
            drive_senders(w, now);
        }
        fill_pollfds(w);
        wait = wait_ns(w, now, phase);
        ts.tv_sec = (time_t)(wait / 1000000000);
        ts.tv_nsec = (long)(wait % 1000000000);
        if (ppoll(w->pfds, (nfds_t)w->nclients, &ts, NULL) < 0 && errno != EINTR) {
            lg_client_fail(&w->clients[0], "ppoll failed: %s", strerror(errno));
            return;
        }
        serve_sockets(w);
        keep_alive(w, now, &last_misc);
    }
}

static void disconnect_all(struct lg_worker *w)
{
    for (size_t i = 0; i < w->nclients; i++) {
        lg_client_disconnect(&w->clients[i]);
    }
}

void *lg_worker_main(void *arg)
{
    struct lg_worker *w = arg;

    for (size_t i = 0; i < w->nclients; i++) {
        if (lg_client_connect(&w->clients[i]) != 0) {
            return NULL;
        }
    }
    run_loop(w);
    disconnect_all(w);
    return NULL;
}
