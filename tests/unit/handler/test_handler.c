/* The MDP/0.1 worker side of libmzbhandler, against a fake bridge in the test itself. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>

#include "fake_bridge.h"
#include "mzb_handler.h"
#include "mzb_log.h"
#include "mzb_proto.h"

#define SERVICE "svc"
#define WAIT_MS 5000
#define HEARTBEAT_MS 50
#define SLICE_MS 10

struct fixture {
    struct fake_bridge fb;
    struct mzb_handler *h;
    struct fb_msg ready; /* the handler's READY, for its routing id */
};

static struct mzb_handler_options test_options(const struct fixture *fx)
{
    struct mzb_handler_options opts = {0};

    opts.endpoint = fx->fb.endpoint;
    opts.service = SERVICE;
    opts.heartbeat_ms = HEARTBEAT_MS;
    opts.liveness = 100; /* 5 s: tests that want a silent bridge set it lower */
    opts.reconnect_ms = 10;
    return opts;
}

static int connect_handler(struct fixture *fx, const struct mzb_handler_options *opts)
{
    fx->h = mzb_handler_new(opts);
    if (!fx->h) {
        return -1;
    }
    return fb_expect(&fx->fb, MDP_READY, &fx->ready, WAIT_MS, NULL);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct mzb_handler_options opts;

    if (!fx || fb_start(&fx->fb) != 0) {
        free(fx);
        return -1;
    }
    opts = test_options(fx);
    *state = fx;
    return connect_handler(fx, &opts);
}

static int setup_bridge_only(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx || fb_start(&fx->fb) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    mzb_handler_destroy(&fx->h);
    fb_msg_free(&fx->ready);
    fb_stop(&fx->fb);
    free(fx);
    return 0;
}

static void assert_text(const char *got, size_t got_len, const char *want)
{
    assert_non_null(got);
    assert_int_equal(got_len, strlen(want));
    assert_memory_equal(got, want, got_len);
}

static struct mzb_request *expect_request(struct fixture *fx)
{
    struct mzb_request *req = NULL;

    assert_int_equal(mzb_handler_recv(fx->h, &req, WAIT_MS), MZB_HANDLER_OK);
    assert_non_null(req);
    return req;
}

static void expect_no_request(struct fixture *fx, int wait_ms)
{
    struct mzb_request *req = NULL;

    assert_int_equal(mzb_handler_recv(fx->h, &req, wait_ms), MZB_HANDLER_E_TIMEOUT);
    assert_null(req);
}

static void send_event(struct fixture *fx, uint64_t addr, uint64_t msg_id, const char *payload)
{
    struct mzb_meta meta;

    fb_event_meta(&meta, "sensors/1", "c1", msg_id, 1);
    assert_int_equal(fb_send_request(&fx->fb, &fx->ready, addr, payload, &meta), 0);
}

/*
 * The library works only inside mzb_handler_recv, so a test that waits for
 * the handler to act must keep calling it: a single recv of fixed length
 * races the ipc delivery on a loaded machine. Runs the handler in short
 * slices, checking it hands out no request, until the bridge gets a message
 * with command cmd. Returns 0 with *m filled, or -1 after wait_ms.
 */
static int pump_until(struct fixture *fx, int cmd, struct fb_msg *m, int wait_ms)
{
    uint64_t deadline = mzb_now_ms() + (uint64_t)wait_ms;

    do {
        expect_no_request(fx, SLICE_MS);
        if (fb_expect(&fx->fb, cmd, m, SLICE_MS, NULL) == 0) {
            return 0;
        }
    } while (mzb_now_ms() < deadline);
    return -1;
}

static void check_reply(struct fixture *fx, struct fb_msg *m, uint64_t addr, const char *body)
{
    assert_int_equal(m->count, 7);
    assert_int_equal(m->len[0], fx->ready.len[0]);
    assert_memory_equal(m->data[0], fx->ready.data[0], m->len[0]);
    assert_int_equal(m->len[4], 8);
    assert_true(mzb_get_u64(m->data[4]) == addr);
    assert_int_equal(m->len[5], 0);
    assert_int_equal(m->len[6], strlen(body));
    assert_memory_equal(m->data[6], body, m->len[6]);
    fb_msg_free(m);
}

