#include "brg_frames.h"

#include <errno.h>
#include <string.h>

static int recv_frame(void *sock, zmq_msg_t *frame)
{
    int rc;

    do {
        rc = zmq_msg_recv(frame, sock, ZMQ_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : 0;
}

static int has_more(zmq_msg_t *frame)
{
    return zmq_msg_more(frame);
}

/* Drains the rest of a message whose frames we do not keep. */
static int discard_rest(void *sock, struct brg_msg *msg)
{
    zmq_msg_t extra;
    int more = 1;

    while (more) {
        if (zmq_msg_init(&extra) != 0) {
            return -1;
        }
        if (recv_frame(sock, &extra) != 0) {
            zmq_msg_close(&extra);
            return -1;
        }
        msg->total++;
        more = has_more(&extra);
        zmq_msg_close(&extra);
    }
    return 0;
}

/* Receives the next frame of msg into its next slot. */
static int recv_kept(void *sock, struct brg_msg *msg)
{
    zmq_msg_t *frame = &msg->frames[msg->count];

    if (zmq_msg_init(frame) != 0) {
        return -1;
    }
    if (recv_frame(sock, frame) != 0) {
        zmq_msg_close(frame);
        return -1;
    }
    msg->count++;
    msg->total++;
    return 0;
}

int brg_msg_recv(void *sock, struct brg_msg *msg)
{
    int more = 1;
    int saved;

    msg->count = 0;
    msg->total = 0;
    while (more && msg->count < BRG_MAX_FRAMES) {
        if (recv_kept(sock, msg) != 0) {
            goto fail;
        }
        more = has_more(&msg->frames[msg->count - 1]);
    }
    if (more && discard_rest(sock, msg) != 0) {
        goto fail;
    }
    return 0;

fail:
    saved = errno;
    brg_msg_close(msg);
    errno = saved;
    return -1;
}

void brg_msg_close(struct brg_msg *msg)
{
    for (int i = 0; i < msg->count; i++) {
        zmq_msg_close(&msg->frames[i]);
    }
    msg->count = 0;
}

size_t brg_frame_size(struct brg_msg *msg, int i)
{
    return i < msg->count ? zmq_msg_size(&msg->frames[i]) : 0;
}

const uint8_t *brg_frame_data(struct brg_msg *msg, int i)
{
    return i < msg->count ? zmq_msg_data(&msg->frames[i]) : NULL;
}

int brg_frame_is(struct brg_msg *msg, int i, const char *s)
{
    size_t len = strlen(s);

    return i < msg->count && brg_frame_size(msg, i) == len &&
           (len == 0 || memcmp(brg_frame_data(msg, i), s, len) == 0);
}

static int send_part(void *sock, struct brg_part *part, int flags)
{
    int rc;

    do {
        if (part->msg) {
            rc = zmq_msg_send(part->msg, sock, flags);
        } else {
            rc = zmq_send(sock, part->data, part->len, flags);
        }
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : 0;
}

static void close_parts(struct brg_part *parts, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        /* Closed and made empty again, so the owner's later close stays harmless. */
        if (parts[i].msg && zmq_msg_close(parts[i].msg) == 0) {
            (void)zmq_msg_init(parts[i].msg);
        }
    }
}

int brg_send(void *sock, struct brg_part *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);

        if (send_part(sock, &parts[i], flags) != 0) {
            int saved = errno;

            close_parts(parts, i, n);
            errno = saved;
            return -1;
        }
    }
    return 0;
}

const char *brg_hex(const void *id, size_t len, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = id;
    size_t n = 0;

    if (cap == 0) {
        return out;
    }
    for (size_t i = 0; i < len && i < 32 && n + 2 < cap; i++) {
        out[n++] = digits[p[i] >> 4];
        out[n++] = digits[p[i] & 0xf];
    }
    out[n] = '\0';
    return out;
}

const char *brg_printable(const void *text, size_t len, char *out, size_t cap)
{
    const unsigned char *p = text;
    size_t n = 0;

    if (cap == 0) {
        return out;
    }
    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        out[n++] = p[i] < 0x20 || p[i] == 0x7f ? '?' : (char)p[i];
    }
    out[n] = '\0';
    return out;
}
