/* The property walker, on lists built by hand in the broker's layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mosq_property_mirror.h"
#include "props.h"

#define MAX_PROPS 100

struct list {
    struct mzbp_mosq_property items[MAX_PROPS];
    size_t count;
};

static struct mzbp_mosq_string str(const char *s, size_t len)
{
    struct mzbp_mosq_string m = {(char *)s, (uint16_t)len};
    return m;
}

static struct mzbp_mosq_property *push(struct list *l, int32_t id)
{
    struct mzbp_mosq_property *p = &l->items[l->count];

    memset(p, 0, sizeof(*p));
    p->identifier = id;
    if (l->count > 0) {
        l->items[l->count - 1].next = p;
    }
    l->count++;
    return p;
}

static void push_string(struct list *l, int32_t id, const char *s, size_t len)
{
    push(l, id)->value.s = str(s, len);
}

static void push_user(struct list *l, const char *k, const char *v)
{
    struct mzbp_mosq_property *p = push(l, MZBP_PROP_USER_PROPERTY);

    p->name = str(k, strlen(k));
    p->value.s = str(v, strlen(v));
}

static void assert_bytes(struct mzb_bytes b, const void *want, size_t len)
{
    assert_int_equal(b.len, len);
    assert_non_null(b.ptr);
    if (len > 0) {
        assert_memory_equal(b.ptr, want, len);
    }
}

static void test_empty_list(void **state)
{
    struct mzbp_props out;

    (void)state;
    assert_int_equal(mzbp_props_read(NULL, &out, NULL), 0);
    assert_false(out.has_content_type || out.has_response_topic || out.has_correlation);
    assert_int_equal(out.user_prop_count, 0);
    assert_false(out.broken);
}

static void test_every_publish_property(void **state)
{
    static const char corr[] = {0x00, (char)0xff, 0x00, 0x10};
    struct list l = {.count = 0};
    struct mzbp_props out;

    (void)state;
    push(&l, MZBP_PROP_PAYLOAD_FORMAT)->value.i8 = 1;
    push_string(&l, MZBP_PROP_CONTENT_TYPE, "text/plain", 10);
    push_string(&l, MZBP_PROP_RESPONSE_TOPIC, "reply/c1/x", 10);
    push(&l, MZBP_PROP_CORRELATION_DATA)->value.bin = str(corr, sizeof(corr));
    push_user(&l, "k", "v1");
    push_user(&l, "k", "v2");

    assert_int_equal(mzbp_props_read(&l.items[0], &out, NULL), 0);
    assert_true(out.has_payload_format);
    assert_int_equal(out.payload_format, 1);
    assert_true(out.has_content_type);
    assert_bytes(out.content_type, "text/plain", 10);
    assert_true(out.has_response_topic);
    assert_bytes(out.response_topic, "reply/c1/x", 10);
    assert_true(out.has_correlation);
    assert_bytes(out.correlation, corr, sizeof(corr));
    assert_int_equal(out.user_prop_count, 2);
    assert_bytes(out.user_props[0].key, "k", 1);
    assert_bytes(out.user_props[0].value, "v1", 2);
    assert_bytes(out.user_props[1].value, "v2", 2);
}

/* The broker stores a zero-length string or binary as a NULL pointer. */
static void test_empty_values_stay_present(void **state)
{
    struct list l = {.count = 0};
    struct mzbp_props out;

    (void)state;
    push_string(&l, MZBP_PROP_CORRELATION_DATA, NULL, 0);
    push(&l, MZBP_PROP_USER_PROPERTY);

    assert_int_equal(mzbp_props_read(&l.items[0], &out, NULL), 0);
    assert_true(out.has_correlation);
    assert_non_null(out.correlation.ptr);
    assert_int_equal(out.correlation.len, 0);
    assert_int_equal(out.user_prop_count, 1);
    assert_non_null(out.user_props[0].key.ptr);
    assert_non_null(out.user_props[0].value.ptr);
}

static void test_more_user_properties_than_metadata_holds(void **state)
{
    static char keys[MAX_PROPS][8];
    struct list l = {.count = 0};
    struct mzbp_props out;

    (void)state;
    for (int i = 0; i < 70; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        push_user(&l, keys[i], "v");
    }
    assert_int_equal(mzbp_props_read(&l.items[0], &out, NULL), 0);
    assert_int_equal(out.user_prop_count, MZB_META_MAX_USER_PROPS);
    assert_int_equal(out.user_props_dropped, 6);
    assert_bytes(out.user_props[63].key, "k63", 3);
}

static void test_walk_stops_at_an_invalid_identifier(void **state)
{
    struct list l = {.count = 0};
    struct mzbp_props out;

    (void)state;
    push_user(&l, "before", "1");
    push(&l, 0x04); /* not an MQTT property id */
    push_user(&l, "after", "2");

    assert_int_equal(mzbp_props_read(&l.items[0], &out, NULL), -1);
    assert_true(out.broken);
    assert_int_equal(out.user_prop_count, 1);
    assert_bytes(out.user_props[0].key, "before", 6);
}

static void test_walk_stops_at_a_string_without_data(void **state)
{
    struct list l = {.count = 0};
    struct mzbp_props out;

    (void)state;
    push_string(&l, MZBP_PROP_CONTENT_TYPE, NULL, 5);
    assert_int_equal(mzbp_props_read(&l.items[0], &out, NULL), -1);
    assert_true(out.broken);
    assert_false(out.has_content_type);
}

static void test_valid_ids(void **state)
{
    (void)state;
    assert_true(mzbp_prop_id_valid(0x01));
    assert_true(mzbp_prop_id_valid(0x26));
    assert_true(mzbp_prop_id_valid(0x2A));
    assert_false(mzbp_prop_id_valid(0));
    assert_false(mzbp_prop_id_valid(0x04));
    assert_false(mzbp_prop_id_valid(0x2B));
    assert_false(mzbp_prop_id_valid(-1));
}

static uint64_t hash_of(struct list *l)
{
    struct mzbp_props out;
    struct mzbp_hash h;

    mzbp_hash_init(&h, 42);
    mzbp_props_read(l->count ? &l->items[0] : NULL, &out, &h);
    return mzbp_hash_final(&h);
}

static void test_hash_sees_every_property(void **state)
{
    struct list a = {.count = 0};
    struct list b = {.count = 0};
    struct list c = {.count = 0};

    (void)state;
    push_user(&a, "k", "v");
    push_user(&b, "k", "v");
    push_user(&c, "k", "w");
    assert_true(hash_of(&a) == hash_of(&b));
    assert_true(hash_of(&a) != hash_of(&c));

    /* The same bytes split differently between key and value hash differently. */
    struct list d = {.count = 0};
    struct list e = {.count = 0};
    push_user(&d, "ab", "c");
    push_user(&e, "a", "bc");
    assert_true(hash_of(&d) != hash_of(&e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_list),
        cmocka_unit_test(test_every_publish_property),
        cmocka_unit_test(test_empty_values_stay_present),
        cmocka_unit_test(test_more_user_properties_than_metadata_holds),
        cmocka_unit_test(test_walk_stops_at_an_invalid_identifier),
        cmocka_unit_test(test_walk_stops_at_a_string_without_data),
        cmocka_unit_test(test_valid_ids),
        cmocka_unit_test(test_hash_sees_every_property),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
