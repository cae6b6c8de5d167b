#include "io_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mzb_meta.h"
#include "mzb_proto.h"

#define PROTO_LEN (sizeof(MZB_PROTO_ID) - 1)

/* The protocol id and command frames that open every message. */
static int send_preamble(void *sock, uint8_t cmd)
{
    int rc;

    /* A signal can interrupt ZeroMQ's command processing even in a non-blocking send. */
    do {
        rc = zmq_send(sock, MZB_PROTO_ID, PROTO_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        return errno;
    }
    /* Once a first frame is queued ZeroMQ takes the rest of the message without EAGAIN. */
    if (zmq_send(sock, &cmd, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return errno;
    }
    return 0;
}

static void free_body(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int mzbp_wire_send_batch(void *sock, uint8_t *body, size_t len)
{
    zmq_msg_t frame;
    int rc = send_preamble(sock, MZB_CMD_BATCH);

    if (rc != 0) {
        free(body);
        return rc;
    }
    /* The body goes without a copy; ZeroMQ frees it once it is written out. */
    if (zmq_msg_init_data(&frame, body, len, free_body, NULL) != 0) {
        rc = errno;
        free(body);
        return rc;
    }
    if (zmq_msg_send(&frame, sock, ZMQ_DONTWAIT) < 0) {
        rc = errno;
        (void)zmq_msg_close(&frame);
        return rc;
    }
    return 0;
}

int mzbp_wire_send_heartbeat(void *sock, uint64_t instance, const char *json, size_t json_len)
{
    uint8_t id[8];
    int rc = send_preamble(sock, MZB_CMD_HEARTBEAT);

    if (rc != 0) {
        return rc;
    }
    mzb_put_u64(id, instance);
    if (zmq_send(sock, id, sizeof(id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return errno;
    }
    if (zmq_send(sock, json, json_len, ZMQ_DONTWAIT) < 0) {
        return errno;
    }
    return 0;
}

void mzbp_wire_close(zmq_msg_t *frames, int n)
{
    for (int i = 0; i < n; i++) {
        (void)zmq_msg_close(&frames[i]);
    }
}

static int more_follows(void *sock)
{
    int more = 0;
    size_t len = sizeof(more);

    return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more;
}

/* Reads and drops the rest of a message longer than the caller wanted. */
static int drop_rest(void *sock)
{
    zmq_msg_t junk;
    int rc = 0;

    while (rc == 0 && more_follows(sock)) {
        zmq_msg_init(&junk);
        rc = zmq_msg_recv(&junk, sock, ZMQ_DONTWAIT) < 0 ? errno : 0;
        (void)zmq_msg_close(&junk);
    }
    return rc;
}

int mzbp_wire_recv(void *sock, zmq_msg_t *frames, int max, int *count)
{
    int n = 0;

    *count = 0;
    do {
        zmq_msg_init(&frames[n]);
        if (zmq_msg_recv(&frames[n], sock, ZMQ_DONTWAIT) < 0) {
            int rc = errno;

            mzbp_wire_close(frames, n + 1);
            return rc;
        }
        n++;
    } while (n < max && zmq_msg_more(&frames[n - 1]));

    *count = n;
    if (zmq_msg_more(&frames[n - 1])) {
        *count = max + 1;
        return drop_rest(sock);
    }
    return 0;
}

static int frame_is(zmq_msg_t *frame, const void *bytes, size_t len)
{
    return zmq_msg_size(frame) == len && memcmp(zmq_msg_data(frame), bytes, len) == 0;
}

/* ACK and RETRY carry one or more 8-byte ids in one frame; anything else is malformed. */
static void parse_ids(const uint8_t *body, size_t len, int kind, struct mzbp_bridge_msg *out)
{
    if (len > 0 && len % 8 == 0) {
        out->kind = kind;
        out->ids = body;
        out->id_count = len / 8;
    }
}

void mzbp_wire_parse_bridge(zmq_msg_t *frames, int n, struct mzbp_bridge_msg *out)
{
    const uint8_t *body;
    size_t body_len;

    memset(out, 0, sizeof(*out));
    if (n != 3 || !frame_is(&frames[0], MZB_PROTO_ID, PROTO_LEN) || zmq_msg_size(&frames[1]) != 1) {
        return;
    }
    body = zmq_msg_data(&frames[2]);
    body_len = zmq_msg_size(&frames[2]);

    switch (*(const uint8_t *)zmq_msg_data(&frames[1])) {
    case MZB_CMD_ACK:
        parse_ids(body, body_len, MZBP_BRIDGE_ACK, out);
        break;
    case MZB_CMD_RETRY:
        parse_ids(body, body_len, MZBP_BRIDGE_RETRY, out);
        break;
    case MZB_CMD_BRIDGE_HEARTBEAT:
        if (body_len == 8) {
            out->kind = MZBP_BRIDGE_HEARTBEAT;
            out->instance = mzb_get_u64(body);
        }
        break;
    default:
        break;
    }
}
