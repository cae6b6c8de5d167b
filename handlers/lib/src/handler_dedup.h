/*
 * handler_dedup: the ids of the last N finished messages, so that a resend
 * after a bridge restart is recognised. A ring keeps the order (the oldest id
 * leaves when a new one comes in) and a chained hash index makes a lookup cost
 * the same whatever N is.
 */
#ifndef HANDLER_DEDUP_H
#define HANDLER_DEDUP_H

#include <stdint.h>

struct mzbh_dedup;

/* Returns an empty set that remembers up to capacity ids (at least 1), or NULL. */
struct mzbh_dedup *mzbh_dedup_new(uint32_t capacity);

/* Frees the set and sets *d to NULL. Accepts NULL and a pointer to NULL. */
void mzbh_dedup_destroy(struct mzbh_dedup **d);

/* Returns 1 when id is among the remembered ids, else 0. */
int mzbh_dedup_contains(const struct mzbh_dedup *d, uint64_t id);

/* Remembers id, forgetting the oldest one when full. An id already held stays where it is. */
void mzbh_dedup_add(struct mzbh_dedup *d, uint64_t id);

#endif
