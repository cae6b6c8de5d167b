/*
 * The broker's-thread path (message.c, tick.c) without a broker: the mosquitto_*
 * functions it calls are stubbed here, and a fake bridge (fake_bridge.c)
 * receives what the plugin's I/O thread forwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "fake_bridge.h"
#include "mosq_property_mirror.h"
#include "mzb_meta.h"
#include "plugin.h"
#include "props.h"

/* The stubs' view of a client. */
struct mosquitto {
    const char *id;
    const char *username;
    int version;
};

static char last_log[2048];
static int log_count;

const char *mosquitto_client_id(const struct mosquitto *client)
{
    return client->id;
}

const char *mosquitto_client_username(const struct mosquitto *client)
{
    return client->username;
}

int mosquitto_client_protocol_version(const struct mosquitto *client)
{
    return client->version;
}

void mosquitto_log_printf(int level, const char *fmt, ...)
{
    va_list ap;

    (void)level;
    va_start(ap, fmt);
    vsnprintf(last_log, sizeof(last_log), fmt, ap);
    va_end(ap);
    log_count++;
}

static const char config_text[] =
    "{\"bridge\": {\"plugin_endpoint\": \"tcp://127.0.0.1:18898\","
    "              \"handler_endpoint\": \"tcp://127.0.0.1:18899\"},"
    " \"plugin\": {\"qos2_dedup_ms\": 60000, \"log_interval_s\": 1},"
    " \"routes\": ["
    "  {\"filter\": \"ev/#\", \"service\": \"store\", \"mode\": \"event\"},"
    "  {\"filter\": \"rpc/#\", \"service\": \"echo\", \"mode\": \"request\","
    "   \"reply_pattern\": \"reply/{client_id}/#\","
    "   \"reply_topic\": \"reply/{client_id}/{topic}\", \"timeout_ms\": 1500},"
    "  {\"filter\": \"bare/#\", \"service\": \"bare\", \"mode\": \"request\", \"qos\": 0},"
    "  {\"filter\": \"user/#\", \"service\": \"user\", \"mode\": \"request\","
    "   \"reply_topic\": \"r/{username}/x\"}"
    " ]}";

struct fixture {
    void *zctx;
    struct fake_bridge fb;
    struct mzbp_ctx *ctx;
    struct mosquitto client;
    struct mzbp_mosq_property props[8];
    size_t prop_count;
};

static void load_routes(struct mzbp_ctx *ctx)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;

    assert_int_equal(
        mzb_config_load_string(config_text, strlen(config_text), "test.json", &cfg, &err),
        MZB_CONFIG_OK);
    assert_int_equal(mzbp_routes_build(cfg, &ctx->routes), MZBP_ROUTES_OK);
}

static void start_io(struct fixture *f)
{
    struct mzbp_io_settings settings = {
        .endpoint = f->fb.endpoint,
        .queue_limit = 100,
        .max_unacked = 100,
        .instance = 1,
    };
    struct mzbp_io_error err;

    assert_int_equal(mzbp_io_start(&settings, &f->ctx->stats, &f->ctx->io, &err), 0);
    f->ctx->endpoint = strdup(f->fb.endpoint);
    f->ctx->queue_limit = 100;
    fake_bridge_serve_heartbeats(&f->fb, &f->ctx->stats, 9, 1);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->zctx = zmq_ctx_new();
    f->ctx = calloc(1, sizeof(*f->ctx));
    assert_non_null(f->ctx);
    mzbp_stats_init(&f->ctx->stats);
    mzbp_dedup_clear(&f->ctx->dedup);
    f->ctx->hash_seed = 12345;
    f->ctx->id_prefix = UINT64_C(0x123456) << 40;
    load_routes(f->ctx);
    fake_bridge_bind(&f->fb, f->zctx, "tcp://127.0.0.1:*");
    start_io(f);
    f->client.id = "c1";
    f->client.version = 5;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    mzbp_io_stop(&f->ctx->io);
    mzbp_routes_destroy(&f->ctx->routes);
    free(f->ctx->endpoint);
    free(f->ctx);
    fake_bridge_close(&f->fb);
    assert_int_equal(zmq_ctx_term(f->zctx), 0);
    free(f);
    return 0;
}

