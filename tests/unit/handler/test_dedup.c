/* The ring of finished message ids inside libmzbhandler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "handler_dedup.h"

static void test_remembers_what_it_was_given(void **state)
{
    struct mzbh_dedup *d = mzbh_dedup_new(8);

    (void)state;
    assert_non_null(d);
    assert_false(mzbh_dedup_contains(d, 1));
    mzbh_dedup_add(d, 1);
    mzbh_dedup_add(d, 0);
    mzbh_dedup_add(d, UINT64_MAX);
    assert_true(mzbh_dedup_contains(d, 1));
    assert_true(mzbh_dedup_contains(d, 0));
    assert_true(mzbh_dedup_contains(d, UINT64_MAX));
    assert_false(mzbh_dedup_contains(d, 2));
    mzbh_dedup_destroy(&d);
    assert_null(d);
    mzbh_dedup_destroy(&d);
    mzbh_dedup_destroy(NULL);
}

static void test_forgets_the_oldest_when_full(void **state)
{
    struct mzbh_dedup *d = mzbh_dedup_new(4096);
    const uint64_t base = 0xabcdef0000000000ULL; /* plugin ids share their top bits */

    (void)state;
    assert_non_null(d);
    for (uint64_t i = 0; i < 10000; i++) {
        mzbh_dedup_add(d, base + i);
    }
    for (uint64_t i = 0; i < 10000; i++) {
        assert_int_equal(mzbh_dedup_contains(d, base + i), i >= 10000 - 4096);
    }
    mzbh_dedup_destroy(&d);
}

static void test_adding_twice_takes_one_slot(void **state)
{
    struct mzbh_dedup *d = mzbh_dedup_new(2);

    (void)state;
    mzbh_dedup_add(d, 10);
    mzbh_dedup_add(d, 10);
    mzbh_dedup_add(d, 11);
    assert_true(mzbh_dedup_contains(d, 10));
    assert_true(mzbh_dedup_contains(d, 11));
    mzbh_dedup_add(d, 12);
    assert_false(mzbh_dedup_contains(d, 10));
    assert_true(mzbh_dedup_contains(d, 11));
    assert_true(mzbh_dedup_contains(d, 12));
    mzbh_dedup_destroy(&d);
}

static void test_capacity_zero_means_one(void **state)
{
    struct mzbh_dedup *d = mzbh_dedup_new(0);

    (void)state;
    mzbh_dedup_add(d, 5);
    assert_true(mzbh_dedup_contains(d, 5));
    mzbh_dedup_add(d, 6);
    assert_false(mzbh_dedup_contains(d, 5));
    assert_true(mzbh_dedup_contains(d, 6));
    mzbh_dedup_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remembers_what_it_was_given),
        cmocka_unit_test(test_forgets_the_oldest_when_full),
        cmocka_unit_test(test_adding_twice_takes_one_slot),
        cmocka_unit_test(test_capacity_zero_means_one),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
