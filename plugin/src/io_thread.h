/*
 * io_thread: the plugin's own I/O thread and the sockets it owns.
 *
 * The broker's thread hands each dispatch over with mzbp_io_feed, one
 * non-blocking send on an inproc PAIR socket. The I/O thread forwards it to
 * the bridge on a DEALER socket (docs/protocol.md, section 1), keeps QoS 1 and
 * 2 dispatches until the bridge acknowledges them, sends one the bridge sent
 * back (RETRY) again after a backoff, resends them all to a bridge that
 * restarted or came back, and heartbeats every second with the plugin's
 * counters. It never calls a mosquitto_* function: it only writes counters,
 * which the broker's thread reads and logs.
 */
#ifndef MZBP_IO_THREAD_H
#define MZBP_IO_THREAD_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "stats.h"

/* A bridge that misses heartbeats this long is taken as gone. */
#define MZBP_BRIDGE_SILENCE_MS 3000
#define MZBP_HEARTBEAT_MS 1000
/* The longest the I/O thread waits in one poll, so a stop request is seen quickly. */
#define MZBP_POLL_MS 100
/* Messages ZeroMQ may queue toward a connected bridge before sends report EAGAIN. */
#define MZBP_DEALER_SNDHWM 10000

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
 * the metadata frame (taken over and closed in every case) and the payload
 * (copied; payload may be NULL when payload_len is 0). Returns 0, EAGAIN when
 * plugin.queue_limit dispatches are waiting already, or another errno on an
 * unexpected ZeroMQ failure. Call on the broker's thread only.
 */
int mzbp_io_feed(struct mzbp_io *io, const char *service, size_t service_len, zmq_msg_t *meta,
                 const void *payload, size_t payload_len);

#endif
