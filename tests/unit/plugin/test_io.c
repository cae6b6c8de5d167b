/*
 * The I/O thread against a fake bridge: a ROUTER socket in this test that
 * plays the bridge's side of MZB01 (docs/protocol.md, section 1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "io_thread.h"
#include "mzb_log.h"
#include "mzb_meta.h"
#include "mzb_proto.h"

#define WAIT_MS 5000

struct fixture {
    void *zctx;
    void *router;
    char endpoint[256];
    struct mzbp_stats stats;
    struct mzbp_io *io;
    uint64_t next_id;
};

/* One message the fake bridge received, without its routing id. */
struct received {
    zmq_msg_t id;
    int count;
    zmq_msg_t frames[6];
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static void bind_router(struct fixture *f, const char *endpoint)
{
    int zero = 0;
    size_t len = sizeof(f->endpoint);

    f->router = zmq_socket(f->zctx, ZMQ_ROUTER);
    assert_non_null(f->router);
    assert_int_equal(zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    assert_int_equal(zmq_bind(f->router, endpoint), 0);
    assert_int_equal(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
}

static void close_router(struct fixture *f)
{
    if (f->router != NULL) {
        assert_int_equal(zmq_close(f->router), 0);
        f->router = NULL;
    }
}

static void start_io(struct fixture *f, uint32_t max_unacked)
{
    struct mzbp_io_settings settings = {
        .endpoint = f->endpoint,
        .queue_limit = 100,
        .max_unacked = max_unacked,
        .instance = UINT64_C(0x1122334455667788),
    };
    struct mzbp_io_error err;

    mzbp_stats_init(&f->stats);
    assert_int_equal(mzbp_io_start(&settings, &f->stats, &f->io, &err), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->zctx = zmq_ctx_new();
    assert_non_null(f->zctx);
    f->next_id = UINT64_C(0xabcdef) << 40;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    mzbp_io_stop(&f->io);
    close_router(f);
    assert_int_equal(zmq_ctx_term(f->zctx), 0);
    free(f);
    return 0;
}

/* Hands the I/O thread one dispatch, as the broker's thread would; returns its id. */
static uint64_t feed(struct fixture *f, int qos, const char *payload)
{
    struct mzb_meta m;
    zmq_msg_t frame;
    size_t size;
    size_t written;

    memset(&m, 0, sizeof(m));
    m.qos = (uint8_t)qos;
    m.msg_id = f->next_id++;
    m.topic.ptr = (const uint8_t *)"t/x";
    m.topic.len = 3;
    m.client_id.ptr = (const uint8_t *)"c";
    m.client_id.len = 1;
    m.route.ptr = (const uint8_t *)"t/#";
    m.route.len = 3;
    size = mzb_meta_encoded_size(&m);
    assert_int_equal(zmq_msg_init_size(&frame, size), 0);
    assert_int_equal(mzb_meta_encode(&m, zmq_msg_data(&frame), size, &written), MZB_META_OK);
    assert_int_equal(mzbp_io_feed(f->io, "svc", 3, &frame, payload, payload ? strlen(payload) : 0),
                     0);
    return m.msg_id;
}

static void received_close(struct received *r)
{
    zmq_msg_close(&r->id);
    for (int i = 0; i < r->count; i++) {
        zmq_msg_close(&r->frames[i]);
    }
    r->count = 0;
}

/* Receives one message at the fake bridge; returns 0 on timeout. */
static int bridge_recv(struct fixture *f, struct received *r, long timeout_ms)
{
    zmq_pollitem_t item = {f->router, 0, ZMQ_POLLIN, 0};

    r->count = 0;
    if (zmq_poll(&item, 1, timeout_ms) <= 0) {
        return 0;
    }
    zmq_msg_init(&r->id);
    assert_true(zmq_msg_recv(&r->id, f->router, 0) >= 0);
    while (zmq_msg_more(r->count == 0 ? &r->id : &r->frames[r->count - 1])) {
        assert_true(r->count < 6);
        zmq_msg_init(&r->frames[r->count]);
        assert_true(zmq_msg_recv(&r->frames[r->count], f->router, 0) >= 0);
        r->count++;
    }
    return 1;
}

static uint8_t command_of(struct received *r)
{
    assert_true(r->count >= 2);
    assert_int_equal(zmq_msg_size(&r->frames[0]), 5);
    assert_memory_equal(zmq_msg_data(&r->frames[0]), MZB_PROTO_ID, 5);
    assert_int_equal(zmq_msg_size(&r->frames[1]), 1);
    return *(uint8_t *)zmq_msg_data(&r->frames[1]);
}

/* Waits for the next DISPATCH, answering HEARTBEATs with instance (0: no answer). */
static int next_dispatch(struct fixture *f, struct received *r, uint64_t instance)
{
    uint64_t end = mzb_now_ms() + WAIT_MS;

    while (mzb_now_ms() < end) {
        if (!bridge_recv(f, r, 100)) {
            continue;
        }
        uint8_t cmd = command_of(r);
        if (cmd == MZB_CMD_DISPATCH) {
            return 1;
        }
        assert_int_equal(cmd, MZB_CMD_HEARTBEAT);
        assert_int_equal(r->count, 4);
        assert_int_equal(zmq_msg_size(&r->frames[2]), 8);
        assert_true(mzb_get_u64(zmq_msg_data(&r->frames[2])) == UINT64_C(0x1122334455667788));
        if (instance != 0) {
            uint8_t body[8];
            mzb_put_u64(body, instance);
            zmq_send(f->router, zmq_msg_data(&r->id), zmq_msg_size(&r->id), ZMQ_SNDMORE);
            zmq_send(f->router, MZB_PROTO_ID, 5, ZMQ_SNDMORE);
            zmq_send(f->router, "\x12", 1, ZMQ_SNDMORE);
            zmq_send(f->router, body, 8, 0);
        }
        received_close(r);
    }
    return 0;
}

/* Answers heartbeats with instance until the plugin has counted want of them. */
static void serve_heartbeats(struct fixture *f, uint64_t instance, uint64_t want)
{
    uint64_t end = mzb_now_ms() + WAIT_MS;
    struct received r;

    while (mzbp_stat_get(&f->stats.bridge_heartbeats) < want && mzb_now_ms() < end) {
        if (!bridge_recv(f, &r, 100)) {
            continue;
        }
        assert_int_equal(command_of(&r), MZB_CMD_HEARTBEAT);
        uint8_t body[8];
        mzb_put_u64(body, instance);
        zmq_send(f->router, zmq_msg_data(&r.id), zmq_msg_size(&r.id), ZMQ_SNDMORE);
        zmq_send(f->router, MZB_PROTO_ID, 5, ZMQ_SNDMORE);
        zmq_send(f->router, "\x12", 1, ZMQ_SNDMORE);
        zmq_send(f->router, body, 8, 0);
        received_close(&r);
        sleep_ms(20);
    }
    assert_true(mzbp_stat_get(&f->stats.bridge_heartbeats) >= want);
}

static uint64_t dispatch_id(struct received *r)
{
    assert_int_equal(r->count, 5);
    assert_true(zmq_msg_size(&r->frames[3]) >= MZB_META_HEADER_SIZE);
    return mzb_get_u64((uint8_t *)zmq_msg_data(&r->frames[3]) + 8);
}

static void send_to_plugin(struct fixture *f, struct received *from, uint8_t cmd, const void *body,
                           size_t len)
{
    assert_true(
        zmq_send(f->router, zmq_msg_data(&from->id), zmq_msg_size(&from->id), ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->router, MZB_PROTO_ID, 5, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->router, &cmd, 1, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->router, body, len, 0) >= 0);
}

static void ack(struct fixture *f, struct received *from, uint64_t id)
{
    uint8_t body[8];

    mzb_put_u64(body, id);
    send_to_plugin(f, from, MZB_CMD_ACK, body, sizeof(body));
}

static int wait_stat(atomic_uint_fast64_t *counter, uint64_t want)
{
    uint64_t end = mzb_now_ms() + WAIT_MS;

    while (mzbp_stat_get(counter) != want && mzb_now_ms() < end) {
        sleep_ms(5);
    }
    return mzbp_stat_get(counter) == want;
}

static void test_dispatch_frames_and_ack(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t id0;
    uint64_t id1;

    bind_router(f, "tcp://127.0.0.1:*");
    start_io(f, 10);
    serve_heartbeats(f, 7, 1); /* QoS 0 waits for nobody: the connection must be up first */
    id0 = feed(f, 0, "zero");
    id1 = feed(f, 1, "one");

    assert_true(next_dispatch(f, &r, 7));
    assert_true(dispatch_id(&r) == id0);
    assert_int_equal(zmq_msg_size(&r.frames[2]), 3);
    assert_memory_equal(zmq_msg_data(&r.frames[2]), "svc", 3);
    assert_int_equal(zmq_msg_size(&r.frames[4]), 4);
    assert_memory_equal(zmq_msg_data(&r.frames[4]), "zero", 4);
    received_close(&r);

    assert_true(next_dispatch(f, &r, 7));
    assert_true(dispatch_id(&r) == id1);
    assert_true(wait_stat(&f->stats.unacked, 1));
    ack(f, &r, id1);
    assert_true(wait_stat(&f->stats.acked, 1));
    assert_true(wait_stat(&f->stats.unacked, 0));
    ack(f, &r, id1); /* a second ACK for the same id is counted, not fatal */
    assert_true(wait_stat(&f->stats.ack_unknown, 1));
    received_close(&r);
}

static void test_empty_payload_is_an_empty_frame(void **state)
{
    struct fixture *f = *state;
    struct received r;

    bind_router(f, "tcp://127.0.0.1:*");
    start_io(f, 10);
    serve_heartbeats(f, 7, 1);
    feed(f, 0, NULL);
    assert_true(next_dispatch(f, &r, 7));
    assert_int_equal(r.count, 5);
    assert_int_equal(zmq_msg_size(&r.frames[4]), 0);
    received_close(&r);
}

static void test_new_bridge_instance_gets_everything_again(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t ids[3];

    bind_router(f, "tcp://127.0.0.1:*");
    start_io(f, 10);
    for (int i = 0; i < 3; i++) {
        ids[i] = feed(f, i == 1 ? 2 : 1, "held");
    }
    for (int i = 0; i < 3; i++) {
        assert_true(next_dispatch(f, &r, 100));
        assert_true(dispatch_id(&r) == ids[i]);
        if (i == 1) {
            ack(f, &r, ids[1]);
        }
        received_close(&r);
    }
    assert_true(wait_stat(&f->stats.unacked, 2));
    serve_heartbeats(f, 100, 1);

    /* The bridge answers the next heartbeat as a new instance: 0 and 2 come again, in order. */
    assert_true(next_dispatch(f, &r, 200));
    assert_true(dispatch_id(&r) == ids[0]);
    received_close(&r);
    assert_true(next_dispatch(f, &r, 200));
    assert_true(dispatch_id(&r) == ids[2]);
    received_close(&r);
    assert_true(wait_stat(&f->stats.resent, 2));
    assert_true(wait_stat(&f->stats.bridge_restarts, 1));
}

static void test_malformed_bridge_messages_are_counted(void **state)
{
    struct fixture *f = *state;
    struct received r;

    bind_router(f, "tcp://127.0.0.1:*");
    start_io(f, 10);
    serve_heartbeats(f, 7, 1);
    feed(f, 0, "x");
    assert_true(next_dispatch(f, &r, 0));
    send_to_plugin(f, &r, MZB_CMD_ACK, "short", 5);         /* not a multiple of 8 */
    send_to_plugin(f, &r, MZB_CMD_BRIDGE_HEARTBEAT, "", 0); /* no instance */
    send_to_plugin(f, &r, 0x7f, "12345678", 8);             /* unknown command */
    assert_true(wait_stat(&f->stats.bridge_malformed, 3));
    received_close(&r);
}

static void test_bounds_when_no_bridge_is_there(void **state)
{
    struct fixture *f = *state;
    char path[128];
    struct received r;
    uint64_t first = 0;

    snprintf(path, sizeof(path), "ipc:///tmp/mzbp-test-io-%d.sock", (int)getpid());
    snprintf(f->endpoint, sizeof(f->endpoint), "%s", path);
    start_io(f, 3);

    feed(f, 0, "lost");
    for (int i = 0; i < 5; i++) {
        uint64_t id = feed(f, 1, "kept");
        first = i == 0 ? id : first;
    }
    assert_true(wait_stat(&f->stats.dropped_no_bridge, 1));
    assert_true(wait_stat(&f->stats.unacked_full_dropped, 2));
    assert_true(wait_stat(&f->stats.unsent, 3));

    /* A bridge that shows up later gets the held messages, oldest first. */
    bind_router(f, path);
    assert_true(next_dispatch(f, &r, 9));
    assert_true(dispatch_id(&r) == first);
    received_close(&r);
    assert_true(wait_stat(&f->stats.sent, 3));
    assert_true(wait_stat(&f->stats.unsent, 0));
    unlink(path + strlen("ipc://"));
}

/* The broker must stop quickly even with messages held for a bridge that is not there. */
static void test_stop_is_quick_with_messages_held(void **state)
{
    struct fixture *f = *state;
    uint64_t started;

    snprintf(f->endpoint, sizeof(f->endpoint), "tcp://127.0.0.1:1");
    start_io(f, 100);
    for (int i = 0; i < 20; i++) {
        feed(f, 1, "held");
    }
    assert_true(wait_stat(&f->stats.unsent, 20));
    started = mzb_now_ms();
    mzbp_io_stop(&f->io);
    assert_null(f->io);
    assert_true(mzb_now_ms() - started < 1000);
}

static void test_bad_endpoint_is_reported(void **state)
{
    struct fixture *f = *state;
    struct mzbp_io_settings settings = {.endpoint = "nonsense", .queue_limit = 1};
    struct mzbp_io_error err;

    mzbp_stats_init(&f->stats);
    assert_int_equal(mzbp_io_start(&settings, &f->stats, &f->io, &err), -1);
    assert_null(f->io);
    assert_non_null(strstr(err.text, "nonsense"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dispatch_frames_and_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_payload_is_an_empty_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_bridge_instance_gets_everything_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_bridge_messages_are_counted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bounds_when_no_bridge_is_there, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_is_quick_with_messages_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_endpoint_is_reported, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
