/*
 * handler_wire: MDP/0.1 worker frames on a DEALER socket. Reading keeps the
 * first frames of a message and throws the rest away, so a peer cannot make
 * the handler hold an unbounded number of frames.
 */
#ifndef HANDLER_WIRE_H
#define HANDLER_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* A REQUEST uses 7 frames; one spare shows that a peer sent more. */
#define MZBH_MAX_FRAMES 8

struct mzbh_msg {
    zmq_msg_t frames[MZBH_MAX_FRAMES];
    size_t count;   /* frames kept */
    size_t dropped; /* frames beyond MZBH_MAX_FRAMES, already closed */
};

/* Bytes of one frame to send. */
struct mzbh_part {
    const void *data;
    size_t len;
};

/*
 * Reads one whole message without waiting. Returns 0, or -1 with errno set
 * (EAGAIN when nothing is there) and nothing left to close.
 */
int mzbh_msg_recv(void *sock, struct mzbh_msg *m);

/* Closes every frame kept in m. */
void mzbh_msg_close(struct mzbh_msg *m);

/* Frame i's bytes and length; i must be below m->count. */
const uint8_t *mzbh_frame_data(struct mzbh_msg *m, size_t i);
size_t mzbh_frame_size(const struct mzbh_msg *m, size_t i);

/*
 * Returns the MDP command (0x01 to 0xff) when m starts with "", "MDPW01" and
 * a one-byte command, else -1.
 */
int mzbh_msg_command(struct mzbh_msg *m);

/*
 * Sends "", "MDPW01", cmd, then the n parts, as one message, without waiting.
 * Returns 0, or -1 with errno set (EAGAIN when the queue to the bridge is full).
 */
int mzbh_send_command(void *sock, uint8_t cmd, const struct mzbh_part *parts, size_t n);

#endif
