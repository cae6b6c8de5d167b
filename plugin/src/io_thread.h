/*
 * io_thread: the plugin's own I/O thread and the sockets it owns.
 *
 * The broker's thread appends each dispatch to a shared batch (handoff.h)
 * and wakes the I/O thread at most once per coalescing time while traffic
 * flows (see MZBP_COALESCE_MIN_US): at the broker's TICK, which follows every pass of its event
 * loop, or at once when the batch is large or the TICKs stopped coming. An idle I/O thread is woken
 * at once, so a lone message waits for nothing. The I/O thread also takes what waits on its own
 * every MZBP_SWEEP_MS, so no message depends on a TICK that never comes.
 *
 * The I/O thread sends each batch to the bridge as one BATCH message on a
 * DEALER socket (docs/protocol.md, section 1), keeps QoS 1 and 2 dispatches
 * until the bridge acknowledges them, sends one the bridge sent back (RETRY)
 * again after a backoff, resends them all to a bridge that restarted or came
 * back, and heartbeats every second with the plugin's counters. It never
 * calls a mosquitto_* function: it only writes counters, which the broker's
 * thread reads and logs.
 */
#ifndef MZBP_IO_THREAD_H
#define MZBP_IO_THREAD_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "mzb_meta.h"
#include "stats.h"

/* A bridge that misses heartbeats this long is taken as gone. */
#define MZBP_BRIDGE_SILENCE_MS 3000
#define MZBP_HEARTBEAT_MS 1000
/* The longest the I/O thread waits in one poll, so a stop request is seen quickly. */
#define MZBP_POLL_MS 100
/* BATCH messages ZeroMQ may queue toward a connected bridge before sends report EAGAIN. */
#define MZBP_DEALER_SNDHWM 1000
/*
 * While messages flow, the I/O thread is woken at most once per coalescing
 * time, which follows the rate of dispatches: 1 us per 50 dispatches/s,
 * between these bounds (microseconds). Every wake-up costs each thread and
 * process on the way to the handler a context switch (tens of microseconds
 * on a virtual machine), so under load fewer, larger batches keep the CPU for
 * the broker; at a low rate a dispatch waits at most the lower bound...
 */
#define MZBP_COALESCE_MIN_US 100
#define MZBP_COALESCE_MAX_US 1000
#define MZBP_COALESCE_RATE_PER_US 50
/* ...or when this many records or bytes wait. */
#define MZBP_WAKE_RECORDS 256
#define MZBP_WAKE_BYTES 262144
/* No TICK for this long: the broker does not send them (per_listener_settings); wake per message.
 */
#define MZBP_TICK_STALE_US 250000
/* While messages flow, what waits is taken at the latest this long after the last look... */
#define MZBP_SWEEP_MS 1
/* ...and they flow while records were taken within this time. */
#define MZBP_LINGER_MS 2
/* Held messages sent again in one BATCH, at most. */
#define MZBP_RESEND_RECORDS 64

struct mzbp_io_settings {
    const char *endpoint; /* bridge.plugin_endpoint; copied */
    uint32_t queue_limit; /* plugin.queue_limit: dispatches waiting for the I/O thread */
    uint32_t max_unacked; /* plugin.max_unacked; 0: QoS 1/2 are sent once like QoS 0 */
    uint64_t instance;    /* this plugin load's instance id, sent in every HEARTBEAT */
};

/* What failed in mzbp_io_start, for one log line. */
struct mzbp_io_error {
    char text[512];
};

struct mzbp_io;

/*
 * Creates the ZeroMQ context and sockets, connects to the bridge's endpoint
 * (connecting never waits for the bridge) and starts the I/O thread. stats
 * must outlive the io. Returns 0 and sets *out, or -1 with err filled and
 * nothing left behind. Call on the broker's thread.
 */
int mzbp_io_start(const struct mzbp_io_settings *settings, struct mzbp_stats *stats,
                  struct mzbp_io **out, struct mzbp_io_error *err);

/*
 * Stops the thread, closes every socket without lingering (unsent and
 * unacknowledged messages are dropped), terminates the context, frees the io
 * and sets *io to NULL. Returns within about MZBP_POLL_MS even when the bridge
 * is down. Accepts NULL and a pointer to NULL. Call on the broker's thread.
 */
void mzbp_io_stop(struct mzbp_io **io);

/*
 * Hands one dispatch to the I/O thread without blocking: the service name,
 * the metadata and a copy of the payload (payload may be NULL when
 * payload_len is 0). Returns 0, EAGAIN when plugin.queue_limit dispatches are
 * waiting already, or another errno (EMSGSIZE, ENOMEM). Call on the broker's
 * thread only.
 */
int mzbp_io_feed(struct mzbp_io *io, const char *service, size_t service_len,
                 const struct mzb_meta *meta, const void *payload, size_t payload_len);

/*
 * The broker's TICK, at now (mzb_now_us): wakes the I/O thread for what
 * waits, unless it was woken just now.
 */
void mzbp_io_tick(struct mzbp_io *io, uint64_t now);

#endif