/* Waits for a REPLY the handler has already sent and checks its client address and body. */
static void expect_reply(struct fixture *fx, uint64_t addr, const char *body)
{
    struct fb_msg m;

    assert_int_equal(fb_expect(&fx->fb, MDP_REPLY, &m, WAIT_MS, NULL), 0);
    check_reply(fx, &m, addr, body);
}

/* Runs the handler until it answers a request itself, handing out nothing meanwhile. */
static void expect_answer_without_request(struct fixture *fx, uint64_t addr)
{
    struct fb_msg m;

    assert_int_equal(pump_until(fx, MDP_REPLY, &m, WAIT_MS), 0);
    check_reply(fx, &m, addr, "");
}

/* Runs the handler until it sends READY on a new connection, handing out nothing meanwhile. */
static void expect_new_connection(struct fixture *fx)
{
    struct fb_msg again;

    assert_int_equal(pump_until(fx, MDP_READY, &again, WAIT_MS), 0);
    assert_int_equal(again.len[4], strlen(SERVICE));
    assert_false(again.len[0] == fx->ready.len[0] &&
                 memcmp(again.data[0], fx->ready.data[0], again.len[0]) == 0);
    fb_msg_free(&again);
}

static void test_ready_names_the_service_and_offers_credit(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(fx->ready.count, 6);
    assert_int_equal(fb_command(&fx->ready), MDP_READY);
    assert_int_equal(fx->ready.len[4], strlen(SERVICE));
    assert_memory_equal(fx->ready.data[4], SERVICE, strlen(SERVICE));
    assert_text((const char *)fx->ready.data[5], fx->ready.len[5], "credit=64");
}

static void test_credit_one_is_plain_mdp(void **state)
{
    struct fixture *fx = *state;
    struct mzb_handler_options opts = test_options(fx);

    mzb_handler_destroy(&fx->h);
    fb_msg_free(&fx->ready);
    opts.credit = 1;
    assert_int_equal(connect_handler(fx, &opts), 0);
    assert_int_equal(fx->ready.count, 5);

    mzb_handler_destroy(&fx->h);
    fb_msg_free(&fx->ready);
    opts.credit = 1000;
    assert_int_equal(connect_handler(fx, &opts), 0);
    assert_int_equal(fx->ready.count, 6);
    assert_text((const char *)fx->ready.data[5], fx->ready.len[5], "credit=1000");
}

static void test_credit_is_offered_again_on_reconnect(void **state)
{
    struct fixture *fx = *state;
    struct fb_msg again;

    assert_int_equal(
        fb_send_command(&fx->fb, fx->ready.data[0], fx->ready.len[0], MDP_DISCONNECT, NULL, 0), 0);
    assert_int_equal(pump_until(fx, MDP_READY, &again, WAIT_MS), 0);
    assert_int_equal(again.count, 6);
    assert_text((const char *)again.data[5], again.len[5], "credit=64");
    fb_msg_free(&again);
}

static struct mzb_bytes b(const char *s)
{
    struct mzb_bytes out = {(const uint8_t *)s, strlen(s)};

    return out;
}

static void fill_v5_request(struct mzb_meta *m)
{
    static const uint8_t corr[] = {0x00, 0xff, 0x01};

    memset(m, 0, sizeof(*m));
    m->mode = MZB_MODE_REQUEST;
    m->qos = 2;
    m->retain = 1;
    m->protocol = 5;
    m->reply_qos = 1;
    m->msg_id = 0xabcdef0123456789ULL;
    m->timeout_ms = 2500;
    m->topic = b("rpc/echo");
    m->client_id = b("client-7");
    m->username = b("alice");
    m->has_username = 1;
    m->content_type = b("text/plain");
    m->has_content_type = 1;
    m->response_topic = b("reply/client-7/1");
    m->has_response_topic = 1;
    m->correlation.ptr = corr;
    m->correlation.len = sizeof(corr);
    m->has_correlation = 1;
    m->reply_topic = b("reply/client-7/1");
    m->has_reply_topic = 1;
    m->route = b("rpc/#");
    m->user_prop_count = 2;
    m->user_props[0].key = b("k");
    m->user_props[0].value = b("v1");
    m->user_props[1].key = b("k");
    m->user_props[1].value = b("");
}

