/* The QoS 2 repeat table and the hash that feeds it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dedup.h"
#include "hash.h"

static struct mzbp_dedup *new_table(void)
{
    struct mzbp_dedup *d = malloc(sizeof(*d));

    assert_non_null(d);
    mzbp_dedup_clear(d);
    return d;
}

static void test_seen_within_the_window_only(void **state)
{
    struct mzbp_dedup *d = new_table();

    (void)state;
    assert_false(mzbp_dedup_seen(d, 77, 1000));
    assert_false(mzbp_dedup_record(d, 77, 1000, 5000));
    assert_true(mzbp_dedup_seen(d, 77, 1000));
    assert_true(mzbp_dedup_seen(d, 77, 5999));
    assert_false(mzbp_dedup_seen(d, 77, 6000));
    assert_false(mzbp_dedup_seen(d, 78, 1000));
    free(d);
}

static void test_recording_again_extends_the_window(void **state)
{
    struct mzbp_dedup *d = new_table();

    (void)state;
    mzbp_dedup_record(d, 5, 1000, 100);
    assert_false(mzbp_dedup_record(d, 5, 1050, 100));
    assert_true(mzbp_dedup_seen(d, 5, 1120));
    free(d);
}

/* Hashes that share a bucket: the ways fill, then the oldest live entry goes. */
static void test_full_bucket_evicts_the_oldest(void **state)
{
    struct mzbp_dedup *d = new_table();
    const uint64_t bucket_bits = (uint64_t)3 << 32;

    (void)state;
    for (uint64_t i = 0; i < MZBP_DEDUP_WAYS; i++) {
        assert_false(mzbp_dedup_record(d, bucket_bits | i, 1000 + i, 5000));
    }
    assert_true(mzbp_dedup_record(d, bucket_bits | 99, 1100, 5000));
    assert_false(mzbp_dedup_seen(d, bucket_bits | 0, 1100));
    for (uint64_t i = 1; i < MZBP_DEDUP_WAYS; i++) {
        assert_true(mzbp_dedup_seen(d, bucket_bits | i, 1100));
    }
    assert_true(mzbp_dedup_seen(d, bucket_bits | 99, 1100));

    /* Expired entries are reused before live ones are evicted. */
    assert_false(mzbp_dedup_record(d, bucket_bits | 100, 7000, 5000));
    free(d);
}

static uint64_t hash3(uint64_t seed, const char *a, const char *b, const char *c)
{
    struct mzbp_hash h;

    mzbp_hash_init(&h, seed);
    mzbp_hash_bytes(&h, a, strlen(a));
    mzbp_hash_bytes(&h, b, strlen(b));
    mzbp_hash_bytes(&h, c, strlen(c));
    return mzbp_hash_final(&h);
}

static void test_hash_separates_fields_and_seeds(void **state)
{
    (void)state;
    assert_true(hash3(1, "client", "topic", "payload") == hash3(1, "client", "topic", "payload"));
    assert_true(hash3(1, "client", "topic", "payload") != hash3(2, "client", "topic", "payload"));
    assert_true(hash3(1, "ab", "c", "") != hash3(1, "a", "bc", ""));
    assert_true(hash3(1, "", "", "") != hash3(1, "", "", "x"));
    assert_true(hash3(1, "12345678", "9", "") != hash3(1, "12345678", "8", ""));
}

static void test_hash_accepts_null_empty_input(void **state)
{
    struct mzbp_hash h;
    struct mzbp_hash g;

    (void)state;
    mzbp_hash_init(&h, 9);
    mzbp_hash_bytes(&h, NULL, 0);
    mzbp_hash_init(&g, 9);
    mzbp_hash_bytes(&g, "", 0);
    assert_true(mzbp_hash_final(&h) == mzbp_hash_final(&g));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seen_within_the_window_only),
        cmocka_unit_test(test_recording_again_extends_the_window),
        cmocka_unit_test(test_full_bucket_evicts_the_oldest),
        cmocka_unit_test(test_hash_separates_fields_and_seeds),
        cmocka_unit_test(test_hash_accepts_null_empty_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
