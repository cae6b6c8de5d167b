/*
 * stats: the plugin's counters. Each is a C11 atomic, written by the thread
 * that owns the event (the broker's thread or the I/O thread) and read by
 * both: the I/O thread reports them to the bridge in its HEARTBEAT, the
 * broker's thread logs them on TICK.
 */
#ifndef MZBP_STATS_H
#define MZBP_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* X(name): every counter, in the order the JSON lists them. */
#define MZBP_STATS_FIELDS(X)                                                                       \
    X(messages_seen)         /* MESSAGE callbacks */                                               \
    X(messages_routed)       /* publishes that matched at least one route */                       \
    X(dispatched)            /* dispatches handed to the I/O thread (one per service) */           \
    X(queue_full)            /* dispatches dropped: plugin.queue_limit reached */                  \
    X(refused_overload)      /* publishes refused to the client (on_overload "refuse") */          \
    X(reply_topic_refused)   /* request dispatches refused for their reply destination */          \
    X(qos2_repeats_dropped)  /* QoS 2 publishes not dispatched again */                            \
    X(qos2_dedup_evicted)    /* repeat-table entries overwritten before their window ended */      \
    X(user_props_dropped)    /* user properties beyond the 64 the metadata carries */              \
    X(properties_unreadable) /* property lists with an entry that is not a property */             \
    X(handoff_errors)        /* dispatches lost to an unexpected ZeroMQ or encoding error */       \
    X(sent)                  /* DISPATCH messages sent to the bridge (first sends) */              \
    X(resent)                /* DISPATCH messages sent again */                                    \
    X(dropped_no_bridge)     /* dispatches no bridge took (QoS 0; all if max_unacked is 0) */      \
    X(dropped_bridge_busy)   /* the same, with the bridge up but its connection's queue full */    \
    X(unacked_full_dropped)  /* QoS 1/2 dispatches dropped: plugin.max_unacked reached */          \
    X(acked)                 /* messages the bridge acknowledged */                                \
    X(ack_unknown)           /* acknowledgements of ids not held */                                \
    X(retries_received)      /* ids in RETRYs that deferred a held message */                      \
    X(retry_unknown)         /* ids in RETRYs of messages not held */                              \
    X(bridge_malformed)      /* messages from the bridge that could not be parsed */               \
    X(bridge_heartbeats)     /* HEARTBEATs received from the bridge */                             \
    X(bridge_restarts)       /* a new bridge instance was seen */                                  \
    X(bridge_disconnects)    /* connections to the bridge that broke */                            \
    X(bridge_returns)        /* the same bridge answered again after a silence */                  \
    X(send_errors)           /* sends to the bridge that failed other than by a full queue */      \
    X(unacked)               /* gauge: QoS 1/2 messages held until acknowledged */                 \
    X(unsent)                /* gauge: held messages not yet (re)sent, deferred ones included */   \
    X(deferred)              /* gauge: held messages waiting for their time after a RETRY */       \
    X(bridge_alive)          /* gauge: 1 while the bridge answers heartbeats */

#define MZBP_STATS_DECLARE(name) atomic_uint_fast64_t name;

struct mzbp_stats {
    MZBP_STATS_FIELDS(MZBP_STATS_DECLARE)
    atomic_uint_fast64_t bridge_instance; /* last bridge instance seen, 0 before the first */
    atomic_uint_fast64_t last_requeue;    /* messages queued again at the last loss of a bridge */
};

/* Adds n to a counter (relaxed: counters order nothing). */
static inline void mzbp_stat_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/*
 * Adds 1 to a counter that only one thread ever writes: a plain load and
 * store, without the locked instruction mzbp_stat_add costs on every publish.
 */
static inline void mzbp_stat_bump(atomic_uint_fast64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void mzbp_stat_set(atomic_uint_fast64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t mzbp_stat_get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Sets every counter to zero. */
void mzbp_stats_init(struct mzbp_stats *s);

/*
 * Writes the counters as one JSON object into buf (cap bytes, NUL-terminated).
 * Returns the length written, or 0 when buf is too small.
 */
size_t mzbp_stats_json(struct mzbp_stats *s, char *buf, size_t cap);

#endif
