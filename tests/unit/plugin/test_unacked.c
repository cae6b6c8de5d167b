/* The table of QoS 1/2 dispatches awaiting acknowledgement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mzb_log.h"
#include "unacked.h"

#define PREFIX (UINT64_C(0xabcdef) << 40)

static struct mzbp_pending *entry(uint64_t id, const char *payload)
{
    struct mzbp_pending *p = mzbp_pending_new(id, payload, strlen(payload));

    assert_non_null(p);
    assert_int_equal(p->record_len, strlen(payload));
    assert_memory_equal(p->record, payload, strlen(payload));
    return p;
}

/* Adds an entry and takes it off the send queue, as the I/O thread does once it is sent. */
static void add_sent(struct mzbp_unacked *t, uint64_t id)
{
    assert_int_equal(mzbp_unacked_add(t, entry(id, "x")), MZBP_UNACKED_OK);
    assert_true(mzbp_unacked_first_queued(t)->id == id);
    mzbp_unacked_mark_first_sent(t);
}

/* Sends the whole send queue, writing the ids in the order they went; returns how many. */
static size_t send_all(struct mzbp_unacked *t, uint64_t *ids, size_t cap)
{
    size_t n = 0;

    while (mzbp_unacked_first_queued(t) != NULL) {
        assert_true(n < cap);
        ids[n++] = mzbp_unacked_first_queued(t)->id;
        mzbp_unacked_mark_first_sent(t);
    }
    return n;
}

/* Defers id at now_ms and returns how long it has to wait. */
static uint64_t defer_ok(struct mzbp_unacked *t, uint64_t id, uint64_t now_ms)
{
    struct mzbp_pending *p = mzbp_unacked_defer(t, id, now_ms);

    assert_non_null(p);
    assert_true(p->id == id);
    assert_int_equal(p->state, MZBP_PENDING_DEFERRED);
    assert_true(p->due_ms >= now_ms);
    return p->due_ms - now_ms;
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

/* The send queue is first in, first out; nothing overtakes an entry waiting to go. */
static void test_queued_entries_keep_their_order(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    uint64_t ids[10];

    (void)state;
    add_sent(t, 1);
    for (uint64_t id = 2; id <= 4; id++) {
        assert_int_equal(mzbp_unacked_add(t, entry(id, "q")), MZBP_UNACKED_OK);
    }
    assert_int_equal(mzbp_unacked_unsent_count(t), 3);
    assert_true(mzbp_unacked_first_queued(t)->id == 2);
    mzbp_unacked_mark_first_sent(t);
    assert_true(mzbp_unacked_first_queued(t)->id == 3);

    /* An ACK for the first queued entry makes the next one first. */
    take_and_free(t, 3);
    assert_true(mzbp_unacked_first_queued(t)->id == 4);
    assert_int_equal(send_all(t, ids, 10), 1);
    assert_null(mzbp_unacked_first_queued(t));
    assert_int_equal(mzbp_unacked_unsent_count(t), 0);
    mzbp_unacked_destroy(&t);
}

static void test_mark_all_unsent_restarts_from_the_oldest(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    uint64_t order[5];

    (void)state;
    for (uint64_t i = 1; i <= 5; i++) {
        add_sent(t, i);
    }
    take_and_free(t, 3);
    mzbp_unacked_mark_all_unsent(t);
    assert_int_equal(mzbp_unacked_unsent_count(t), 4);

    assert_int_equal(send_all(t, order, 5), 4);
    assert_true(order[0] == 1 && order[1] == 2 && order[2] == 4 && order[3] == 5);
    mzbp_unacked_destroy(&t);
}

static void test_backoff_doubles_up_to_the_cap(void **state)
{
    (void)state;
    assert_int_equal(mzbp_unacked_backoff_ms(1), 100);
    assert_int_equal(mzbp_unacked_backoff_ms(2), 200);
    assert_int_equal(mzbp_unacked_backoff_ms(3), 400);
    assert_int_equal(mzbp_unacked_backoff_ms(4), 800);
    assert_int_equal(mzbp_unacked_backoff_ms(5), 1600);
    assert_int_equal(mzbp_unacked_backoff_ms(6), 2000);
    assert_int_equal(mzbp_unacked_backoff_ms(7), 2000);
    assert_int_equal(mzbp_unacked_backoff_ms(255), 2000);
    assert_int_equal(mzbp_unacked_backoff_ms(100000), 2000);
    assert_int_equal(mzbp_unacked_backoff_ms(0), 100);
}

/* A deferred entry leaves the wire and comes back to the send queue at its time, not before. */
static void test_deferred_entry_returns_at_its_time(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    uint64_t due = 0;

    (void)state;
    add_sent(t, 1);
    add_sent(t, 2);
    assert_int_equal(mzbp_unacked_next_due(t, &due), 0);
    assert_int_equal(defer_ok(t, 2, 1000), 100);
    assert_int_equal(mzbp_unacked_deferred_count(t), 1);
    assert_int_equal(mzbp_unacked_unsent_count(t), 1);
    assert_int_equal(mzbp_unacked_next_due(t, &due), 1);
    assert_int_equal(due, 1100);

    assert_int_equal(mzbp_unacked_release_due(t, 1099), 0);
    assert_null(mzbp_unacked_first_queued(t));
    assert_int_equal(mzbp_unacked_release_due(t, 1100), 1);
    assert_true(mzbp_unacked_first_queued(t)->id == 2);
    assert_int_equal(mzbp_unacked_deferred_count(t), 0);
    assert_int_equal(mzbp_unacked_unsent_count(t), 1);
    assert_int_equal(mzbp_unacked_next_due(t, &due), 0);
    mzbp_unacked_mark_first_sent(t);
    assert_int_equal(mzbp_unacked_unsent_count(t), 0);
    assert_int_equal(mzbp_unacked_count(t), 2);

    assert_null(mzbp_unacked_defer(t, 99, 1200)); /* not held: ignored */
    assert_int_equal(mzbp_unacked_deferred_count(t), 0);
    mzbp_unacked_destroy(&t);
}

/* Each further RETRY of the same message waits twice as long, at most 2 s. */
static void test_repeated_retries_double_the_wait(void **state)
{
    const uint64_t want[] = {100, 200, 400, 800, 1600, 2000, 2000, 2000};
    struct mzbp_unacked *t = mzbp_unacked_new(4);
    uint64_t now = 5000;

    (void)state;
    add_sent(t, 7);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(defer_ok(t, 7, now), want[i]);
        now += want[i];
        assert_int_equal(mzbp_unacked_release_due(t, now - 1), 0);
        assert_int_equal(mzbp_unacked_release_due(t, now), 1);
        mzbp_unacked_mark_first_sent(t);
    }

    /* A RETRY that finds the entry deferred already defers it again, for longer. */
    assert_int_equal(defer_ok(t, 7, now), 2000);
    mzbp_unacked_mark_all_unsent(t);
    mzbp_unacked_mark_first_sent(t);
    assert_int_equal(defer_ok(t, 7, now), 100); /* a resend forgot the count */
    mzbp_unacked_destroy(&t);
}

