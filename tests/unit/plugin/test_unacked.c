/* The table of QoS 1/2 dispatches awaiting acknowledgement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unacked.h"

#define PREFIX (UINT64_C(0xabcdef) << 40)

static struct mzbp_pending *entry(uint64_t id, const char *payload)
{
    struct mzbp_pending *p = mzbp_pending_new(id);

    assert_non_null(p);
    assert_int_equal(zmq_msg_init_size(&p->frames[MZBP_FRAME_PAYLOAD], strlen(payload)), 0);
    memcpy(zmq_msg_data(&p->frames[MZBP_FRAME_PAYLOAD]), payload, strlen(payload));
    return p;
}

static void add_sent(struct mzbp_unacked *t, uint64_t id)
{
    assert_int_equal(mzbp_unacked_add(t, entry(id, "x")), MZBP_UNACKED_OK);
    if (mzbp_unacked_first_unsent(t) != NULL) {
        mzbp_unacked_mark_first_sent(t);
    }
}

static void take_and_free(struct mzbp_unacked *t, uint64_t id)
{
    struct mzbp_pending *p = mzbp_unacked_take(t, id);

    assert_non_null(p);
    assert_true(p->id == id);
    mzbp_pending_free(&p);
    assert_null(p);
}

static void test_add_take_in_any_order(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(100);

    (void)state;
    for (uint64_t i = 0; i < 50; i++) {
        add_sent(t, PREFIX | i);
    }
    assert_int_equal(mzbp_unacked_count(t), 50);
    take_and_free(t, PREFIX | 25);
    take_and_free(t, PREFIX | 0);
    take_and_free(t, PREFIX | 49);
    assert_null(mzbp_unacked_take(t, PREFIX | 25));
    assert_null(mzbp_unacked_take(t, 12345));
    assert_int_equal(mzbp_unacked_count(t), 47);

    /* The send order survives removals at the head, middle and tail. */
    uint64_t want = 1;
    for (struct mzbp_pending *p = mzbp_unacked_first(t); p != NULL; p = p->next) {
        if (want == 25) {
            want++;
        }
        assert_true(p->id == (PREFIX | want));
        want++;
    }
    assert_int_equal(want, 49);
    mzbp_unacked_destroy(&t);
    assert_null(t);
}

static void test_bound_and_duplicates(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(3);
    struct mzbp_pending *p;

    (void)state;
    add_sent(t, 1);
    add_sent(t, 2);

    p = entry(2, "dup");
    assert_int_equal(mzbp_unacked_add(t, p), MZBP_UNACKED_E_DUPLICATE);
    mzbp_pending_free(&p);

    add_sent(t, 3);
    p = entry(4, "over");
    assert_int_equal(mzbp_unacked_add(t, p), MZBP_UNACKED_E_FULL);
    mzbp_pending_free(&p);

    take_and_free(t, 1);
    add_sent(t, 4);
    assert_int_equal(mzbp_unacked_count(t), 3);
    mzbp_unacked_destroy(&t);
}

/* Unsent entries stay a suffix: nothing new overtakes an entry waiting to go. */
static void test_unsent_entries_keep_their_order(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    struct mzbp_pending *p;

    (void)state;
    add_sent(t, 1);
    p = entry(2, "b");
    p->unsent = 1;
    assert_int_equal(mzbp_unacked_add(t, p), MZBP_UNACKED_OK);
    p = entry(3, "c"); /* offered as sent-able, but 2 waits, so 3 waits too */
    assert_int_equal(mzbp_unacked_add(t, p), MZBP_UNACKED_OK);
    assert_true(p->unsent);
    assert_int_equal(mzbp_unacked_unsent_count(t), 2);

    assert_true(mzbp_unacked_first_unsent(t)->id == 2);
    mzbp_unacked_mark_first_sent(t);
    assert_true(mzbp_unacked_first_unsent(t)->id == 3);

    /* An ACK for the oldest unsent entry moves the mark to the next one. */
    take_and_free(t, 3);
    assert_null(mzbp_unacked_first_unsent(t));
    assert_int_equal(mzbp_unacked_unsent_count(t), 0);
    mzbp_unacked_destroy(&t);
}

static void test_mark_all_unsent_restarts_from_the_oldest(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    uint64_t order[5];
    size_t n = 0;

    (void)state;
    for (uint64_t i = 1; i <= 5; i++) {
        add_sent(t, i);
    }
    take_and_free(t, 3);
    mzbp_unacked_mark_all_unsent(t);
    assert_int_equal(mzbp_unacked_unsent_count(t), 4);

    while (mzbp_unacked_first_unsent(t) != NULL) {
        order[n++] = mzbp_unacked_first_unsent(t)->id;
        mzbp_unacked_mark_first_sent(t);
    }
    assert_int_equal(n, 4);
    assert_true(order[0] == 1 && order[1] == 2 && order[2] == 4 && order[3] == 5);
    mzbp_unacked_destroy(&t);
}

/* Many entries with ids that differ in their low bits only, as real ids do. */
static void test_many_entries(void **state)
{
    const size_t n = 200000;
    struct mzbp_unacked *t = mzbp_unacked_new(n);

    (void)state;
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(mzbp_unacked_add(t, mzbp_pending_new(PREFIX | i)), MZBP_UNACKED_OK);
    }
    for (uint64_t i = 0; i < n; i += 2) {
        take_and_free(t, PREFIX | i);
    }
    assert_int_equal(mzbp_unacked_count(t), n / 2);
    assert_int_equal(mzbp_unacked_unsent_count(t), 0);
    mzbp_unacked_destroy(&t);
}

static void test_destroy_accepts_null(void **state)
{
    struct mzbp_unacked *t = NULL;
    struct mzbp_pending *p = NULL;

    (void)state;
    mzbp_unacked_destroy(NULL);
    mzbp_unacked_destroy(&t);
    mzbp_pending_free(NULL);
    mzbp_pending_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_take_in_any_order),
        cmocka_unit_test(test_bound_and_duplicates),
        cmocka_unit_test(test_unsent_entries_keep_their_order),
        cmocka_unit_test(test_mark_all_unsent_restarts_from_the_oldest),
        cmocka_unit_test(test_many_entries),
        cmocka_unit_test(test_destroy_accepts_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
