/*
 * hash: a seeded 64-bit hash fed piece by piece, for the QoS 2 repeat table.
 * Not cryptographic; the random seed per plugin load keeps a client from
 * choosing inputs that collide with another client's messages. Never
 * allocates; safe on the broker's thread.
 */
#ifndef MZBP_HASH_H
#define MZBP_HASH_H

#include <stddef.h>
#include <stdint.h>

struct mzbp_hash {
    uint64_t state;
};

/* Starts a hash with seed. */
void mzbp_hash_init(struct mzbp_hash *h, uint64_t seed);

/*
 * Adds len bytes at p (p may be NULL when len is 0). The length goes in too,
 * so ("ab", "c") and ("a", "bc") differ.
 */
void mzbp_hash_bytes(struct mzbp_hash *h, const void *p, size_t len);

/* Adds one number. */
void mzbp_hash_u64(struct mzbp_hash *h, uint64_t v);

/* Returns the hash of everything added so far; h may go on being fed. */
uint64_t mzbp_hash_final(const struct mzbp_hash *h);

#endif