/*
 * A deferred entry holds up nothing: the entries behind it, queued before or
 * after the RETRY, go at once; it goes when its time comes.
 */
static void test_no_head_of_line_blocking(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    uint64_t ids[10];

    (void)state;
    for (uint64_t id = 1; id <= 4; id++) {
        assert_int_equal(mzbp_unacked_add(t, entry(id, "q")), MZBP_UNACKED_OK);
    }
    mzbp_unacked_mark_first_sent(t); /* 1 is on the wire, 2 to 4 wait to go */
    defer_ok(t, 1, 0);
    defer_ok(t, 3, 0); /* a RETRY may also find an entry queued to go again */
    assert_int_equal(mzbp_unacked_add(t, entry(5, "new")), MZBP_UNACKED_OK);
    assert_int_equal(mzbp_unacked_deferred_count(t), 2);
    assert_int_equal(mzbp_unacked_unsent_count(t), 5);

    assert_int_equal(send_all(t, ids, 10), 3);
    assert_true(ids[0] == 2 && ids[1] == 4 && ids[2] == 5);

    assert_int_equal(mzbp_unacked_release_due(t, 100), 2);
    assert_int_equal(send_all(t, ids, 10), 2);
    assert_true(ids[0] == 1 && ids[1] == 3);
    assert_int_equal(mzbp_unacked_unsent_count(t), 0);
    mzbp_unacked_destroy(&t);
}

/* Due entries go in the order of their times, whatever their backoff step. */
static void test_release_in_due_order(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    uint64_t ids[10];
    uint64_t due = 0;

    (void)state;
    for (uint64_t id = 1; id <= 5; id++) {
        add_sent(t, id);
    }
    defer_ok(t, 5, 0); /* due 100 */
    assert_int_equal(mzbp_unacked_release_due(t, 100), 1);
    mzbp_unacked_mark_first_sent(t);
    defer_ok(t, 5, 100); /* second RETRY: due 300 */
    defer_ok(t, 2, 150); /* due 250 */
    defer_ok(t, 1, 150); /* due 250, after 2 since it came later */
    defer_ok(t, 4, 200); /* due 300, the same as 5; the lower id goes first */
    defer_ok(t, 3, 280); /* due 380 */
    assert_int_equal(mzbp_unacked_next_due(t, &due), 1);
    assert_int_equal(due, 250);

    assert_int_equal(mzbp_unacked_release_due(t, 300), 4);
    assert_int_equal(send_all(t, ids, 10), 4);
    assert_true(ids[0] == 2 && ids[1] == 1 && ids[2] == 4 && ids[3] == 5);
    assert_int_equal(mzbp_unacked_next_due(t, &due), 1);
    assert_int_equal(due, 380);
    mzbp_unacked_destroy(&t);
}