static void check_v5_numbers(const struct mzb_request *req)
{
    uint64_t id = 0;

    assert_true(mzb_request_has_metadata(req));
    assert_non_null(mzb_request_meta(req));
    assert_int_equal(mzb_request_mode(req), MZB_MODE_REQUEST);
    assert_int_equal(mzb_request_qos(req), 2);
    assert_int_equal(mzb_request_retain(req), 1);
    assert_int_equal(mzb_request_protocol(req), 5);
    assert_int_equal(mzb_request_timeout_ms(req), 2500);
    assert_int_equal(mzb_request_message_id(req, &id), 1);
    assert_true(id == 0xabcdef0123456789ULL);
}

static void check_v5_strings(const struct mzb_request *req)
{
    const char *s;
    const uint8_t *corr;
    size_t len;

    s = mzb_request_topic(req, &len);
    assert_text(s, len, "rpc/echo");
    s = mzb_request_client_id(req, &len);
    assert_text(s, len, "client-7");
    s = mzb_request_username(req, &len);
    assert_text(s, len, "alice");
    s = mzb_request_content_type(req, &len);
    assert_text(s, len, "text/plain");
    s = mzb_request_response_topic(req, &len);
    assert_text(s, len, "reply/client-7/1");
    s = mzb_request_reply_topic(req, &len);
    assert_text(s, len, "reply/client-7/1");
    s = mzb_request_route(req, &len);
    assert_text(s, len, "rpc/#");
    corr = mzb_request_correlation(req, &len);
    assert_int_equal(len, 3);
    assert_int_equal(corr[0], 0x00);
    assert_int_equal(corr[1], 0xff);
}

static void check_v5_properties(const struct mzb_request *req)
{
    const char *key, *value;
    size_t key_len, value_len;

    assert_int_equal(mzb_request_user_property_count(req), 2);
    assert_int_equal(mzb_request_user_property(req, 0, &key, &key_len, &value, &value_len),
                     MZB_HANDLER_OK);
    assert_text(key, key_len, "k");
    assert_text(value, value_len, "v1");
    assert_int_equal(mzb_request_user_property(req, 1, &key, &key_len, &value, &value_len),
                     MZB_HANDLER_OK);
    assert_text(value, value_len, "");
    assert_int_equal(mzb_request_user_property(req, 2, &key, NULL, NULL, NULL),
                     MZB_HANDLER_E_INVALID);
}

/* With credit the bridge sends several at once: each comes out, in order, and is answered. */
static void test_waiting_requests_come_out_in_order(void **state)
{
    struct fixture *fx = *state;
    struct mzb_request *req[5];
    const char *payload;
    char want[8];
    size_t len;

    for (uint64_t i = 0; i < 5; i++) {
        snprintf(want, sizeof(want), "e%d", (int)i);
        send_event(fx, 200 + i, 200 + i, want);
    }
    for (int i = 0; i < 5; i++) {
        req[i] = expect_request(fx);
        payload = mzb_request_payload(req[i], &len);
        snprintf(want, sizeof(want), "e%d", i);
        assert_text(payload, len, want);
    }
    expect_no_request(fx, 0);

    /* Answers may go in any order; each names its own request. */
    for (int i = 4; i >= 0; i--) {
        snprintf(want, sizeof(want), "r%d", i);
        assert_int_equal(mzb_handler_reply(fx->h, req[i], want, strlen(want)), MZB_HANDLER_OK);
        expect_reply(fx, 200 + (uint64_t)i, want);
    }
}

static void test_request_carries_metadata(void **state)
{
    struct fixture *fx = *state;
    struct mzb_request *req;
    struct mzb_meta meta;
    const char *payload;
    size_t len;

    fill_v5_request(&meta);
    assert_int_equal(fb_send_request(&fx->fb, &fx->ready, 42, "hello", &meta), 0);
    req = expect_request(fx);

    payload = mzb_request_payload(req, &len);
    assert_text(payload, len, "hello");
    check_v5_numbers(req);
    check_v5_strings(req);
    check_v5_properties(req);
    assert_int_equal(mzb_handler_reply(fx->h, req, "answer", 6), MZB_HANDLER_OK);
    expect_reply(fx, 42, "answer");
}

