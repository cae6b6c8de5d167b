/* The counters' JSON, as the HEARTBEAT carries it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "stats.h"

static void test_json_holds_every_counter(void **state)
{
    struct mzbp_stats s;
    char buf[4096];
    json_error_t err;
    json_t *doc;
    size_t len;

    (void)state;
    mzbp_stats_init(&s);
    mzbp_stat_add(&s.dispatched, 41);
    mzbp_stat_add(&s.dispatched, 1);
    mzbp_stat_set(&s.unacked, UINT64_C(9007199254740993));

    len = mzbp_stats_json(&s, buf, sizeof(buf));
    assert_true(len > 0 && len == strlen(buf));
    doc = json_loads(buf, 0, &err);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "dispatched")), 42);
    assert_non_null(json_object_get(doc, "messages_seen"));
    assert_non_null(json_object_get(doc, "qos2_repeats_dropped"));
    assert_non_null(json_object_get(doc, "reply_topic_refused"));
    assert_non_null(json_object_get(doc, "bridge_alive"));
    /* Every field of the X-macro list is there, once. */
#define COUNT_FIELD(name) +1
    assert_int_equal(json_object_size(doc), 0 MZBP_STATS_FIELDS(COUNT_FIELD));
    assert_non_null(strstr(buf, "\"unacked\":9007199254740993"));
    json_decref(doc);
}

static void test_small_buffer_gives_zero(void **state)
{
    struct mzbp_stats s;
    char buf[64];

    (void)state;
    mzbp_stats_init(&s);
    assert_int_equal(mzbp_stats_json(&s, buf, sizeof(buf)), 0);
    assert_int_equal(mzbp_stats_json(&s, buf, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_holds_every_counter),
        cmocka_unit_test(test_small_buffer_gives_zero),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
