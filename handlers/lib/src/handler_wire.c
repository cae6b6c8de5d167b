#include "handler_wire.h"

#include <errno.h>
#include <string.h>

#include "mzb_proto.h"

static int more_follows(void *sock)
{
    int more = 0;
    size_t size = sizeof(more);

    if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &size) != 0) {
        return 0;
    }
    return more;
}

static void discard_rest(void *sock, struct mzbh_msg *m)
{
    zmq_msg_t spare;

    /* Parts of a message arrive together, so reading the rest never waits. */
    while (more_follows(sock)) {
        if (zmq_msg_init(&spare) != 0) {
            return;
        }
        if (zmq_msg_recv(&spare, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&spare);
            return;
        }
        zmq_msg_close(&spare);
        m->dropped++;
    }
}

int mzbh_msg_recv(void *sock, struct mzbh_msg *m)
{
    m->count = 0;
    m->dropped = 0;

    do {
        zmq_msg_t *f = &m->frames[m->count];

        if (zmq_msg_init(f) != 0 || zmq_msg_recv(f, sock, ZMQ_DONTWAIT) < 0) {
            int err = errno;

            zmq_msg_close(f);
            mzbh_msg_close(m);
            errno = err;
            return -1;
        }
        m->count++;
    } while (m->count < MZBH_MAX_FRAMES && more_follows(sock));

    discard_rest(sock, m);
    return 0;
}

void mzbh_msg_close(struct mzbh_msg *m)
{
    for (size_t i = 0; i < m->count; i++) {
        zmq_msg_close(&m->frames[i]);
    }
    m->count = 0;
}

const uint8_t *mzbh_frame_data(struct mzbh_msg *m, size_t i)
{
    return zmq_msg_data(&m->frames[i]);
}

size_t mzbh_frame_size(const struct mzbh_msg *m, size_t i)
{
    return zmq_msg_size((zmq_msg_t *)&m->frames[i]);
}

int mzbh_msg_command(struct mzbh_msg *m)
{
    size_t id_len = strlen(MDP_WORKER_ID);

    if (m->count < 3 || mzbh_frame_size(m, 0) != 0) {
        return -1;
    }
    if (mzbh_frame_size(m, 1) != id_len || memcmp(mzbh_frame_data(m, 1), MDP_WORKER_ID, id_len)) {
        return -1;
    }
    if (mzbh_frame_size(m, 2) != 1) {
        return -1;
    }
    return mzbh_frame_data(m, 2)[0];
}

static int send_part(void *sock, const void *data, size_t len, int more)
{
    int flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0);

    return zmq_send(sock, data, len, flags) < 0 ? -1 : 0;
}

int mzbh_send_command(void *sock, uint8_t cmd, const struct mzbh_part *parts, size_t n)
{
    /* Once the first part is queued, ZeroMQ queues the rest of the message too. */
    if (send_part(sock, "", 0, 1) != 0 ||
        send_part(sock, MDP_WORKER_ID, strlen(MDP_WORKER_ID), 1) != 0 ||
        send_part(sock, &cmd, 1, n > 0) != 0) {
        return -1;
    }

    for (size_t i = 0; i < n; i++) {
        if (send_part(sock, parts[i].data, parts[i].len, i + 1 < n) != 0) {
            return -1;
        }
    }
    return 0;
}
