/* The bridge's table of plugins: ACKs and RETRYs wait per plugin until they are sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brg_plugins.h"

#define NOW 5000000u

static int setup(void **state)
{
    struct brg_plugins *p = calloc(1, sizeof(*p));

    if (!p || brg_plugins_init(p) != 0) {
        free(p);
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct brg_plugins *p = *state;

    brg_plugins_clear(p);
    free(p);
    return 0;
}

static void acks_and_retries_wait_apart(void **state)
{
    struct brg_plugins *p = *state;
    struct brg_plugin *pl;

    assert_int_equal(brg_plugins_queue_ack(p, "p1", 2, 10, NOW), 0);
    assert_int_equal(brg_plugins_queue_retry(p, "p1", 2, 11, NOW), 0);
    assert_int_equal(brg_plugins_queue_retry(p, "p1", 2, 12, NOW), 0);
    assert_int_equal(p->count, 1);

    /* One dirty entry however many ids wait. */
    pl = brg_plugins_next_dirty(p);
    assert_non_null(pl);
    assert_null(brg_plugins_next_dirty(p));
    assert_memory_equal(pl->id, "p1", 2);
    assert_int_equal(pl->acks.count, 1);
    assert_int_equal(pl->acks.ids[0], 10);
    assert_int_equal(pl->retries.count, 2);
    assert_int_equal(pl->retries.ids[0], 11);
    assert_int_equal(pl->retries.ids[1], 12);

    brg_id_list_consume(&pl->retries, 1);
    assert_int_equal(pl->retries.count, 1);
    assert_int_equal(pl->retries.ids[0], 12);
    brg_id_list_consume(&pl->retries, 0);
    assert_int_equal(pl->retries.count, 1);

    /* Queuing again makes it dirty again. */
    assert_int_equal(brg_plugins_queue_retry(p, "p1", 2, 13, NOW), 0);
    assert_ptr_equal(brg_plugins_next_dirty(p), pl);
}

static void many_ids_grow_the_list(void **state)
{
    struct brg_plugins *p = *state;
    struct brg_plugin *pl;

    for (uint64_t i = 0; i < 3000; i++) {
        assert_int_equal(brg_plugins_queue_retry(p, "p", 1, i, NOW), 0);
    }
    pl = brg_plugins_next_dirty(p);
    assert_non_null(pl);
    assert_int_equal(pl->retries.count, 3000);
    brg_id_list_consume(&pl->retries, 1024);
    assert_int_equal(pl->retries.ids[0], 1024);
    assert_int_equal(pl->retries.ids[3000 - 1024 - 1], 2999);
    brg_id_list_consume(&pl->retries, pl->retries.count);
    assert_int_equal(pl->retries.count, 0);
}

static void silent_plugins_are_kept_while_ids_wait(void **state)
{
    struct brg_plugins *p = *state;
    struct brg_plugin *pl;

    assert_non_null(brg_plugins_touch(p, "quiet", 5, NOW));
    assert_int_equal(brg_plugins_queue_retry(p, "busy", 4, 1, NOW), 0);
    assert_int_equal(brg_plugins_expire(p, NOW + 30000, 30000), 1);
    assert_int_equal(p->count, 1);

    pl = brg_plugins_next_dirty(p);
    brg_id_list_consume(&pl->retries, 1);
    assert_int_equal(brg_plugins_expire(p, NOW + 30000, 30000), 1);
    assert_int_equal(p->count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(acks_and_retries_wait_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(many_ids_grow_the_list, setup, teardown),
        cmocka_unit_test_setup_teardown(silent_plugins_are_kept_while_ids_wait, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