static void add_string_prop(struct fixture *f, int32_t id, const char *v, size_t len)
{
    struct mzbp_mosq_property *p = &f->props[f->prop_count];

    memset(p, 0, sizeof(*p));
    p->identifier = id;
    p->value.s.v = (char *)v;
    p->value.s.len = (uint16_t)len;
    if (f->prop_count > 0) {
        f->props[f->prop_count - 1].next = p;
    }
    f->prop_count++;
}

static int publish(struct fixture *f, const char *topic, const void *payload, uint32_t len, int qos)
{
    struct mosquitto_evt_message ev;

    memset(&ev, 0, sizeof(ev));
    ev.client = &f->client;
    ev.topic = (char *)topic;
    ev.payload = (void *)payload;
    ev.payloadlen = len;
    ev.qos = (uint8_t)qos;
    ev.properties = f->prop_count > 0 ? (mosquitto_property *)&f->props[0] : NULL;
    return mzbp_on_message(MOSQ_EVT_MESSAGE, &ev, f->ctx);
}

/* Receives the next DISPATCH and decodes its metadata into m (which borrows from r). */
static void next_meta(struct fixture *f, struct received *r, struct mzb_meta *m)
{
    assert_true(fake_bridge_next_dispatch(&f->fb, r, 9));
    assert_int_equal(mzb_meta_decode(zmq_msg_data(&r->frames[3]), zmq_msg_size(&r->frames[3]), m),
                     MZB_META_OK);
}

static void assert_bytes(struct mzb_bytes b, const char *want)
{
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.ptr, want, b.len);
}

/* No dispatch reaches the bridge within a short wait. */
static void assert_nothing_sent(struct fixture *f)
{
    struct received r;

    while (fake_bridge_recv(&f->fb, &r, 300)) {
        assert_int_equal(received_command(&r), 0x02); /* heartbeats only */
        received_close(&r);
    }
}

static void test_event_metadata(void **state)
{
    struct fixture *f = *state;
    struct received r;
    struct mzb_meta m;

    f->client.username = "bob";
    assert_int_equal(publish(f, "ev/a", "hi", 2, 1), MOSQ_ERR_SUCCESS);
    next_meta(f, &r, &m);
    assert_memory_equal(zmq_msg_data(&r.frames[2]), "store", 5);
    assert_int_equal(m.mode, MZB_MODE_EVENT);
    assert_int_equal(m.qos, 1);
    assert_int_equal(m.protocol, 5);
    assert_int_equal(m.timeout_ms, 0);
    assert_true(m.msg_id >> 40 == 0x123456);
    assert_bytes(m.topic, "ev/a");
    assert_bytes(m.client_id, "c1");
    assert_true(m.has_username);
    assert_bytes(m.username, "bob");
    assert_bytes(m.route, "ev/#");
    assert_false(m.has_reply_topic);
    received_close(&r);
}