/* Should the clock step back, a deferral list still stays in due order. */
static void test_clock_going_back_keeps_due_order(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    uint64_t ids[10];

    (void)state;
    for (uint64_t id = 1; id <= 3; id++) {
        add_sent(t, id);
    }
    defer_ok(t, 1, 1000);
    defer_ok(t, 2, 500);
    defer_ok(t, 3, 700);
    assert_int_equal(mzbp_unacked_release_due(t, 800), 2);
    assert_int_equal(send_all(t, ids, 10), 2);
    assert_true(ids[0] == 2 && ids[1] == 3);
    mzbp_unacked_destroy(&t);
}

/* An ACK, or a resend to a new bridge, also takes an entry out of its deferral. */
static void test_ack_and_resend_end_a_deferral(void **state)
{
    struct mzbp_unacked *t = mzbp_unacked_new(10);
    uint64_t ids[10];
    uint64_t due = 0;

    (void)state;
    for (uint64_t id = 1; id <= 4; id++) {
        add_sent(t, id);
    }
    defer_ok(t, 2, 0);
    take_and_free(t, 2);
    assert_int_equal(mzbp_unacked_deferred_count(t), 0);
    assert_int_equal(mzbp_unacked_next_due(t, &due), 0);
    assert_int_equal(mzbp_unacked_release_due(t, 10000), 0);

    defer_ok(t, 3, 0);
    defer_ok(t, 3, 0);
    defer_ok(t, 1, 0);
    mzbp_unacked_mark_all_unsent(t);
    assert_int_equal(mzbp_unacked_deferred_count(t), 0);
    assert_int_equal(mzbp_unacked_unsent_count(t), 3);
    assert_int_equal(mzbp_unacked_next_due(t, &due), 0);
    assert_int_equal(send_all(t, ids, 10), 3);
    assert_true(ids[0] == 1 && ids[1] == 3 && ids[2] == 4);
    mzbp_unacked_destroy(&t);
}

/*
 * With tens of thousands deferred, asking what is due costs nothing like a
 * walk over them: a million questions would take minutes if each one did.
 */
static void test_many_deferred_entries_cost_nothing_until_due(void **state)
{
    const uint64_t n = 50000;
    struct mzbp_unacked *t = mzbp_unacked_new((size_t)n);
    uint64_t due = 0;
    uint64_t started;

    (void)state;
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(mzbp_unacked_add(t, mzbp_pending_new(PREFIX | i, NULL, 0)),
                         MZBP_UNACKED_OK);
        mzbp_unacked_mark_first_sent(t);
        defer_ok(t, PREFIX | i, i % 2 == 0 ? 1000 : 1001 + i / 100);
    }
    started = mzb_now_ms();
    for (int i = 0; i < 1000000; i++) {
        assert_int_equal(mzbp_unacked_release_due(t, 1099), 0);
        assert_int_equal(mzbp_unacked_next_due(t, &due), 1);
    }
    assert_true(mzb_now_ms() - started < 5000);
    assert_int_equal(due, 1100);

    assert_int_equal(mzbp_unacked_release_due(t, 1100), n / 2);
    assert_true(mzbp_unacked_first_queued(t)->id == PREFIX);
    assert_int_equal(mzbp_unacked_release_due(t, 1100 + n), n / 2);
    assert_int_equal(mzbp_unacked_unsent_count(t), n);
    assert_int_equal(mzbp_unacked_deferred_count(t), 0);
    mzbp_unacked_destroy(&t);
}

/* Many entries with ids that differ in their low bits only, as real ids do. */
static void test_many_entries(void **state)
{
    const size_t n = 200000;
    struct mzbp_unacked *t = mzbp_unacked_new(n);

    (void)state;
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(mzbp_unacked_add(t, mzbp_pending_new(PREFIX | i, NULL, 0)),
                         MZBP_UNACKED_OK);
    }
    for (uint64_t i = 0; i < n; i += 2) {
        take_and_free(t, PREFIX | i);
    }
    assert_int_equal(mzbp_unacked_count(t), n / 2);
    assert_int_equal(mzbp_unacked_unsent_count(t), n / 2);
    assert_true(mzbp_unacked_first_queued(t)->id == (PREFIX | 1));
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
        cmocka_unit_test(test_queued_entries_keep_their_order),
        cmocka_unit_test(test_mark_all_unsent_restarts_from_the_oldest),
        cmocka_unit_test(test_backoff_doubles_up_to_the_cap),
        cmocka_unit_test(test_deferred_entry_returns_at_its_time),
        cmocka_unit_test(test_repeated_retries_double_the_wait),
        cmocka_unit_test(test_no_head_of_line_blocking),
        cmocka_unit_test(test_release_in_due_order),
        cmocka_unit_test(test_clock_going_back_keeps_due_order),
        cmocka_unit_test(test_ack_and_resend_end_a_deferral),
        cmocka_unit_test(test_many_deferred_entries_cost_nothing_until_due),
        cmocka_unit_test(test_many_entries),
        cmocka_unit_test(test_destroy_accepts_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