static void test_absent_fields_are_null(void **state)
{
    struct fixture *fx = *state;
    struct mzb_request *req;
    size_t len = 99;

    send_event(fx, 1, 1, "");
    req = expect_request(fx);
    assert_null(mzb_request_username(req, &len));
    assert_int_equal(len, 0);
    assert_null(mzb_request_correlation(req, NULL));
    assert_null(mzb_request_response_topic(req, NULL));
    assert_non_null(mzb_request_payload(req, &len));
    assert_int_equal(len, 0);
    assert_int_equal(mzb_request_user_property_count(req), 0);
    mzb_handler_done(fx->h, req);
    expect_reply(fx, 1, "");
}

static void test_done_sends_an_empty_reply(void **state)
{
    struct fixture *fx = *state;

    send_event(fx, 0x0102030405060708ULL, 77, "data");
    assert_int_equal(mzb_handler_done(fx->h, expect_request(fx)), MZB_HANDLER_OK);
    expect_reply(fx, 0x0102030405060708ULL, "");
}

static void test_binary_payload_round_trips(void **state)
{
    struct fixture *fx = *state;
    static const uint8_t data[] = {0x00, 0x01, 0xff, 0x00, 0x7f};
    uint8_t address[8] = {0, 0, 0, 0, 0, 0, 0, 9};
    struct fb_frame extra[3] = {{address, 8}, {"", 0}, {data, sizeof(data)}};
    struct mzb_request *req;
    const void *p;
    size_t len;
    struct fb_msg m;

    assert_int_equal(
        fb_send_command(&fx->fb, fx->ready.data[0], fx->ready.len[0], MDP_REQUEST, extra, 3), 0);
    req = expect_request(fx);
    p = mzb_request_payload(req, &len);
    assert_int_equal(len, sizeof(data));
    assert_memory_equal(p, data, len);
    mzb_handler_reply(fx->h, req, p, len);

    assert_int_equal(fb_expect(&fx->fb, MDP_REPLY, &m, WAIT_MS, NULL), 0);
    assert_int_equal(m.len[6], sizeof(data));
    assert_memory_equal(m.data[6], data, sizeof(data));
    fb_msg_free(&m);
}

static void test_plain_mdp_request_has_no_metadata(void **state)
{
    struct fixture *fx = *state;
    struct mzb_request *req;
    uint64_t id = 5;
    size_t len = 5;

    assert_int_equal(fb_send_request(&fx->fb, &fx->ready, 3, "plain", NULL), 0);
    req = expect_request(fx);
    assert_false(mzb_request_has_metadata(req));
    assert_null(mzb_request_meta(req));
    assert_null(mzb_request_topic(req, &len));
    assert_int_equal(len, 0);
    assert_null(mzb_request_client_id(req, NULL));
    assert_int_equal(mzb_request_qos(req), -1);
    assert_int_equal(mzb_request_mode(req), -1);
    assert_int_equal(mzb_request_retain(req), -1);
    assert_int_equal(mzb_request_timeout_ms(req), -1);
    assert_int_equal(mzb_request_message_id(req, &id), 0);
    assert_int_equal(mzb_request_user_property_count(req), 0);
    assert_int_equal(mzb_handler_reply(fx->h, req, "ok", 2), MZB_HANDLER_OK);
    expect_reply(fx, 3, "ok");
}

static void test_heartbeats_are_sent(void **state)
{
    struct fixture *fx = *state;
    uint64_t start = mzb_now_ms();
    int heartbeats = 0;
    struct fb_msg m;

    /*
     * Nothing but heartbeats should come while the handler waits: count them.
     * Four take 150 ms; a second leaves room for a loaded machine yet still
     * catches an interval read in the wrong unit.
     */
    while (heartbeats < 4 && mzb_now_ms() - start < 20 * HEARTBEAT_MS) {
        expect_no_request(fx, SLICE_MS);
        assert_int_equal(fb_expect(&fx->fb, MDP_DISCONNECT, &m, SLICE_MS, &heartbeats), -1);
    }
    assert_true(heartbeats >= 4);

    /* All were sent since start, each at least a heartbeat after the one before. */
    assert_true(mzb_now_ms() - start >= (uint64_t)(heartbeats - 1) * HEARTBEAT_MS);
}

