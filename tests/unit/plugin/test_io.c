/* The I/O thread against a fake bridge (fake_bridge.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "fake_bridge.h"
#include "io_thread.h"
#include "mzb_log.h"
#include "mzb_meta.h"
#include "mzb_proto.h"

#define PLUGIN_INSTANCE UINT64_C(0x1122334455667788)

struct fixture {
    void *zctx;
    struct fake_bridge fb;
    struct mzbp_stats stats;
    struct mzbp_io *io;
    uint64_t next_id;
};

static void start_io(struct fixture *f, const char *endpoint, uint32_t max_unacked)
{
    struct mzbp_io_settings settings = {
        .endpoint = endpoint,
        .queue_limit = 100,
        .max_unacked = max_unacked,
        .instance = PLUGIN_INSTANCE,
    };
    struct mzbp_io_error err;

    mzbp_stats_init(&f->stats);
    assert_int_equal(mzbp_io_start(&settings, &f->stats, &f->io, &err), 0);
}

/* A bridge on an ephemeral port and an I/O thread connected to it. */
static void start_pair(struct fixture *f, uint32_t max_unacked)
{
    fake_bridge_bind(&f->fb, f->zctx, "tcp://127.0.0.1:*");
    start_io(f, f->fb.endpoint, max_unacked);
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
    fake_bridge_close(&f->fb);
    assert_int_equal(zmq_ctx_term(f->zctx), 0);
    free(f);
    return 0;
}

/* Hands the I/O thread one dispatch, as the broker's thread would; returns its id. */
static uint64_t feed(struct fixture *f, int qos, const char *payload)
{
    struct mzb_meta m;

    memset(&m, 0, sizeof(m));
    m.qos = (uint8_t)qos;
    m.msg_id = f->next_id++;
    m.topic.ptr = (const uint8_t *)"t/x";
    m.topic.len = 3;
    m.client_id.ptr = (const uint8_t *)"c";
    m.client_id.len = 1;
    m.route.ptr = (const uint8_t *)"t/#";
    m.route.len = 3;
    assert_int_equal(mzbp_io_feed(f->io, "svc", 3, &m, payload, payload ? strlen(payload) : 0), 0);
    return m.msg_id;
}

static void test_dispatch_frames_and_ack(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t id0;
    uint64_t id1;

    start_pair(f, 10);
    /* QoS 0 waits for nobody: the connection must be up before it is sent. */
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 7, 1);
    assert_true(f->fb.last_plugin_instance == PLUGIN_INSTANCE);
    id0 = feed(f, 0, "zero");
    id1 = feed(f, 1, "one");

    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
    assert_true(received_dispatch_id(&r) == id0);
    assert_int_equal(zmq_msg_size(&r.frames[2]), 3);
    assert_memory_equal(zmq_msg_data(&r.frames[2]), "svc", 3);
    assert_int_equal(zmq_msg_size(&r.frames[4]), 4);
    assert_memory_equal(zmq_msg_data(&r.frames[4]), "zero", 4);
    received_close(&r);

    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
    assert_true(received_dispatch_id(&r) == id1);
    assert_true(wait_stat(&f->stats.unacked, 1));
    fake_bridge_ack(&f->fb, &r, id1);
    assert_true(wait_stat(&f->stats.acked, 1));
    assert_true(wait_stat(&f->stats.unacked, 0));
    fake_bridge_ack(&f->fb, &r, id1); /* a second ACK for the same id is counted, not fatal */
    assert_true(wait_stat(&f->stats.ack_unknown, 1));
    received_close(&r);
}

static void test_one_ack_frame_may_carry_many_ids(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint8_t body[24];

    start_pair(f, 10);
    for (int i = 0; i < 3; i++) {
        mzb_put_u64(body + 8 * i, feed(f, 1, "m"));
    }
    for (int i = 0; i < 3; i++) {
        assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
        if (i < 2) {
            received_close(&r);
        }
    }
    assert_true(wait_stat(&f->stats.unacked, 3));
    fake_bridge_send(&f->fb, &r, MZB_CMD_ACK, body, sizeof(body));
    assert_true(wait_stat(&f->stats.acked, 3));
    assert_true(wait_stat(&f->stats.unacked, 0));
    received_close(&r);
}

