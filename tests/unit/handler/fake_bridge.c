#include "fake_bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "mzb_proto.h"

int fb_start(struct fake_bridge *fb)
{
    int linger = 0;

    memset(fb, 0, sizeof(*fb));
    snprintf(fb->dir, sizeof(fb->dir), "/tmp/mzb-handler-test-XXXXXX");
    if (!mkdtemp(fb->dir)) {
        return -1;
    }
    snprintf(fb->path, sizeof(fb->path), "%s/bridge.sock", fb->dir);
    snprintf(fb->endpoint, sizeof(fb->endpoint), "ipc://%s", fb->path);

    fb->ctx = zmq_ctx_new();
    fb->router = fb->ctx ? zmq_socket(fb->ctx, ZMQ_ROUTER) : NULL;
    if (!fb->router || zmq_setsockopt(fb->router, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(fb->router, fb->endpoint) != 0) {
        fprintf(stderr, "fake bridge: cannot bind %s: %s\n", fb->endpoint, zmq_strerror(errno));
        fb_stop(fb);
        return -1;
    }
    return 0;
}

void fb_stop(struct fake_bridge *fb)
{
    if (fb->router) {
        zmq_close(fb->router);
        fb->router = NULL;
    }
    if (fb->ctx) {
        zmq_ctx_term(fb->ctx);
        fb->ctx = NULL;
    }
    if (fb->path[0]) {
        unlink(fb->path);
    }
    if (fb->dir[0]) {
        rmdir(fb->dir);
    }
}

static int more_follows(void *sock)
{
    int more = 0;
    size_t size = sizeof(more);

    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &size);
    return more;
}

static int read_frames(struct fake_bridge *fb, struct fb_msg *m)
{
    do {
        zmq_msg_t f;

        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, fb->router, 0) < 0) {
            zmq_msg_close(&f);
            return -1;
        }
        if (m->count < FB_MAX_FRAMES) {
            m->len[m->count] = zmq_msg_size(&f);
            m->data[m->count] = malloc(m->len[m->count] + 1);
            memcpy(m->data[m->count], zmq_msg_data(&f), m->len[m->count]);
            m->data[m->count][m->len[m->count]] = 0;
            m->count++;
        }
        zmq_msg_close(&f);
    } while (more_follows(fb->router));
    return 0;
}

int fb_recv(struct fake_bridge *fb, struct fb_msg *m, int timeout_ms)
{
    zmq_pollitem_t item = {fb->router, 0, ZMQ_POLLIN, 0};

    memset(m, 0, sizeof(*m));
    if (zmq_poll(&item, 1, timeout_ms) <= 0) {
        return -1;
    }
    if (read_frames(fb, m) != 0) {
        fb_msg_free(m);
        return -1;
    }
    return 0;
}

void fb_msg_free(struct fb_msg *m)
{
    for (size_t i = 0; i < m->count; i++) {
        free(m->data[i]);
    }
    memset(m, 0, sizeof(*m));
}

int fb_command(const struct fb_msg *m)
{
    if (m->count < 4 || m->len[1] != 0 || m->len[2] != strlen(MDP_WORKER_ID) ||
        memcmp(m->data[2], MDP_WORKER_ID, m->len[2]) != 0 || m->len[3] != 1) {
        return -1;
    }
    return m->data[3][0];
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fb_expect(struct fake_bridge *fb, int cmd, struct fb_msg *m, int timeout_ms, int *heartbeats)
{
    long long deadline = now_ms() + timeout_ms;

    for (;;) {
        long long left = deadline - now_ms();

        if (left < 0 || fb_recv(fb, m, (int)left) != 0) {
            return -1;
        }
        if (fb_command(m) == cmd) {
            return 0;
        }
        if (heartbeats && fb_command(m) == MDP_HEARTBEAT) {
            (*heartbeats)++;
        }
        fb_msg_free(m);
    }
}

int fb_send(struct fake_bridge *fb, const struct fb_frame *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int flags = i + 1 < n ? ZMQ_SNDMORE : 0;

        if (zmq_send(fb->router, frames[i].data, frames[i].len, flags) < 0) {
            return -1;
        }
    }
    return 0;
}

int fb_send_command(struct fake_bridge *fb, const uint8_t *id, size_t id_len, uint8_t cmd,
                    const struct fb_frame *extra, size_t n)
{
    struct fb_frame frames[FB_MAX_FRAMES] = {
        {id, id_len}, {"", 0}, {MDP_WORKER_ID, strlen(MDP_WORKER_ID)}, {&cmd, 1}};

    if (n + 4 > FB_MAX_FRAMES) {
        return -1;
    }
    if (n > 0) {
        memcpy(frames + 4, extra, n * sizeof(*extra));
    }
    return fb_send(fb, frames, n + 4);
}

int fb_send_request(struct fake_bridge *fb, const struct fb_msg *ready, uint64_t addr,
                    const char *payload, const struct mzb_meta *meta)
{
    uint8_t address[8];
    uint8_t buf[4096];
    size_t meta_len = 0;
    struct fb_frame extra[4] = {
        {address, sizeof(address)}, {"", 0}, {payload, strlen(payload)}, {buf, 0}};

    mzb_put_u64(address, addr);
    if (meta && mzb_meta_encode(meta, buf, sizeof(buf), &meta_len) != MZB_META_OK) {
        return -1;
    }
    extra[3].len = meta_len;
    return fb_send_command(fb, ready->data[0], ready->len[0], MDP_REQUEST, extra, meta ? 4 : 3);
}

static struct mzb_bytes str_bytes(const char *s)
{
    struct mzb_bytes b = {(const uint8_t *)s, strlen(s)};

    return b;
}

void fb_event_meta(struct mzb_meta *meta, const char *topic, const char *client, uint64_t msg_id,
                   int qos)
{
    memset(meta, 0, sizeof(*meta));
    meta->mode = MZB_MODE_EVENT;
    meta->qos = (uint8_t)qos;
    meta->protocol = 4;
    meta->msg_id = msg_id;
    meta->topic = str_bytes(topic);
    meta->client_id = str_bytes(client);
    meta->route = str_bytes("#");
}