static void test_duplicate_event_is_answered_not_delivered(void **state)
{
    struct fixture *fx = *state;
    struct mzb_request *req;
    uint64_t id = 0;

    send_event(fx, 10, 1000, "first");
    mzb_handler_done(fx->h, expect_request(fx));
    expect_reply(fx, 10, "");

    /* The resend after a bridge restart: same message id, new client address. */
    send_event(fx, 11, 1000, "first");
    expect_answer_without_request(fx, 11);

    send_event(fx, 12, 1001, "second");
    req = expect_request(fx);
    assert_int_equal(mzb_request_message_id(req, &id), 1);
    assert_true(id == 1001);
    mzb_handler_done(fx->h, req);
    expect_reply(fx, 12, "");
}

static void test_resent_request_mode_is_delivered_again(void **state)
{
    struct fixture *fx = *state;
    struct mzb_meta meta;

    /* An answer is owed to a waiting requester, so a resent request runs again. */
    fill_v5_request(&meta);
    assert_int_equal(fb_send_request(&fx->fb, &fx->ready, 20, "q", &meta), 0);
    mzb_handler_reply(fx->h, expect_request(fx), "a1", 2);
    expect_reply(fx, 20, "a1");

    assert_int_equal(fb_send_request(&fx->fb, &fx->ready, 21, "q", &meta), 0);
    mzb_handler_reply(fx->h, expect_request(fx), "a2", 2);
    expect_reply(fx, 21, "a2");
}

static void test_dedup_forgets_the_oldest(void **state)
{
    struct fixture *fx = *state;
    struct mzb_handler_options opts = test_options(fx);

    /* A handler that remembers only two finished events. */
    mzb_handler_destroy(&fx->h);
    fb_msg_free(&fx->ready);
    opts.dedup_size = 2;
    assert_int_equal(connect_handler(fx, &opts), 0);

    for (uint64_t id = 1; id <= 3; id++) {
        send_event(fx, id, id, "x");
        mzb_handler_done(fx->h, expect_request(fx));
        expect_reply(fx, id, "");
    }
    send_event(fx, 4, 3, "x");
    expect_answer_without_request(fx, 4);
    send_event(fx, 5, 1, "x");
    mzb_handler_done(fx->h, expect_request(fx));
    expect_reply(fx, 5, "");
}

static void test_silent_bridge_causes_reconnect(void **state)
{
    struct fixture *fx = *state;
    struct mzb_handler_options opts = test_options(fx);
    uint64_t start;

    mzb_handler_destroy(&fx->h);
    fb_msg_free(&fx->ready);
    opts.heartbeat_ms = 30;
    opts.liveness = 3;
    start = mzb_now_ms();
    assert_int_equal(connect_handler(fx, &opts), 0);

    /* The fake bridge says nothing, so after 90 ms, and not before, the handler starts over. */
    expect_new_connection(fx);
    assert_true(mzb_now_ms() - start >= 90);
}

/*
 * Bridge heartbeats every slice keep a handler with a 500 ms silence limit
 * connected for three times that long. The limit is far above the slice so
 * that a loaded machine, stalling a slice or two, cannot fake a silence.
 */
static void test_bridge_heartbeats_keep_the_connection(void **state)
{
    struct fixture *fx = *state;
    struct mzb_handler_options opts = test_options(fx);
    uint64_t start;
    struct fb_msg m;

    mzb_handler_destroy(&fx->h);
    fb_msg_free(&fx->ready);
    opts.liveness = 10;
    assert_int_equal(connect_handler(fx, &opts), 0);

    start = mzb_now_ms();
    while (mzb_now_ms() - start < 3 * (uint64_t)opts.heartbeat_ms * opts.liveness) {
        assert_int_equal(
            fb_send_command(&fx->fb, fx->ready.data[0], fx->ready.len[0], MDP_HEARTBEAT, NULL, 0),
            0);
        expect_no_request(fx, SLICE_MS);
        assert_int_equal(fb_expect(&fx->fb, MDP_READY, &m, 0, NULL), -1);
    }
    assert_int_equal(fb_expect(&fx->fb, MDP_READY, &m, 200, NULL), -1);
}

