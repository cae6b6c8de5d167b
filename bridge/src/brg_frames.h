/*
 * brg_frames: receiving and sending ZeroMQ multipart messages without
 * blocking. Every call retries on EINTR.
 */
#ifndef BRG_FRAMES_H
#define BRG_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* Frames kept per message; later frames are read and discarded (total still counts them). */
#define BRG_MAX_FRAMES 12

struct brg_msg {
    zmq_msg_t frames[BRG_MAX_FRAMES];
    int count; /* frames kept */
    int total; /* frames the message had */
};

/*
 * Reads one whole message from sock without waiting. Returns 0 and fills
 * msg (the caller then calls brg_msg_close), or -1 with errno EAGAIN when
 * nothing is waiting, or another errno on failure (msg is then empty).
 */
int brg_msg_recv(void *sock, struct brg_msg *msg);

/* Closes every kept frame. */
void brg_msg_close(struct brg_msg *msg);

size_t brg_frame_size(struct brg_msg *msg, int i);
const uint8_t *brg_frame_data(struct brg_msg *msg, int i);

/* 1 when frame i exists and holds exactly the bytes of the NUL-terminated text s. */
int brg_frame_is(struct brg_msg *msg, int i, const char *s);

/* One frame to send: a zmq_msg_t that the send consumes, or else data/len copied. */
struct brg_part {
    const void *data;
    size_t len;
    zmq_msg_t *msg;
};

/*
 * Sends parts as one message without waiting. Returns 0, or -1 with errno:
 * EHOSTUNREACH (a ROUTER_MANDATORY peer is gone) or EAGAIN (its queue is
 * full) leave nothing sent. Messages in parts that were not sent are closed.
 */
int brg_send(void *sock, struct brg_part *parts, size_t n);

/* Hex of up to 32 bytes of id into out (cap >= 2*min(len,32)+1), for log lines. */
const char *brg_hex(const void *id, size_t len, char *out, size_t cap);

/*
 * A peer's text for a log line: up to cap - 1 bytes of it into out, each
 * control character (a line break could forge a log line) shown as '?'.
 */
const char *brg_printable(const void *text, size_t len, char *out, size_t cap);

#endif