static void test_empty_payload_is_an_empty_frame(void **state)
{
    struct fixture *f = *state;
    struct received r;

    start_pair(f, 10);
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 7, 1);
    feed(f, 0, NULL);
    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
    assert_int_equal(r.count, 5);
    assert_int_equal(zmq_msg_size(&r.frames[4]), 0);
    received_close(&r);
}

static void test_new_bridge_instance_gets_everything_again(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t ids[3];

    start_pair(f, 10);
    for (int i = 0; i < 3; i++) {
        ids[i] = feed(f, i == 1 ? 2 : 1, "held");
    }
    for (int i = 0; i < 3; i++) {
        assert_true(fake_bridge_next_dispatch(&f->fb, &r, 100));
        assert_true(received_dispatch_id(&r) == ids[i]);
        if (i == 1) {
            fake_bridge_ack(&f->fb, &r, ids[1]);
        }
        received_close(&r);
    }
    assert_true(wait_stat(&f->stats.unacked, 2));
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 100, 1);

    /* The bridge answers the next heartbeat as a new instance: 0 and 2 come again, in order. */
    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 200));
    assert_true(received_dispatch_id(&r) == ids[0]);
    received_close(&r);
    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 200));
    assert_true(received_dispatch_id(&r) == ids[2]);
    received_close(&r);
    assert_true(wait_stat(&f->stats.resent, 2));
    assert_true(wait_stat(&f->stats.bridge_restarts, 1));
}

/* A bridge that goes away and comes back on the same endpoint gets the held messages again. */
static void test_broken_connection_resends_in_order(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t ids[4];
    char endpoint[256];

    start_pair(f, 10);
    snprintf(endpoint, sizeof(endpoint), "%s", f->fb.endpoint);
    ids[0] = feed(f, 1, "a");
    ids[1] = feed(f, 1, "b");
    for (int i = 0; i < 2; i++) {
        assert_true(fake_bridge_next_dispatch(&f->fb, &r, 100));
        received_close(&r);
    }
    fake_bridge_close(&f->fb);
    assert_true(wait_stat(&f->stats.bridge_disconnects, 1));
    ids[2] = feed(f, 1, "c");
    ids[3] = feed(f, 1, "d");
    assert_true(wait_stat(&f->stats.unsent, 4));

    fake_bridge_bind(&f->fb, f->zctx, endpoint);
    for (int i = 0; i < 4; i++) {
        assert_true(fake_bridge_next_dispatch(&f->fb, &r, 100));
        assert_true(received_dispatch_id(&r) == ids[i]);
        received_close(&r);
    }
    assert_true(wait_stat(&f->stats.resent, 2));
    assert_true(wait_stat(&f->stats.sent, 4));
}

static void test_malformed_bridge_messages_are_counted(void **state)
{
    struct fixture *f = *state;
    struct received r;

    start_pair(f, 10);
    feed(f, 1, "x");
    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 0));
    fake_bridge_send(&f->fb, &r, MZB_CMD_ACK, "short", 5);         /* not a multiple of 8 */
    fake_bridge_send(&f->fb, &r, MZB_CMD_BRIDGE_HEARTBEAT, "", 0); /* no instance */
    fake_bridge_send(&f->fb, &r, 0x7f, "12345678", 8);             /* unknown command */
    assert_true(wait_stat(&f->stats.bridge_malformed, 3));
    assert_int_equal(mzbp_stat_get(&f->stats.unacked), 1);
    received_close(&r);
}

/* Waits for the next DISPATCH and returns its id, closing it. */
static uint64_t next_id(struct fixture *f, uint64_t instance, struct received *keep)
{
    struct received r;
    uint64_t id;

    assert_true(fake_bridge_next_dispatch(&f->fb, &r, instance));
    id = received_dispatch_id(&r);
    if (keep != NULL) {
        *keep = r;
    } else {
        received_close(&r);
    }
    return id;
}