static void test_disconnect_from_bridge_causes_reconnect(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(
        fb_send_command(&fx->fb, fx->ready.data[0], fx->ready.len[0], MDP_DISCONNECT, NULL, 0), 0);
    expect_new_connection(fx);
}

static void test_reply_after_reconnect_is_not_sent(void **state)
{
    struct fixture *fx = *state;
    struct mzb_request *req;
    struct fb_msg m;

    send_event(fx, 30, 30, "x");
    req = expect_request(fx);
    assert_int_equal(
        fb_send_command(&fx->fb, fx->ready.data[0], fx->ready.len[0], MDP_DISCONNECT, NULL, 0), 0);
    expect_new_connection(fx);

    assert_int_equal(mzb_handler_done(fx->h, req), MZB_HANDLER_OK);
    assert_int_equal(fb_expect(&fx->fb, MDP_REPLY, &m, 200, NULL), -1);
}

static void send_raw(struct fixture *fx, const struct fb_frame *frames, size_t n)
{
    struct fb_frame all[FB_MAX_FRAMES] = {{fx->ready.data[0], fx->ready.len[0]}};

    if (n > 0) {
        memcpy(all + 1, frames, n * sizeof(*frames));
    }
    assert_int_equal(fb_send(&fx->fb, all, n + 1), 0);
}

static void send_malformed(struct fixture *fx)
{
    static const uint8_t req_cmd = MDP_REQUEST, ready_cmd = MDP_READY, bad_cmd = 0x7f;
    static const uint8_t addr[8] = {0};
    const struct fb_frame not_empty[] = {{"x", 1}, {MDP_WORKER_ID, 6}, {&req_cmd, 1}};
    const struct fb_frame wrong_proto[] = {{"", 0}, {"MDPC01", 6}, {&req_cmd, 1}};
    const struct fb_frame long_cmd[] = {{"", 0}, {MDP_WORKER_ID, 6}, {"\x02\x02", 2}};
    const struct fb_frame unknown_cmd[] = {{"", 0}, {MDP_WORKER_ID, 6}, {&bad_cmd, 1}};
    const struct fb_frame ready[] = {{"", 0}, {MDP_WORKER_ID, 6}, {&ready_cmd, 1}, {"s", 1}};
    const struct fb_frame short_req[] = {{"", 0}, {MDP_WORKER_ID, 6}, {&req_cmd, 1}, {addr, 8}};
    const struct fb_frame no_gap[] = {{"", 0},   {MDP_WORKER_ID, 6}, {&req_cmd, 1},
                                      {addr, 8}, {"x", 1},           {"p", 1}};
    const struct fb_frame no_addr[] = {{"", 0}, {MDP_WORKER_ID, 6}, {&req_cmd, 1}, {"", 0}, {"", 0},
                                       {"p", 1}};

    send_raw(fx, NULL, 0);
    send_raw(fx, not_empty, 1);
    send_raw(fx, not_empty, 3);
    send_raw(fx, wrong_proto, 3);
    send_raw(fx, long_cmd, 3);
    send_raw(fx, unknown_cmd, 3);
    send_raw(fx, ready, 4);
    send_raw(fx, short_req, 4);
    send_raw(fx, no_gap, 6);
    send_raw(fx, no_addr, 6);
}

static void send_bad_metadata(struct fixture *fx, uint64_t addr_value, const void *meta, size_t len)
{
    static const uint8_t req_cmd = MDP_REQUEST;
    uint8_t addr[8];
    const struct fb_frame frames[] = {{"", 0}, {MDP_WORKER_ID, 6}, {&req_cmd, 1}, {addr, 8},
                                      {"", 0}, {"p", 1},           {meta, len}};

    mzb_put_u64(addr, addr_value);
    send_raw(fx, frames, 7);
}

