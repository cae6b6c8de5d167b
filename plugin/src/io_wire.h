/*
 * io_wire: the MZB01 frames the plugin sends and receives on its DEALER
 * socket (docs/protocol.md, section 1). All sends are non-blocking.
 */
#ifndef MZBP_IO_WIRE_H
#define MZBP_IO_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* The most frames any message the plugin accepts has. */
#define MZBP_WIRE_MAX_FRAMES 4

/*
 * Sends a BATCH: "MZB01", 0x03 and body (len bytes of records, mzb_batch.h).
 * body is malloc'd and taken over in every case: ZeroMQ frees it after
 * sending, or this call frees it. Returns 0, EAGAIN when the socket takes
 * nothing now (no bridge connected, or its queue is full), or another errno.
 */
int mzbp_wire_send_batch(void *sock, uint8_t *body, size_t len);

/* Sends a HEARTBEAT with the instance id and the JSON counters. Returns as above. */
int mzbp_wire_send_heartbeat(void *sock, uint64_t instance, const char *json, size_t json_len);

/*
 * Receives one whole message without waiting. Up to max frames land in
 * frames (initialised by this call; the caller closes *count of them); any
 * further frames are read and dropped and *count is set to max + 1. Returns
 * 0, EAGAIN when nothing is waiting, or another errno.
 */
int mzbp_wire_recv(void *sock, zmq_msg_t *frames, int max, int *count);

/* Closes n frames. */
void mzbp_wire_close(zmq_msg_t *frames, int n);

enum mzbp_bridge_kind {
    MZBP_BRIDGE_MALFORMED = 0,
    MZBP_BRIDGE_ACK = 1,
    MZBP_BRIDGE_HEARTBEAT = 2,
    MZBP_BRIDGE_RETRY = 3,
};

/* A parsed message from the bridge; borrows from the frames it came from. */
struct mzbp_bridge_msg {
    int kind;
    const uint8_t *ids; /* ACK and RETRY: id_count ids of 8 bytes each */
    size_t id_count;
    uint64_t instance; /* HEARTBEAT: the bridge's instance id */
};

/* Parses n frames from the bridge; kind is MZBP_BRIDGE_MALFORMED when they are not valid. */
void mzbp_wire_parse_bridge(zmq_msg_t *frames, int n, struct mzbp_bridge_msg *out);

#endif