/*
 * A message the bridge sends back comes again after 100 ms, after a second
 * RETRY 200 ms later, and an ACK then ends it. Lower bounds are exact (the
 * plugin reads the clock after the RETRY was sent); upper ones leave room
 * for a loaded machine.
 */
static void test_retry_sends_again_after_backoff(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t id;
    uint64_t t0;
    uint64_t took;

    start_pair(f, 10);
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 7, 1);
    id = feed(f, 1, "again");
    assert_true(next_id(f, 7, &r) == id);

    t0 = mzb_now_ms();
    fake_bridge_retry(&f->fb, &r, id);
    received_close(&r);
    assert_true(next_id(f, 7, &r) == id);
    took = mzb_now_ms() - t0;
    assert_true(took >= 100 && took < 500);
    assert_int_equal(mzbp_stat_get(&f->stats.retries_received), 1);

    t0 = mzb_now_ms();
    fake_bridge_retry(&f->fb, &r, id);
    assert_true(wait_stat(&f->stats.deferred, 1));
    assert_int_equal(mzbp_stat_get(&f->stats.unsent), 1);
    received_close(&r);
    assert_true(next_id(f, 7, &r) == id);
    took = mzb_now_ms() - t0;
    assert_true(took >= 200 && took < 600);
    assert_true(wait_stat(&f->stats.deferred, 0));
    assert_true(wait_stat(&f->stats.resent, 2));
    assert_int_equal(mzbp_stat_get(&f->stats.sent), 1);

    fake_bridge_ack(&f->fb, &r, id);
    received_close(&r);
    assert_true(wait_stat(&f->stats.acked, 1));
    assert_true(wait_stat(&f->stats.unacked, 0));
    assert_true(fake_bridge_quiet(&f->fb, 500, 7));
    assert_int_equal(mzbp_stat_get(&f->stats.retries_received), 2);
}

/* Messages behind a deferred one, for its service or another, go at once. */
static void test_deferred_message_holds_up_nothing(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t a;
    uint64_t b;
    uint64_t c;
    uint64_t t0;

    start_pair(f, 10);
    a = feed(f, 1, "a");
    assert_true(next_id(f, 7, &r) == a);

    /* Four RETRYs in a row: 800 ms, so a loaded machine does not race the backoff. */
    t0 = mzb_now_ms();
    for (int i = 0; i < 4; i++) {
        fake_bridge_retry(&f->fb, &r, a);
    }
    received_close(&r);
    assert_true(wait_stat(&f->stats.retries_received, 4));
    b = feed(f, 1, "b");
    c = feed(f, 2, "c");
    assert_true(next_id(f, 7, NULL) == b);
    assert_true(next_id(f, 7, NULL) == c);
    assert_true(mzb_now_ms() - t0 < 800);
    assert_true(next_id(f, 7, NULL) == a);
    assert_true(mzb_now_ms() - t0 >= 800);
    assert_true(wait_stat(&f->stats.unsent, 0));
    assert_int_equal(mzbp_stat_get(&f->stats.unacked), 3);
}

/* One RETRY frame may carry many ids; ids not held are counted and ignored. */
static void test_retry_frame_with_many_ids(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t ids[2];
    uint8_t body[24];

    start_pair(f, 10);
    ids[0] = feed(f, 1, "x");
    ids[1] = feed(f, 1, "y");
    assert_true(next_id(f, 7, NULL) == ids[0]);
    assert_true(next_id(f, 7, &r) == ids[1]);
    mzb_put_u64(body, ids[0]);
    mzb_put_u64(body + 8, f->next_id + 1000);
    mzb_put_u64(body + 16, ids[1]);
    fake_bridge_send(&f->fb, &r, MZB_CMD_RETRY, body, sizeof(body));
    received_close(&r);

    assert_true(wait_stat(&f->stats.retries_received, 2));
    assert_true(wait_stat(&f->stats.retry_unknown, 1));
    assert_true(next_id(f, 7, NULL) == ids[0]);
    assert_true(next_id(f, 7, NULL) == ids[1]);
    assert_true(wait_stat(&f->stats.resent, 2));
}

