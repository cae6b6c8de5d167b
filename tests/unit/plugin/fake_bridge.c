#include "fake_bridge.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mzb_batch.h"
#include "mzb_log.h"
#include "mzb_meta.h"
#include "mzb_proto.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

void fake_bridge_bind(struct fake_bridge *fb, void *zctx, const char *endpoint)
{
    int zero = 0;
    size_t len = sizeof(fb->endpoint);

    fb->queue = calloc(FAKE_QUEUE_MAX, sizeof(*fb->queue));
    assert_non_null(fb->queue);
    fb->router = zmq_socket(zctx, ZMQ_ROUTER);
    assert_non_null(fb->router);
    assert_int_equal(zmq_setsockopt(fb->router, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    assert_int_equal(zmq_bind(fb->router, endpoint), 0);
    assert_int_equal(zmq_getsockopt(fb->router, ZMQ_LAST_ENDPOINT, fb->endpoint, &len), 0);
}

void fake_bridge_close(struct fake_bridge *fb)
{
    if (fb->router != NULL) {
        assert_int_equal(zmq_close(fb->router), 0);
        fb->router = NULL;
    }
    while (fb->queue_count > 0) {
        received_close(&fb->queue[fb->queue_head]);
        fb->queue_head = (fb->queue_head + 1) % FAKE_QUEUE_MAX;
        fb->queue_count--;
    }
    free(fb->queue);
    fb->queue = NULL;
}

static void frame_of(zmq_msg_t *frame, const void *data, size_t len)
{
    assert_int_equal(zmq_msg_init_size(frame, len), 0);
    if (len > 0) {
        memcpy(zmq_msg_data(frame), data, len);
    }
}

/* Queues one record as a DISPATCH from the peer with routing id `id`. */
static void queue_record(struct fake_bridge *fb, zmq_msg_t *id, const struct mzb_batch_record *rec)
{
    struct received *q;
    uint8_t cmd = MZB_CMD_DISPATCH;

    assert_true(fb->queue_count < FAKE_QUEUE_MAX);
    q = &fb->queue[(fb->queue_head + fb->queue_count) % FAKE_QUEUE_MAX];
    fb->queue_count++;
    frame_of(&q->id, zmq_msg_data(id), zmq_msg_size(id));
    frame_of(&q->frames[0], MZB_PROTO_ID, 5);
    frame_of(&q->frames[1], &cmd, 1);
    frame_of(&q->frames[2], rec->service, rec->service_len);
    frame_of(&q->frames[3], rec->meta, rec->meta_len);
    frame_of(&q->frames[4], rec->payload, rec->payload_len);
    q->count = 5;
}

/* A BATCH is "MZB01", 0x03 and one frame of well-formed records. */
static int unpack_batch(struct fake_bridge *fb, struct received *r)
{
    struct mzb_batch_record rec;
    size_t offset = 0;
    int rc;

    if (r->count < 2 || zmq_msg_size(&r->frames[1]) != 1 ||
        *(uint8_t *)zmq_msg_data(&r->frames[1]) != MZB_CMD_BATCH) {
        return 0;
    }
    assert_int_equal(r->count, 3);
    fb->batches++;
    while ((rc = mzb_batch_next(zmq_msg_data(&r->frames[2]), zmq_msg_size(&r->frames[2]), &offset,
                                &rec)) == MZB_BATCH_OK) {
        queue_record(fb, &r->id, &rec);
        fb->records++;
    }
    assert_int_equal(rc, MZB_BATCH_END);
    received_close(r);
    return 1;
}

/* Hands out the oldest queued record; 0 when none waits. */
static int take_queued(struct fake_bridge *fb, struct received *r)
{
    if (fb->queue_count == 0) {
        return 0;
    }
    *r = fb->queue[fb->queue_head];
    fb->queue_head = (fb->queue_head + 1) % FAKE_QUEUE_MAX;
    fb->queue_count--;
    return 1;
}

static int recv_message(struct fake_bridge *fb, struct received *r, long timeout_ms)
{
    zmq_pollitem_t item = {fb->router, 0, ZMQ_POLLIN, 0};

    r->count = 0;
    if (zmq_poll(&item, 1, timeout_ms) <= 0) {
        return 0;
    }
    zmq_msg_init(&r->id);
    assert_true(zmq_msg_recv(&r->id, fb->router, 0) >= 0);
    while (zmq_msg_more(r->count == 0 ? &r->id : &r->frames[r->count - 1])) {
        assert_true(r->count < 6);
        zmq_msg_init(&r->frames[r->count]);
        assert_true(zmq_msg_recv(&r->frames[r->count], fb->router, 0) >= 0);
        r->count++;
    }
    return 1;
}

int fake_bridge_recv(struct fake_bridge *fb, struct received *r, long timeout_ms)
{
    if (take_queued(fb, r)) {
        return 1;
    }
    if (!recv_message(fb, r, timeout_ms)) {
        return 0;
    }
    if (unpack_batch(fb, r)) {
        return take_queued(fb, r);
    }
    return 1;
}

void received_close(struct received *r)
{
    zmq_msg_close(&r->id);
    for (int i = 0; i < r->count; i++) {
        zmq_msg_close(&r->frames[i]);
    }
    r->count = 0;
}

uint8_t received_command(struct received *r)
{
    assert_true(r->count >= 2);
    assert_int_equal(zmq_msg_size(&r->frames[0]), 5);
    assert_memory_equal(zmq_msg_data(&r->frames[0]), MZB_PROTO_ID, 5);
    assert_int_equal(zmq_msg_size(&r->frames[1]), 1);
    return *(uint8_t *)zmq_msg_data(&r->frames[1]);
}

uint64_t received_dispatch_id(struct received *r)
{
    assert_int_equal(r->count, 5);
    assert_true(zmq_msg_size(&r->frames[3]) >= MZB_META_HEADER_SIZE);
    return mzb_get_u64((uint8_t *)zmq_msg_data(&r->frames[3]) + 8);
}

void fake_bridge_send(struct fake_bridge *fb, struct received *from, uint8_t cmd, const void *body,
                      size_t len)
{
    assert_true(
        zmq_send(fb->router, zmq_msg_data(&from->id), zmq_msg_size(&from->id), ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fb->router, MZB_PROTO_ID, 5, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fb->router, &cmd, 1, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(fb->router, body, len, 0) >= 0);
}

void fake_bridge_ack(struct fake_bridge *fb, struct received *from, uint64_t id)
{
    uint8_t body[8];

    mzb_put_u64(body, id);
    fake_bridge_send(fb, from, MZB_CMD_ACK, body, sizeof(body));
}

void fake_bridge_retry(struct fake_bridge *fb, struct received *from, uint64_t id)
{
    uint8_t body[8];

    mzb_put_u64(body, id);
    fake_bridge_send(fb, from, MZB_CMD_RETRY, body, sizeof(body));
}

/* Checks a plugin HEARTBEAT and answers it with instance unless that is 0. */
static void answer_heartbeat(struct fake_bridge *fb, struct received *r, uint64_t instance)
{
    uint8_t body[8];

    assert_int_equal(r->count, 4);
    assert_int_equal(zmq_msg_size(&r->frames[2]), 8);
    fb->last_plugin_instance = mzb_get_u64(zmq_msg_data(&r->frames[2]));
    assert_true(zmq_msg_size(&r->frames[3]) > 2);
    assert_int_equal(*(char *)zmq_msg_data(&r->frames[3]), '{');
    if (instance != 0) {
        mzb_put_u64(body, instance);
        fake_bridge_send(fb, r, MZB_CMD_BRIDGE_HEARTBEAT, body, sizeof(body));
    }
}

int fake_bridge_next_dispatch(struct fake_bridge *fb, struct received *r, uint64_t instance)
{
    uint64_t end = mzb_now_ms() + FAKE_WAIT_MS;

    while (mzb_now_ms() < end) {
        if (!fake_bridge_recv(fb, r, 100)) {
            continue;
        }
        uint8_t cmd = received_command(r);
        if (cmd == MZB_CMD_DISPATCH) {
            return 1;
        }
        assert_int_equal(cmd, MZB_CMD_HEARTBEAT);
        answer_heartbeat(fb, r, instance);
        received_close(r);
    }
    return 0;
}

int fake_bridge_quiet(struct fake_bridge *fb, long ms, uint64_t instance)
{
    uint64_t end = mzb_now_ms() + (uint64_t)ms;
    uint64_t now;
    struct received r;

    while ((now = mzb_now_ms()) < end) {
        if (!fake_bridge_recv(fb, &r, (long)(end - now))) {
            continue;
        }
        if (received_command(&r) == MZB_CMD_DISPATCH) {
            received_close(&r);
            return 0;
        }
        assert_int_equal(received_command(&r), MZB_CMD_HEARTBEAT);
        answer_heartbeat(fb, &r, instance);
        received_close(&r);
    }
    return 1;
}

void fake_bridge_serve_heartbeats(struct fake_bridge *fb, struct mzbp_stats *stats,
                                  uint64_t instance, uint64_t want)
{
    uint64_t end = mzb_now_ms() + FAKE_WAIT_MS;
    struct received r;

    while (mzbp_stat_get(&stats->bridge_heartbeats) < want && mzb_now_ms() < end) {
        if (!fake_bridge_recv(fb, &r, 100)) {
            continue;
        }
        assert_int_equal(received_command(&r), MZB_CMD_HEARTBEAT);
        answer_heartbeat(fb, &r, instance);
        received_close(&r);
        sleep_ms(20);
    }
    assert_true(mzbp_stat_get(&stats->bridge_heartbeats) >= want);
}

int wait_stat(atomic_uint_fast64_t *counter, uint64_t want)
{
    uint64_t end = mzb_now_ms() + FAKE_WAIT_MS;

    while (mzbp_stat_get(counter) != want && mzb_now_ms() < end) {
        sleep_ms(5);
    }
    return mzbp_stat_get(counter) == want;
}
