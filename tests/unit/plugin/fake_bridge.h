/*
 * The bridge's side of MZB01 (docs/protocol.md, section 1) for unit tests: a
 * ROUTER socket that receives what the plugin's I/O thread sends and answers
 * as the tests tell it to. Failures are cmocka assertions.
 */
#ifndef MZBP_TEST_FAKE_BRIDGE_H
#define MZBP_TEST_FAKE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "stats.h"

#define FAKE_WAIT_MS 5000

#define FAKE_QUEUE_MAX 4096

/* One message from the plugin, without its routing id. */
struct received {
    zmq_msg_t id;
    int count;
    zmq_msg_t frames[6];
};

/*
 * The plugin sends dispatches in BATCH messages; the fake hands each record
 * to the test as if it had come alone, as a five-frame DISPATCH, and counts
 * the BATCH messages it unpacked.
 */
struct fake_bridge {
    void *router;
    char endpoint[256];            /* where it listens, as ZeroMQ reports it */
    uint64_t last_plugin_instance; /* from the last plugin HEARTBEAT */
    uint64_t batches;              /* BATCH messages received */
    uint64_t records;              /* records in them */
    struct received *queue;        /* unpacked records not yet handed out */
    size_t queue_head;
    size_t queue_count;
};

void fake_bridge_bind(struct fake_bridge *fb, void *zctx, const char *endpoint);
void fake_bridge_close(struct fake_bridge *fb);

/* Receives one message (a BATCH record counts as one DISPATCH); returns 0 on timeout. */
int fake_bridge_recv(struct fake_bridge *fb, struct received *r, long timeout_ms);
void received_close(struct received *r);
uint8_t received_command(struct received *r);
uint64_t received_dispatch_id(struct received *r);

/* Sends "MZB01", cmd, body to the plugin that sent from. */
void fake_bridge_send(struct fake_bridge *fb, struct received *from, uint8_t cmd, const void *body,
                      size_t len);
void fake_bridge_ack(struct fake_bridge *fb, struct received *from, uint64_t id);
void fake_bridge_retry(struct fake_bridge *fb, struct received *from, uint64_t id);

/*
 * Waits for the next DISPATCH, answering HEARTBEATs with instance on the way
 * (0: leave them unanswered). Returns 0 when none came within FAKE_WAIT_MS.
 */
int fake_bridge_next_dispatch(struct fake_bridge *fb, struct received *r, uint64_t instance);

/* Answers HEARTBEATs for ms; returns 1 when no DISPATCH came meanwhile. */
int fake_bridge_quiet(struct fake_bridge *fb, long ms, uint64_t instance);

/* Answers HEARTBEATs with instance until the plugin has counted want of them. */
void fake_bridge_serve_heartbeats(struct fake_bridge *fb, struct mzbp_stats *stats,
                                  uint64_t instance, uint64_t want);

/* Waits up to FAKE_WAIT_MS for a counter to reach want; returns 1 when it did. */
int wait_stat(atomic_uint_fast64_t *counter, uint64_t want);

#endif
