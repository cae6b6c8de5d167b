#include "brg_heap.h"

#include <stdlib.h>

void brg_heap_init(struct brg_heap *heap)
{
    heap->items = NULL;
    heap->count = 0;
    heap->cap = 0;
}

void brg_heap_clear(struct brg_heap *heap)
{
    for (size_t i = 0; i < heap->count; i++) {
        heap->items[i]->index = BRG_HEAP_NONE;
    }
    free(heap->items);
    brg_heap_init(heap);
}

static void place(struct brg_heap *heap, size_t i, struct brg_heap_node *node)
{
    heap->items[i] = node;
    node->index = i;
}

static void sift_up(struct brg_heap *heap, size_t i)
{
    struct brg_heap_node *node = heap->items[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (heap->items[parent]->when <= node->when) {
            break;
        }
        place(heap, i, heap->items[parent]);
        i = parent;
    }
    place(heap, i, node);
}

static void sift_down(struct brg_heap *heap, size_t i)
{
    struct brg_heap_node *node = heap->items[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= heap->count) {
            break;
        }
        if (child + 1 < heap->count && heap->items[child + 1]->when < heap->items[child]->when) {
            child++;
        }
        if (node->when <= heap->items[child]->when) {
            break;
        }
        place(heap, i, heap->items[child]);
        i = child;
    }
    place(heap, i, node);
}

int brg_heap_push(struct brg_heap *heap, struct brg_heap_node *node)
{
    if (heap->count == heap->cap) {
        size_t cap = heap->cap ? heap->cap * 2 : 64;
        struct brg_heap_node **items = realloc(heap->items, cap * sizeof(*items));

        if (!items) {
            return -1;
        }
        heap->items = items;
        heap->cap = cap;
    }

    place(heap, heap->count++, node);
    sift_up(heap, node->index);
    return 0;
}

void brg_heap_remove(struct brg_heap *heap, struct brg_heap_node *node)
{
    size_t i = node->index;
    struct brg_heap_node *last;

    if (i == BRG_HEAP_NONE || i >= heap->count || heap->items[i] != node) {
        return;
    }

    node->index = BRG_HEAP_NONE;
    last = heap->items[--heap->count];
    if (last == node) {
        return;
    }
    place(heap, i, last);
    sift_down(heap, i);
    sift_up(heap, last->index);
}

struct brg_heap_node *brg_heap_top(const struct brg_heap *heap)
{
    return heap->count > 0 ? heap->items[0] : NULL;
}