static void test_malformed_retry_is_counted(void **state)
{
    struct fixture *f = *state;
    struct received r;

    start_pair(f, 10);
    feed(f, 1, "x");
    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
    fake_bridge_send(&f->fb, &r, MZB_CMD_RETRY, "short", 5);
    fake_bridge_send(&f->fb, &r, MZB_CMD_RETRY, "", 0);
    assert_true(wait_stat(&f->stats.bridge_malformed, 2));
    assert_int_equal(mzbp_stat_get(&f->stats.retries_received), 0);
    assert_int_equal(mzbp_stat_get(&f->stats.deferred), 0);
    assert_true(fake_bridge_quiet(&f->fb, 300, 7));
    received_close(&r);
}

/*
 * A restarted bridge gets a deferred message at once, not at its due time,
 * and a RETRY from it starts the backoff again at 100 ms.
 */
static void test_restart_resends_deferred_at_once(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t id;
    uint64_t t0;
    uint64_t took;

    start_pair(f, 10);
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 100, 1);
    id = feed(f, 1, "held");
    assert_true(next_id(f, 100, &r) == id);

    /* Six RETRYs: the next send would be 2 s away. */
    t0 = mzb_now_ms();
    for (int i = 0; i < 6; i++) {
        fake_bridge_retry(&f->fb, &r, id);
    }
    received_close(&r);
    assert_true(wait_stat(&f->stats.deferred, 1));

    /* The next heartbeat, within a second, is answered by a new bridge instance. */
    assert_true(next_id(f, 200, &r) == id);
    assert_true(mzb_now_ms() - t0 < 1900);
    assert_int_equal(mzbp_stat_get(&f->stats.bridge_restarts), 1);
    assert_true(wait_stat(&f->stats.deferred, 0));

    t0 = mzb_now_ms();
    fake_bridge_retry(&f->fb, &r, id);
    received_close(&r);
    assert_true(next_id(f, 200, NULL) == id);
    took = mzb_now_ms() - t0;
    assert_true(took >= 100 && took < 500);
}

static void test_bounds_when_no_bridge_is_there(void **state)
{
    struct fixture *f = *state;
    char endpoint[128];
    struct received r;
    uint64_t first = 0;

    snprintf(endpoint, sizeof(endpoint), "ipc:///tmp/mzbp-test-io-%d.sock", (int)getpid());
    start_io(f, endpoint, 3);

    feed(f, 0, "lost");
    for (int i = 0; i < 5; i++) {
        uint64_t id = feed(f, 1, "kept");
        first = i == 0 ? id : first;
    }
    assert_true(wait_stat(&f->stats.dropped_no_bridge, 1));
    assert_true(wait_stat(&f->stats.unacked_full_dropped, 2));
    assert_true(wait_stat(&f->stats.unsent, 3));

    /* A bridge that shows up later gets the held messages, oldest first. */
    fake_bridge_bind(&f->fb, f->zctx, endpoint);
    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 9));
    assert_true(received_dispatch_id(&r) == first);
    received_close(&r);
    assert_true(wait_stat(&f->stats.sent, 3));
    assert_true(wait_stat(&f->stats.unsent, 0));
    unlink(endpoint + strlen("ipc://"));
}

/* max_unacked 0: QoS 1 is sent once like QoS 0 and never held. */
static void test_max_unacked_zero_holds_nothing(void **state)
{
    struct fixture *f = *state;
    struct received r;

    start_pair(f, 0);
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 7, 1);
    feed(f, 1, "once");
    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
    received_close(&r);
    assert_true(wait_stat(&f->stats.sent, 1));
    assert_int_equal(mzbp_stat_get(&f->stats.unacked), 0);
}

