#include "handler_dedup.h"

#include <stdlib.h>

#define NO_SLOT UINT32_MAX

struct mzbh_dedup {
    uint32_t capacity;
    uint32_t used;      /* slots filled so far, up to capacity */
    uint32_t oldest;    /* the slot overwritten next once the ring is full */
    uint32_t hash_bits; /* the index has 1 << hash_bits buckets */
    uint64_t *ids;
    uint32_t *next;    /* per slot: the next slot in the same bucket */
    uint32_t *buckets; /* per bucket: its first slot */
};

static uint32_t bucket_of(const struct mzbh_dedup *d, uint64_t id)
{
    /* Fibonacci hashing: message ids share their top bits, so mix before taking the top. */
    return (uint32_t)((id * 0x9e3779b97f4a7c15ULL) >> (64 - d->hash_bits));
}

static uint32_t hash_bits_for(uint32_t capacity)
{
    uint32_t bits = 1;

    /* At least two buckets per slot keeps the chains short. */
    while (bits < 31 && (1u << bits) < 2u * capacity) {
        bits++;
    }
    return bits;
}

struct mzbh_dedup *mzbh_dedup_new(uint32_t capacity)
{
    struct mzbh_dedup *d = calloc(1, sizeof(*d));
    size_t nbuckets;

    if (!d) {
        return NULL;
    }
    d->capacity = capacity > 0 ? capacity : 1;
    d->hash_bits = hash_bits_for(d->capacity);
    nbuckets = (size_t)1 << d->hash_bits;
    d->ids = calloc(d->capacity, sizeof(*d->ids));
    d->next = calloc(d->capacity, sizeof(*d->next));
    d->buckets = malloc(nbuckets * sizeof(*d->buckets));
    if (!d->ids || !d->next || !d->buckets) {
        mzbh_dedup_destroy(&d);
        return NULL;
    }

    for (size_t i = 0; i < nbuckets; i++) {
        d->buckets[i] = NO_SLOT;
    }
    return d;
}

void mzbh_dedup_destroy(struct mzbh_dedup **d)
{
    if (!d || !*d) {
        return;
    }
    free((*d)->ids);
    free((*d)->next);
    free((*d)->buckets);
    free(*d);
    *d = NULL;
}

int mzbh_dedup_contains(const struct mzbh_dedup *d, uint64_t id)
{
    for (uint32_t s = d->buckets[bucket_of(d, id)]; s != NO_SLOT; s = d->next[s]) {
        if (d->ids[s] == id) {
            return 1;
        }
    }
    return 0;
}

static void unlink_slot(struct mzbh_dedup *d, uint32_t slot)
{
    uint32_t *link = &d->buckets[bucket_of(d, d->ids[slot])];

    while (*link != NO_SLOT && *link != slot) {
        link = &d->next[*link];
    }
    if (*link == slot) {
        *link = d->next[slot];
    }
}

void mzbh_dedup_add(struct mzbh_dedup *d, uint64_t id)
{
    uint32_t slot;
    uint32_t b;

    if (mzbh_dedup_contains(d, id)) {
        return;
    }

    if (d->used < d->capacity) {
        slot = d->used++;
    } else {
        slot = d->oldest;
        unlink_slot(d, slot);
        d->oldest = (d->oldest + 1) % d->capacity;
    }

    b = bucket_of(d, id);
    d->ids[slot] = id;
    d->next[slot] = d->buckets[b];
    d->buckets[b] = slot;
}
