/* The bridge's hash map, deadline heap and intrusive list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brg_heap.h"
#include "brg_list.h"
#include "brg_map.h"

static void map_put_get_remove(void **state)
{
    struct brg_map *map = brg_map_new();
    int values[3] = {1, 2, 3};

    (void)state;
    assert_non_null(map);
    assert_int_equal(brg_map_put(map, "a", 1, &values[0]), 0);
    assert_int_equal(brg_map_put(map, "ab", 2, &values[1]), 0);
    assert_int_equal(brg_map_put(map, "", 0, &values[2]), 0);
    assert_int_equal(brg_map_count(map), 3);

    assert_ptr_equal(brg_map_get(map, "a", 1), &values[0]);
    assert_ptr_equal(brg_map_get(map, "ab", 2), &values[1]);
    assert_ptr_equal(brg_map_get(map, "", 0), &values[2]);
    assert_null(brg_map_get(map, "b", 1));

    /* Putting an existing key replaces its value without a second entry. */
    assert_int_equal(brg_map_put(map, "a", 1, &values[2]), 0);
    assert_int_equal(brg_map_count(map), 3);
    assert_ptr_equal(brg_map_get(map, "a", 1), &values[2]);

    assert_ptr_equal(brg_map_remove(map, "ab", 2), &values[1]);
    assert_null(brg_map_remove(map, "ab", 2));
    assert_int_equal(brg_map_count(map), 2);
    brg_map_destroy(&map);
    assert_null(map);
    brg_map_destroy(&map);
}

static void map_binary_keys_and_growth(void **state)
{
    struct brg_map *map = brg_map_new();
    enum { N = 5000 };

    (void)state;
    assert_non_null(map);
    for (uint64_t i = 0; i < N; i++) {
        uint8_t key[8] = {0};

        memcpy(key, &i, sizeof(i));
        assert_int_equal(brg_map_put(map, key, sizeof(key), (void *)(uintptr_t)(i + 1)), 0);
    }
    assert_int_equal(brg_map_count(map), N);
    for (uint64_t i = 0; i < N; i++) {
        uint8_t key[8] = {0};

        memcpy(key, &i, sizeof(i));
        assert_int_equal((uintptr_t)brg_map_get(map, key, sizeof(key)), i + 1);
    }
    for (uint64_t i = 0; i < N; i += 2) {
        uint8_t key[8] = {0};

        memcpy(key, &i, sizeof(i));
        assert_non_null(brg_map_remove(map, key, sizeof(key)));
    }
    assert_int_equal(brg_map_count(map), N / 2);
    brg_map_destroy(&map);
}

struct timer {
    struct brg_heap_node node;
    int id;
};

static void heap_orders_and_removes(void **state)
{
    static const uint64_t whens[] = {50, 10, 40, 10, 30, 20, 60, 5};
    enum { N = sizeof(whens) / sizeof(whens[0]) };
    struct timer timers[N];
    struct brg_heap heap;
    uint64_t last = 0;
    size_t popped = 0;

    (void)state;
    brg_heap_init(&heap);
    for (int i = 0; i < N; i++) {
        timers[i].node.when = whens[i];
        timers[i].node.index = BRG_HEAP_NONE;
        timers[i].id = i;
        assert_int_equal(brg_heap_push(&heap, &timers[i].node), 0);
    }

    /* Removing from the middle keeps the order of the rest. */
    brg_heap_remove(&heap, &timers[2].node);
    assert_int_equal(timers[2].node.index, BRG_HEAP_NONE);
    brg_heap_remove(&heap, &timers[2].node);

    while (brg_heap_top(&heap)) {
        struct brg_heap_node *top = brg_heap_top(&heap);

        assert_true(top->when >= last);
        assert_int_not_equal(top->when, 40);
        last = top->when;
        brg_heap_remove(&heap, top);
        popped++;
    }
    assert_int_equal(popped, N - 1);
    brg_heap_clear(&heap);
}

static void heap_random_against_sorting(void **state)
{
    enum { N = 2000 };
    struct timer *timers = calloc(N, sizeof(*timers));
    struct brg_heap heap;
    uint64_t last = 0;
    size_t left = 0;

    (void)state;
    assert_non_null(timers);
    brg_heap_init(&heap);
    srand(7);
    for (int i = 0; i < N; i++) {
        timers[i].node.when = (uint64_t)(rand() % 1000);
        timers[i].node.index = BRG_HEAP_NONE;
        assert_int_equal(brg_heap_push(&heap, &timers[i].node), 0);
    }
    for (int i = 0; i < N; i += 3) {
        brg_heap_remove(&heap, &timers[i].node);
    }
    while (brg_heap_top(&heap)) {
        struct brg_heap_node *top = brg_heap_top(&heap);

        assert_true(top->when >= last);
        last = top->when;
        brg_heap_remove(&heap, top);
        left++;
    }
    assert_int_equal(left, N - (N + 2) / 3);
    brg_heap_clear(&heap);
    free(timers);
}

struct item {
    struct brg_link link;
    int v;
};

static void list_fifo_and_remove(void **state)
{
    struct brg_link head;
    struct item items[4];
    struct brg_link *l;

    (void)state;
    brg_list_init(&head);
    assert_true(brg_list_empty(&head));
    for (int i = 0; i < 4; i++) {
        items[i].v = i;
        brg_list_init(&items[i].link);
        assert_false(brg_link_linked(&items[i].link));
    }
    brg_list_push_back(&head, &items[1].link);
    brg_list_push_back(&head, &items[2].link);
    brg_list_push_front(&head, &items[0].link);
    brg_list_push_back(&head, &items[3].link);
    brg_list_remove(&items[2].link);
    assert_false(brg_link_linked(&items[2].link));
    brg_list_remove(&items[2].link);

    l = brg_list_pop_front(&head);
    assert_int_equal(brg_container_of(l, struct item, link)->v, 0);
    l = brg_list_pop_front(&head);
    assert_int_equal(brg_container_of(l, struct item, link)->v, 1);
    l = brg_list_pop_front(&head);
    assert_int_equal(brg_container_of(l, struct item, link)->v, 3);
    assert_null(brg_list_pop_front(&head));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_put_get_remove),      cmocka_unit_test(map_binary_keys_and_growth),
        cmocka_unit_test(heap_orders_and_removes), cmocka_unit_test(heap_random_against_sorting),
        cmocka_unit_test(list_fifo_and_remove),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