/* The broker must stop quickly even with messages held for a bridge that is not there. */
static void test_stop_is_quick_with_messages_held(void **state)
{
    struct fixture *f = *state;
    uint64_t started;

    start_io(f, "tcp://127.0.0.1:1", 100);
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

/*
 * While the broker's TICKs come, dispatches made between two of them travel
 * together: one BATCH for a burst, QoS 0 and held QoS 1 alike, in order.
 */
static void test_burst_between_ticks_is_one_batch(void **state)
{
    struct fixture *f = *state;
    uint64_t ids[40];
    struct received r;

    start_pair(f, 100);
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 7, 1);
    mzbp_io_tick(f->io, mzb_now_us());
    for (int i = 0; i < 40; i++) {
        ids[i] = feed(f, i % 2, "burst");
    }
    mzbp_io_tick(f->io, mzb_now_us());

    for (int i = 0; i < 40; i++) {
        assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
        assert_true(received_dispatch_id(&r) == ids[i]);
        if (i % 2 == 1) {
            fake_bridge_ack(&f->fb, &r, ids[i]);
        }
        received_close(&r);
    }
    assert_true(f->fb.batches <= 2); /* 1, unless the I/O thread's own timeout struck mid-burst */
    assert_true(wait_stat(&f->stats.acked, 20));
    assert_true(wait_stat(&f->stats.sent, 40));
    assert_true(wait_stat(&f->stats.unacked, 0));
}

/* A dispatch after which no TICK comes still goes: the I/O thread looks on its own. */
static void test_no_tick_after_a_dispatch_still_sends_it(void **state)
{
    struct fixture *f = *state;
    struct received r;
    uint64_t start;
    uint64_t id;

    start_pair(f, 100);
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 7, 1);
    mzbp_io_tick(f->io, mzb_now_us());
    start = mzb_now_ms();
    id = feed(f, 1, "lonely");

    assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
    assert_true(received_dispatch_id(&r) == id);
    assert_true(mzb_now_ms() - start < 2000); /* MZBP_POLL_MS at most, on an idle machine */
    received_close(&r);
}

/* Held messages sent again after a restart go several to a BATCH, in order. */
static void test_resend_is_batched_in_order(void **state)
{
    struct fixture *f = *state;
    uint64_t ids[100];
    struct received r;
    uint64_t batches;

    start_pair(f, 200);
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 7, 1);
    for (int i = 0; i < 100; i++) {
        ids[i] = feed(f, 1, "again");
    }
    for (int i = 0; i < 100; i++) {
        assert_true(fake_bridge_next_dispatch(&f->fb, &r, 7));
        received_close(&r);
    }
    batches = f->fb.batches;

    /* A new bridge instance: everything held goes again, 64 to a BATCH at most. */
    fake_bridge_serve_heartbeats(&f->fb, &f->stats, 8, 2);
    for (int i = 0; i < 100; i++) {
        assert_true(fake_bridge_next_dispatch(&f->fb, &r, 8));
        assert_true(received_dispatch_id(&r) == ids[i]);
        received_close(&r);
    }
    assert_true(f->fb.batches - batches >= 2);
    assert_true(f->fb.batches - batches <= 10);
    assert_true(wait_stat(&f->stats.resent, 100));
}

#define IO_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        IO_TEST(test_dispatch_frames_and_ack),
        IO_TEST(test_one_ack_frame_may_carry_many_ids),
        IO_TEST(test_empty_payload_is_an_empty_frame),
        IO_TEST(test_new_bridge_instance_gets_everything_again),
        IO_TEST(test_broken_connection_resends_in_order),
        IO_TEST(test_malformed_bridge_messages_are_counted),
        IO_TEST(test_retry_sends_again_after_backoff),
        IO_TEST(test_deferred_message_holds_up_nothing),
        IO_TEST(test_retry_frame_with_many_ids),
        IO_TEST(test_malformed_retry_is_counted),
        IO_TEST(test_restart_resends_deferred_at_once),
        IO_TEST(test_bounds_when_no_bridge_is_there),
        IO_TEST(test_max_unacked_zero_holds_nothing),
        IO_TEST(test_stop_is_quick_with_messages_held),
        IO_TEST(test_bad_endpoint_is_reported),
        IO_TEST(test_burst_between_ticks_is_one_batch),
        IO_TEST(test_no_tick_after_a_dispatch_still_sends_it),
        IO_TEST(test_resend_is_batched_in_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
