/*
 * brg_heap: a binary min-heap of deadlines. Each entry is a struct
 * brg_heap_node embedded in its owner, which remembers its own position, so
 * any entry can be removed in O(log n), not only the earliest.
 */
#ifndef BRG_HEAP_H
#define BRG_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define BRG_HEAP_NONE SIZE_MAX

struct brg_heap_node {
    uint64_t when; /* the deadline, in mzb_now_ms() milliseconds */
    size_t index;  /* position in the heap, BRG_HEAP_NONE when not in it */
};

struct brg_heap {
    struct brg_heap_node **items;
    size_t count;
    size_t cap;
};

void brg_heap_init(struct brg_heap *heap);

/* Frees the heap's array; the nodes belong to their owners. */
void brg_heap_clear(struct brg_heap *heap);

/* Adds node (not in the heap yet). Returns 0, or -1 when out of memory. */
int brg_heap_push(struct brg_heap *heap, struct brg_heap_node *node);

/* Removes node when it is in the heap; harmless otherwise. */
void brg_heap_remove(struct brg_heap *heap, struct brg_heap_node *node);

/* The node with the earliest deadline, or NULL when the heap is empty. */
struct brg_heap_node *brg_heap_top(const struct brg_heap *heap);

#endif