static void test_malformed_messages_are_dropped(void **state)
{
    struct fixture *fx = *state;
    uint8_t header[20] = {1, 0, 0, 0, 4};
    uint8_t bad_version[20] = {9};
    uint8_t bad_qos[20] = {1, 0, 3};
    uint8_t runs_past[30] = {1, 0, 0, 0, 4};
    struct mzb_request *req;
    const char *payload;
    size_t len;

    runs_past[20] = MZB_TAG_TOPIC;
    runs_past[24] = 200; /* the topic claims 200 bytes, 5 are there */

    send_malformed(fx);
    send_bad_metadata(fx, 101, header, 10);
    send_bad_metadata(fx, 102, bad_version, sizeof(bad_version));
    send_bad_metadata(fx, 103, bad_qos, sizeof(bad_qos));
    send_bad_metadata(fx, 104, runs_past, sizeof(runs_past));
    send_bad_metadata(fx, 105, header, sizeof(header)); /* no topic */
    send_event(fx, 106, 106, "good");

    /* Only the good one comes out; each request with an address got an empty answer. */
    req = expect_request(fx);
    payload = mzb_request_payload(req, &len);
    assert_text(payload, len, "good");
    for (uint64_t a = 101; a <= 105; a++) {
        expect_reply(fx, a, "");
    }
    mzb_handler_reply(fx->h, req, "fine", 4);
    expect_reply(fx, 106, "fine");
}

static void test_extra_frames_are_ignored(void **state)
{
    struct fixture *fx = *state;
    static const uint8_t req_cmd = MDP_REQUEST;
    uint8_t addr[8] = {0, 0, 0, 0, 0, 0, 0, 50};
    uint8_t meta_buf[256];
    size_t meta_len;
    struct mzb_meta meta;
    struct fb_frame frames[20] = {{"", 0}, {MDP_WORKER_ID, 6}, {&req_cmd, 1}, {addr, 8},
                                  {"", 0}, {"payload", 7},     {meta_buf, 0}};
    struct mzb_request *req;
    const char *text;
    size_t len;

    fb_event_meta(&meta, "t/x", "c", 50, 0);
    assert_int_equal(mzb_meta_encode(&meta, meta_buf, sizeof(meta_buf), &meta_len), MZB_META_OK);
    frames[6].len = meta_len;
    for (int i = 7; i < 20; i++) {
        frames[i].data = "extra";
        frames[i].len = 5;
    }
    send_raw(fx, frames, 20);

    req = expect_request(fx);
    text = mzb_request_payload(req, &len);
    assert_text(text, len, "payload");
    text = mzb_request_topic(req, &len);
    assert_text(text, len, "t/x");
    mzb_handler_done(fx->h, req);
    expect_reply(fx, 50, "");
}

