/*
 * mzb-loadgen: an MQTT load generator for the benchmarks. Internal header shared by its
 * files; nothing here is installed or used by the product.
 *
 * Threads: the main thread only steers the phases (connect, run, drain, stop) and prints the
 * report. Each worker thread owns a set of connections and drives them with one ppoll loop
 * over their sockets (libmosquitto's external-loop functions), so no connection is touched
 * by two threads. What workers share is in struct lg_run, with atomics.
 */
#ifndef LG_H
#define LG_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>

#include "lg_hist.h"

#define LG_EXIT_OK 0
#define LG_EXIT_FAILURE 1
#define LG_EXIT_USAGE 2

/* Every pubsub payload starts with this header, so subscribers can time and count it. */
#define LG_MAGIC 0x4c473031u /* "LG01" */
#define LG_HEADER_SIZE 24
#define LG_CORR_SIZE 12 /* rr correlation data: slot (4 bytes), sequence (8 bytes) */
#define LG_TOPIC_MAX 256

enum lg_mode { LG_MODE_PUBSUB, LG_MODE_RR, LG_MODE_ECHO };
enum lg_role { LG_ROLE_PUB, LG_ROLE_SUB, LG_ROLE_RR, LG_ROLE_ECHO };
enum lg_phase { LG_PHASE_CONNECT, LG_PHASE_RUN, LG_PHASE_DRAIN, LG_PHASE_STOP };

struct lg_opts {
    enum lg_mode mode;
    const char *host;
    int port;
    const char *topic;        /* base topic: publishers and requesters append "/<index>" */
    const char *reply_prefix; /* rr: the Response Topic is "<prefix>/<client id>/r" */
    const char *id_prefix;    /* client ids are "<prefix>-<pid>-<role><index>" */
    const char *share;        /* echo-server: shared subscription group, or NULL */
    int qos;
    int protocol; /* MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_V5 */
    size_t size;  /* payload bytes */
    int pubs;
    int subs;
    int clients;  /* rr and echo-server connections */
    int inflight; /* rr: requests outstanding per client */
    int threads;
    double rate; /* messages or requests per second over all clients; 0 saturates */
    double duration_s;
    double warmup_s;
    double drain_s;
    uint64_t count; /* messages or requests in all; 0 means run for duration_s */
    int window;     /* pubsub: messages per publisher not yet seen by every subscriber */
    int timeout_ms; /* rr: a request unanswered this long is counted and sent again */
    int keepalive;
};

/* What one publisher shares with the subscribers (in any thread) and the main thread. */
struct lg_pub_shared {
    _Atomic uint64_t sent;
    _Atomic uint64_t delivered;   /* receipts at subscribers, all subscribers summed */
    _Atomic uint64_t written_off; /* receipts given up on so a lossy run cannot stall */
    _Atomic uint64_t unacked;     /* handed to libmosquitto, not yet written (QoS 0) or acked */
};

struct lg_run {
    const struct lg_opts *opts;
    _Atomic int phase;
    _Atomic int ready;  /* connections connected (and subscribed when they subscribe) */
    _Atomic int failed; /* a connection failed; the run stops */
    int total_clients;
    _Atomic int64_t measure_ns; /* start of the run phase plus the warm-up */
    _Atomic int64_t end_ns;     /* end of the run phase; INT64_MAX until then */
    _Atomic int64_t last_rx_ns;
    _Atomic uint64_t rr_waiting;  /* rr requests sent and not yet answered or timed out */
    int senders;                  /* publishers or rr clients */
    _Atomic int senders_finished; /* senders that used up their share of --count */
    struct lg_pub_shared *pubs;
};

struct lg_counters {
    uint64_t sent;
    uint64_t sent_in_window;
    uint64_t received;
    uint64_t received_in_window;
    uint64_t bytes_in_window;
    uint64_t dups;
    uint64_t gaps;
    uint64_t errors;       /* rr: replies with an mzb-error user property */
    uint64_t timeouts;     /* rr: requests unanswered after --timeout */
    uint64_t strays;       /* messages that were not ours or came too late */
    uint64_t served;       /* echo-server: requests answered */
    uint64_t unanswerable; /* echo-server: requests without a Response Topic */
};

struct lg_slot {
    int waiting;
    uint64_t seq;
    int64_t sent_ns;
};

struct lg_worker;

struct lg_client {
    struct mosquitto *mosq;
    struct lg_worker *w;
    enum lg_role role;
    int index; /* among the clients of its role */
    int fd;
    int connected;
    int ready;
    char id[64];
    char topic[LG_TOPIC_MAX];       /* what it publishes to, or subscribes to */
    char reply_topic[LG_TOPIC_MAX]; /* rr: its Response Topic */
    int64_t next_due_ns;            /* rate-limited sending */
    uint64_t seq;
    uint64_t quota;           /* messages it may still send; UINT64_MAX when unbounded */
    int64_t stalled_since_ns; /* publisher: since when its window has been full */
    int64_t last_scan_ns;     /* rr: last look for expired requests */
    uint64_t *expect;         /* subscriber: next sequence number per publisher */
    struct lg_slot *slots;    /* rr: one per request in flight */
    unsigned char *payload;
};

struct lg_worker {
    struct lg_run *run;
    int index;
    struct lg_client *clients;
    size_t nclients;
    struct pollfd *pfds;
    struct lg_hist hist;
    struct lg_counters c;
    char first_error[200];
    pthread_t thread;
};

/* lg_opts.c: parses argv into *o. Returns -1 to go on, or the exit code to return now. */
int lg_opts_parse(int argc, char **argv, struct lg_opts *o);

/* lg_time.c */
int64_t lg_now_ns(void);

/* Called by a sender whose share of --count is used up: lowers its quota, counts it once. */
void lg_quota_take(struct lg_client *cl);

/* lg_client.c: creates, connects and frees connections; sets their callbacks. */
int lg_client_init(struct lg_client *cl, struct lg_worker *w, enum lg_role role, int index);
int lg_client_connect(struct lg_client *cl);
void lg_client_disconnect(struct lg_client *cl);
void lg_client_free(struct lg_client *cl);
void lg_client_fail(struct lg_client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* lg_worker.c: the per-thread poll loop. */
void *lg_worker_main(void *arg);

/* lg_pubsub.c */
void lg_pub_drive(struct lg_client *cl, int64_t now);
void lg_pub_on_publish(struct lg_client *cl);
void lg_sub_on_message(struct lg_client *cl, const struct mosquitto_message *msg, int64_t now);
int lg_pubsub_complete(const struct lg_run *run);

/* lg_rr.c */
void lg_rr_drive(struct lg_client *cl, int64_t now);
void lg_rr_on_message(struct lg_client *cl, const struct mosquitto_message *msg,
                      const mosquitto_property *props, int64_t now);

/* lg_echo.c */
void lg_echo_on_message(struct lg_client *cl, const struct mosquitto_message *msg,
                        const mosquitto_property *props);

/* lg_report.c: the one key=value line on stdout, and the same in words on stderr. */
void lg_report(const struct lg_run *run, struct lg_worker *workers, int nworkers, double cpu_s,
               double wall_s);

#endif
