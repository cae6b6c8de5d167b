/* Encoding and decoding of the metadata frame (docs/protocol.md, section 2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mzb_meta.h"

static struct mzb_bytes bytes_of(const void *p, size_t len)
{
    struct mzb_bytes b = {p, len};
    return b;
}

static struct mzb_bytes str_of(const char *s)
{
    return bytes_of(s, strlen(s));
}

static void fill_full(struct mzb_meta *m)
{
    static const uint8_t corr[] = {0x00, 0xff, 0x00, 0x10, 0x80};

    memset(m, 0, sizeof(*m));
    m->mode = MZB_MODE_REQUEST;
    m->qos = 2;
    m->retain = 1;
    m->protocol = 5;
    m->reply_qos = 1;
    m->msg_id = 0x0123456789abcdefULL;
    m->timeout_ms = 2500;
    m->topic = str_of("rpc/echo/a");
    m->client_id = str_of("client-1");
    m->username = str_of("");
    m->has_username = 1;
    m->content_type = str_of("application/json");
    m->has_content_type = 1;
    m->response_topic = str_of("reply/client-1/x");
    m->has_response_topic = 1;
    m->correlation = bytes_of(corr, sizeof(corr));
    m->has_correlation = 1;
    m->reply_topic = str_of("reply/client-1/x");
    m->has_reply_topic = 1;
    m->route = str_of("rpc/echo/#");
    m->user_prop_count = 2;
    m->user_props[0].key = str_of("k");
    m->user_props[0].value = str_of("v1");
    m->user_props[1].key = str_of("k");
    m->user_props[1].value = str_of("");
}

static void assert_bytes(struct mzb_bytes got, struct mzb_bytes want)
{
    assert_int_equal(got.len, want.len);
    if (want.len > 0) {
        assert_memory_equal(got.ptr, want.ptr, want.len);
    }
}

static void test_round_trip_keeps_every_field(void **state)
{
    struct mzb_meta in, out;
    uint8_t buf[1024];
    size_t len = 0;

    (void)state;
    fill_full(&in);
    assert_int_equal(mzb_meta_encode(&in, buf, sizeof(buf), &len), MZB_META_OK);
    assert_int_equal(len, mzb_meta_encoded_size(&in));
    assert_int_equal(mzb_meta_decode(buf, len, &out), MZB_META_OK);

    assert_int_equal(out.mode, MZB_MODE_REQUEST);
    assert_int_equal(out.qos, 2);
    assert_int_equal(out.retain, 1);
    assert_int_equal(out.protocol, 5);
    assert_int_equal(out.reply_qos, 1);
    assert_true(out.msg_id == 0x0123456789abcdefULL);
    assert_int_equal(out.timeout_ms, 2500);
    assert_bytes(out.topic, in.topic);
    assert_bytes(out.client_id, in.client_id);
    assert_true(out.has_username);
    assert_int_equal(out.username.len, 0);
    assert_bytes(out.content_type, in.content_type);
    assert_bytes(out.response_topic, in.response_topic);
    assert_bytes(out.correlation, in.correlation);
    assert_bytes(out.reply_topic, in.reply_topic);
    assert_bytes(out.route, in.route);
    assert_int_equal(out.user_prop_count, 2);
    assert_bytes(out.user_props[0].value, str_of("v1"));
    assert_int_equal(out.user_props[1].value.len, 0);
}

static void test_absent_optional_fields_stay_absent(void **state)
{
    struct mzb_meta in, out;
    uint8_t buf[256];
    size_t len = 0;

    (void)state;
    memset(&in, 0, sizeof(in));
    in.topic = str_of("svc/x");
    in.client_id = str_of("");
    in.route = str_of("svc/#");
    assert_int_equal(mzb_meta_encode(&in, buf, sizeof(buf), &len), MZB_META_OK);
    assert_int_equal(mzb_meta_decode(buf, len, &out), MZB_META_OK);

    assert_false(out.has_username);
    assert_false(out.has_correlation);
    assert_false(out.has_response_topic);
    assert_false(out.has_reply_topic);
    assert_int_equal(out.user_prop_count, 0);
    assert_int_equal(out.client_id.len, 0);
}

static void test_small_buffer_is_refused(void **state)
{
    struct mzb_meta in;
    uint8_t buf[32];
    size_t len = 0;

    (void)state;
    fill_full(&in);
    assert_int_equal(mzb_meta_encode(&in, buf, sizeof(buf), &len), MZB_META_E_NOSPACE);
}

static void test_every_truncation_is_an_error(void **state)
{
    struct mzb_meta in, out;
    uint8_t buf[1024];
    size_t len = 0;

    (void)state;
    fill_full(&in);
    assert_int_equal(mzb_meta_encode(&in, buf, sizeof(buf), &len), MZB_META_OK);

    /* Cutting inside any field must fail; cutting at a field boundary after the topic may
     * legitimately decode, so only cuts before the end of the first field are asserted. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        int rc;

        memcpy(copy, buf, cut);
        rc = mzb_meta_decode(copy, cut, &out);
        if (cut < MZB_META_HEADER_SIZE + 5 + in.topic.len) {
            assert_int_not_equal(rc, MZB_META_OK);
        }
        free(copy);
    }
}

static void test_bad_header_values(void **state)
{
    struct mzb_meta in, out;
    uint8_t buf[256];
    size_t len = 0;

    (void)state;
    memset(&in, 0, sizeof(in));
    in.topic = str_of("t");
    in.route = str_of("t");
    assert_int_equal(mzb_meta_encode(&in, buf, sizeof(buf), &len), MZB_META_OK);

    buf[0] = 2;
    assert_int_equal(mzb_meta_decode(buf, len, &out), MZB_META_E_VERSION);
    buf[0] = 1;
    buf[2] = 3;
    assert_int_equal(mzb_meta_decode(buf, len, &out), MZB_META_E_VALUE);
    buf[2] = 0;
    buf[1] = 7;
    assert_int_equal(mzb_meta_decode(buf, len, &out), MZB_META_E_VALUE);
}

static void test_missing_topic_and_huge_length(void **state)
{
    uint8_t buf[MZB_META_HEADER_SIZE + 5] = {1};
    struct mzb_meta out;

    (void)state;
    assert_int_equal(mzb_meta_decode(buf, MZB_META_HEADER_SIZE, &out), MZB_META_E_NO_TOPIC);

    buf[MZB_META_HEADER_SIZE] = MZB_TAG_TOPIC;
    memset(buf + MZB_META_HEADER_SIZE + 1, 0xff, 4);
    assert_int_equal(mzb_meta_decode(buf, sizeof(buf), &out), MZB_META_E_FIELD);
}

static void test_unknown_tags_are_skipped(void **state)
{
    uint8_t buf[MZB_META_HEADER_SIZE + 8 + 6] = {1};
    uint8_t *p = buf + MZB_META_HEADER_SIZE;
    struct mzb_meta out;

    (void)state;
    p[0] = 200;
    p[4] = 3;
    memcpy(p + 5, "abc", 3);
    p += 8;
    p[0] = MZB_TAG_TOPIC;
    p[4] = 1;
    p[5] = 'x';
    assert_int_equal(mzb_meta_decode(buf, sizeof(buf), &out), MZB_META_OK);
    assert_int_equal(out.topic.len, 1);
}

static void test_random_mutations_never_crash(void **state)
{
    struct mzb_meta in, out;
    uint8_t buf[1024];
    size_t len = 0;
    unsigned seed = 12345;

    (void)state;
    fill_full(&in);
    assert_int_equal(mzb_meta_encode(&in, buf, sizeof(buf), &len), MZB_META_OK);

    for (int round = 0; round < 20000; round++) {
        uint8_t copy[1024];
        size_t cut = (size_t)rand_r(&seed) % (len + 1);

        memcpy(copy, buf, len);
        for (int flips = 0; flips < 3; flips++) {
            copy[(size_t)rand_r(&seed) % len] = (uint8_t)rand_r(&seed);
        }
        if (mzb_meta_decode(copy, cut, &out) == MZB_META_OK) {
            assert_true(out.topic.ptr >= copy && out.topic.ptr + out.topic.len <= copy + cut);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_every_field),
        cmocka_unit_test(test_absent_optional_fields_stay_absent),
        cmocka_unit_test(test_small_buffer_is_refused),
        cmocka_unit_test(test_every_truncation_is_an_error),
        cmocka_unit_test(test_bad_header_values),
        cmocka_unit_test(test_missing_topic_and_huge_length),
        cmocka_unit_test(test_unknown_tags_are_skipped),
        cmocka_unit_test(test_random_mutations_never_crash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