static void test_interrupt_stops_recv(void **state)
{
    struct fixture *fx = *state;
    struct mzb_request *req = (struct mzb_request *)1;

    mzb_handler_interrupt(fx->h);
    assert_int_equal(mzb_handler_recv(fx->h, &req, WAIT_MS), MZB_HANDLER_E_INTERRUPTED);
    assert_null(req);
    assert_int_equal(mzb_handler_recv(fx->h, &req, -1), MZB_HANDLER_E_INTERRUPTED);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_signal_wakes_recv(void **state)
{
    struct fixture *fx = *state;
    struct sigaction sa;
    /* Repeating: a loaded machine may deliver the first one before recv starts waiting. */
    struct itimerval timer = {{0, 100000}, {0, 100000}};
    struct itimerval off = {{0, 0}, {0, 0}};
    struct mzb_request *req;
    uint64_t start = mzb_now_ms();
    uint64_t took;
    int rc;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    assert_int_equal(setitimer(ITIMER_REAL, &timer, NULL), 0);

    rc = mzb_handler_recv(fx->h, &req, 3000);
    took = mzb_now_ms() - start;

    /* Disarmed before any assertion, so a failure leaves no timer behind for the next test. */
    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    signal(SIGALRM, SIG_DFL);
    assert_int_equal(rc, MZB_HANDLER_E_INTERRUPTED);
    assert_true(took < 2000);
}

static void test_timeout_zero_does_not_wait(void **state)
{
    struct fixture *fx = *state;
    struct mzb_handler_options opts = test_options(fx);
    uint64_t start;

    /* Nothing falls due for 5 s, so a recv that waited at all would take seconds. */
    mzb_handler_destroy(&fx->h);
    fb_msg_free(&fx->ready);
    opts.heartbeat_ms = 5000;
    assert_int_equal(connect_handler(fx, &opts), 0);

    start = mzb_now_ms();
    expect_no_request(fx, 0);
    assert_true(mzb_now_ms() - start < 1000);
}

static void test_destroy_sends_disconnect(void **state)
{
    struct fixture *fx = *state;
    struct fb_msg m;

    mzb_handler_destroy(&fx->h);
    assert_null(fx->h);
    assert_int_equal(fb_expect(&fx->fb, MDP_DISCONNECT, &m, WAIT_MS, NULL), 0);
    assert_int_equal(m.len[0], fx->ready.len[0]);
    fb_msg_free(&m);
    mzb_handler_destroy(&fx->h);
    mzb_handler_destroy(NULL);
}

static void test_new_rejects_bad_options(void **state)
{
    struct fixture *fx = *state;
    struct mzb_handler_options opts = test_options(fx);
    struct mzb_request *req;

    assert_null(mzb_handler_new(NULL));
    opts.service = "";
    assert_null(mzb_handler_new(&opts));
    opts.service = SERVICE;
    opts.endpoint = NULL;
    assert_null(mzb_handler_new(&opts));
    opts.endpoint = "nonsense://x";
    assert_null(mzb_handler_new(&opts));
    opts.endpoint = "tcp://";
    assert_null(mzb_handler_new(&opts));
    opts.endpoint = fx->fb.endpoint;
    opts.credit = MZB_HANDLER_MAX_CREDIT + 1;
    assert_null(mzb_handler_new(&opts));

    assert_int_equal(mzb_handler_recv(NULL, &req, 0), MZB_HANDLER_E_INVALID);
    assert_null(req);
    assert_int_equal(mzb_handler_done(NULL, NULL), MZB_HANDLER_E_INVALID);
    mzb_request_free(NULL);
    mzb_handler_interrupt(NULL);
}

static void test_shared_context(void **state)
{
    struct fixture *fx = *state;
    struct mzb_handler_options opts = test_options(fx);
    struct fb_msg ready;

    opts.zmq_context = fx->fb.ctx;
    opts.service = "shared";
    fx->h = mzb_handler_new(&opts);
    assert_non_null(fx->h);
    assert_int_equal(fb_expect(&fx->fb, MDP_READY, &ready, WAIT_MS, NULL), 0);
    assert_memory_equal(ready.data[4], "shared", 6);
    fb_msg_free(&ready);
    mzb_handler_destroy(&fx->h);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(mzb_handler_strerror(MZB_HANDLER_OK), "no error");
    assert_non_null(mzb_handler_strerror(MZB_HANDLER_E_ZMQ));
    assert_string_equal(mzb_handler_strerror(-1), "unknown handler error");
    assert_string_equal(mzb_handler_strerror(99), "unknown handler error");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T_BARE(fn) cmocka_unit_test_setup_teardown(fn, setup_bridge_only, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ready_names_the_service_and_offers_credit),
        T(test_credit_one_is_plain_mdp),
        T(test_credit_is_offered_again_on_reconnect),
        T(test_waiting_requests_come_out_in_order),
        T(test_request_carries_metadata),
        T(test_absent_fields_are_null),
        T(test_done_sends_an_empty_reply),
        T(test_binary_payload_round_trips),
        T(test_plain_mdp_request_has_no_metadata),
        T(test_heartbeats_are_sent),
        T(test_duplicate_event_is_answered_not_delivered),
        T(test_resent_request_mode_is_delivered_again),
        T(test_dedup_forgets_the_oldest),
        T(test_silent_bridge_causes_reconnect),
        T(test_bridge_heartbeats_keep_the_connection),
        T(test_disconnect_from_bridge_causes_reconnect),
        T(test_reply_after_reconnect_is_not_sent),
        T(test_malformed_messages_are_dropped),
        T(test_extra_frames_are_ignored),
        T(test_interrupt_stops_recv),
        T(test_signal_wakes_recv),
        T(test_timeout_zero_does_not_wait),
        T(test_destroy_sends_disconnect),
        T_BARE(test_new_rejects_bad_options),
        T_BARE(test_shared_context),
        cmocka_unit_test(test_strerror),
    };

    mzb_log_init("test_handler", getenv("MZB_TEST_DEBUG") ? MZB_LOG_DEBUG : MZB_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
