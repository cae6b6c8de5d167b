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

struct fake_bridge {
    void *router;
    char endpoint[256];            /* where it listens, as ZeroMQ reports it */
    uint64_t last_plugin_instance; /* from the last plugin HEARTBEAT */
};

/* One message from the plugin, without its routing id. */
struct received {
    zmq_msg_t id;
    int count;
    zmq_msg_t frames[6];
};

void fake_bridge_bind(struct fake_bridge *fb, void *zctx, const char *endpoint);
void fake_bridge_close(struct fake_bridge *fb);

/* Receives one message; returns 0 on timeout. */
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