static void test_own_client_and_dollar_topics_are_skipped(void **state)
{
    struct fixture *f = *state;

    f->client.id = "mzb-bridge";
    assert_int_equal(publish(f, "ev/a", "x", 1, 1), MOSQ_ERR_SUCCESS);
    f->client.id = "c1";
    assert_int_equal(publish(f, "$SYS/ev", "x", 1, 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(publish(f, "nothing/here", "x", 1, 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(mzbp_stat_get(&f->ctx->stats.messages_seen), 3);
    assert_int_equal(mzbp_stat_get(&f->ctx->stats.messages_routed), 0);
    assert_nothing_sent(f);
}

static void test_response_topic_inside_pattern_is_the_reply_topic(void **state)
{
    struct fixture *f = *state;
    static const char corr[] = {0, (char)0xff, 0, 7};
    struct received r;
    struct mzb_meta m;

    add_string_prop(f, MZBP_PROP_RESPONSE_TOPIC, "reply/c1/here", 13);
    add_string_prop(f, MZBP_PROP_CORRELATION_DATA, corr, sizeof(corr));
    assert_int_equal(publish(f, "rpc/x", NULL, 0, 2), MOSQ_ERR_SUCCESS);
    next_meta(f, &r, &m);
    assert_int_equal(m.mode, MZB_MODE_REQUEST);
    assert_int_equal(m.timeout_ms, 1500);
    assert_int_equal(m.reply_qos, 2);
    assert_true(m.has_reply_topic);
    assert_bytes(m.reply_topic, "reply/c1/here");
    assert_bytes(m.response_topic, "reply/c1/here");
    assert_int_equal(m.correlation.len, sizeof(corr));
    assert_memory_equal(m.correlation.ptr, corr, sizeof(corr));
    assert_int_equal(zmq_msg_size(&r.frames[4]), 0);
    received_close(&r);
}

static void test_bad_response_topics_are_refused(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {"reply/c2/x", "reply/c1/+", "$SYS/x", "reply/c1x/y", "", "#"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f->prop_count = 0;
        add_string_prop(f, MZBP_PROP_RESPONSE_TOPIC, bad[i], strlen(bad[i]));
        assert_int_equal(publish(f, "rpc/x", "p", 1, 1), MOSQ_ERR_SUCCESS);
    }
    assert_int_equal(mzbp_stat_get(&f->ctx->stats.reply_topic_refused), 6);
    assert_int_equal(mzbp_stat_get(&f->ctx->stats.dispatched), 0);
    assert_non_null(strstr(last_log, "\"c1\""));
    assert_non_null(strstr(last_log, "echo"));
    assert_nothing_sent(f);
}

/* A newline in a client id or topic must not start a forged log line. */
static void test_log_lines_quote_client_text(void **state)
{
    struct fixture *f = *state;

    f->client.id = "evil\n1796400000: forged";
    add_string_prop(f, MZBP_PROP_RESPONSE_TOPIC, "elsewhere/\n", 11);
    assert_int_equal(publish(f, "rpc/\nx", "p", 1, 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(mzbp_stat_get(&f->ctx->stats.reply_topic_refused), 1);
    assert_null(strchr(last_log, '\n'));
    assert_non_null(strstr(last_log, "evil?1796400000: forged"));
    assert_non_null(strstr(last_log, "rpc/?x"));
}

static void test_template_without_response_topic(void **state)
{
    struct fixture *f = *state;
    struct received r;
    struct mzb_meta m;

    f->client.version = 4;
    assert_int_equal(publish(f, "rpc/a/b", "p", 1, 1), MOSQ_ERR_SUCCESS);
    next_meta(f, &r, &m);
    assert_int_equal(m.protocol, 4);
    assert_false(m.has_response_topic);
    assert_bytes(m.reply_topic, "reply/c1/rpc/a/b");
    assert_int_equal(m.reply_qos, 1);
    received_close(&r);
}

static void test_template_that_cannot_expand_is_refused(void **state)
{
    struct fixture *f = *state;

    f->client.username = NULL; /* the template needs {username} */
    assert_int_equal(publish(f, "user/a", "p", 1, 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(mzbp_stat_get(&f->ctx->stats.reply_topic_refused), 1);

    f->client.username = "a+b"; /* expands to a topic with a wildcard */
    assert_int_equal(publish(f, "user/a", "p", 1, 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(mzbp_stat_get(&f->ctx->stats.reply_topic_refused), 2);
    assert_nothing_sent(f);
}

static void test_request_without_any_destination_still_goes(void **state)
{
    struct fixture *f = *state;
    struct received r;
    struct mzb_meta m;

    assert_int_equal(publish(f, "bare/x", "p", 1, 2), MOSQ_ERR_SUCCESS);
    next_meta(f, &r, &m);
    assert_false(m.has_reply_topic);
    assert_int_equal(m.reply_qos, 0); /* the route's qos wins over the publish's */
    received_close(&r);
}

static void test_qos2_repeat_is_dispatched_once(void **state)
{
    struct fixture *f = *state;
    struct received r;
    struct mzb_meta m;

    assert_int_equal(publish(f, "ev/q2", "same", 4, 2), MOSQ_ERR_SUCCESS);
    assert_int_equal(publish(f, "ev/q2", "same", 4, 2), MOSQ_ERR_SUCCESS);
    assert_int_equal(publish(f, "ev/q2", "other", 5, 2), MOSQ_ERR_SUCCESS);
    f->client.id = "c2";
    assert_int_equal(publish(f, "ev/q2", "same", 4, 2), MOSQ_ERR_SUCCESS);
    /* QoS 1 is never deduplicated: the broker delivers its repeats too. */
    assert_int_equal(publish(f, "ev/q2", "same", 4, 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(publish(f, "ev/q2", "same", 4, 1), MOSQ_ERR_SUCCESS);

    assert_int_equal(mzbp_stat_get(&f->ctx->stats.qos2_repeats_dropped), 1);
    assert_int_equal(mzbp_stat_get(&f->ctx->stats.dispatched), 5);
    for (int i = 0; i < 5; i++) {
        next_meta(f, &r, &m);
        received_close(&r);
    }
}

/*
 * The TICK lines (tick.c) read the counters only; the I/O thread is stopped
 * first so that it does not rewrite the gauges these tests set.
 */
/* One TICK whose log checks are due (they run at most every MZBP_TICK_LOG_MS). */
static int tick(struct fixture *f)
{
    f->ctx->tick.next_log_ms = 0;
    return mzbp_on_tick(MOSQ_EVT_TICK, NULL, f->ctx);
}

static void start_tick(struct fixture *f, uint32_t max_unacked)
{
    mzbp_io_stop(&f->ctx->io);
    f->ctx->max_unacked = max_unacked;
    mzbp_tick_init(f->ctx, mzb_now_ms());
    assert_int_equal(tick(f), MOSQ_ERR_SUCCESS);
}

static void test_tick_reports_deferrals_once_per_interval(void **state)
{
    struct fixture *f = *state;
    int logged;

    start_tick(f, 100);
    mzbp_stat_add(&f->ctx->stats.retries_received, 5);
    mzbp_stat_set(&f->ctx->stats.deferred, 3);
    f->ctx->tick.next_drop_check_ms = 0;
    assert_int_equal(tick(f), MOSQ_ERR_SUCCESS);
    assert_non_null(strstr(last_log, "5 QoS 1/2 dispatches deferred"));
    assert_non_null(strstr(last_log, "3 waiting now; at most plugin.max_unacked = 100"));
    assert_non_null(strstr(last_log, "bridge.max_queue"));

    /* More of them within plugin.log_interval_s wait for the next line. */
    logged = log_count;
    mzbp_stat_add(&f->ctx->stats.retries_received, 2);
    assert_int_equal(tick(f), MOSQ_ERR_SUCCESS);
    assert_int_equal(log_count, logged);
    f->ctx->tick.next_drop_check_ms = 0;
    assert_int_equal(tick(f), MOSQ_ERR_SUCCESS);
    assert_non_null(strstr(last_log, "2 QoS 1/2 dispatches deferred"));

    /* ids the plugin does not hold get a line of their own. */
    mzbp_stat_add(&f->ctx->stats.retry_unknown, 4);
    f->ctx->tick.next_drop_check_ms = 0;
    assert_int_equal(tick(f), MOSQ_ERR_SUCCESS);
    assert_non_null(strstr(last_log, "4 RETRYs of messages the plugin does not hold"));
}

/* The line for a silent bridge says what really happens to dispatches meanwhile. */
static void test_tick_silent_bridge_line_matches_max_unacked(void **state)
{
    struct fixture *f = *state;

    start_tick(f, 100);
    mzbp_stat_set(&f->ctx->stats.bridge_alive, 0);
    assert_int_equal(tick(f), MOSQ_ERR_SUCCESS);
    assert_non_null(strstr(last_log, "has not answered"));
    assert_non_null(strstr(last_log, "kept in memory up to plugin.max_unacked = 100"));
    assert_non_null(strstr(last_log, "newer ones beyond that are dropped"));
    assert_non_null(strstr(last_log, "QoS 0 ones are not kept"));

    f->ctx->max_unacked = 0;
    mzbp_stat_set(&f->ctx->stats.bridge_alive, 1);
    assert_int_equal(tick(f), MOSQ_ERR_SUCCESS);
    mzbp_stat_set(&f->ctx->stats.bridge_alive, 0);
    assert_int_equal(tick(f), MOSQ_ERR_SUCCESS);
    assert_non_null(strstr(last_log, "has not answered"));
    assert_non_null(strstr(last_log, "not kept (plugin.max_unacked is 0)"));
    assert_null(strstr(last_log, "kept in memory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_event_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_client_and_dollar_topics_are_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_response_topic_inside_pattern_is_the_reply_topic,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_response_topics_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_lines_quote_client_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_without_response_topic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_that_cannot_expand_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_request_without_any_destination_still_goes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_qos2_repeat_is_dispatched_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_reports_deferrals_once_per_interval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tick_silent_bridge_line_matches_max_unacked, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
