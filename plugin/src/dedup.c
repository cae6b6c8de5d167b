#include "dedup.h"

#include <string.h>

#define BUCKETS (MZBP_DEDUP_SLOTS / MZBP_DEDUP_WAYS)

_Static_assert((BUCKETS & (BUCKETS - 1)) == 0, "the bucket count must be a power of two");

/* The low bits feed the hash's own mixer already; the high ones pick the bucket. */
static struct mzbp_dedup_slot *bucket_of(const struct mzbp_dedup *d, uint64_t hash)
{
    size_t bucket = (size_t)(hash >> 32) & (BUCKETS - 1);

    return (struct mzbp_dedup_slot *)&d->slots[bucket * MZBP_DEDUP_WAYS];
}

void mzbp_dedup_clear(struct mzbp_dedup *d)
{
    memset(d, 0, sizeof(*d));
}

int mzbp_dedup_seen(const struct mzbp_dedup *d, uint64_t hash, uint64_t now_ms)
{
    const struct mzbp_dedup_slot *s = bucket_of(d, hash);

    for (int i = 0; i < MZBP_DEDUP_WAYS; i++) {
        if (s[i].expires_ms > now_ms && s[i].hash == hash) {
            return 1;
        }
    }
    return 0;
}

/* The slot to write hash into: its own live one, else an empty or expired one, else the oldest. */
static struct mzbp_dedup_slot *pick_slot(struct mzbp_dedup_slot *s, uint64_t hash, uint64_t now_ms)
{
    struct mzbp_dedup_slot *victim = &s[0];

    for (int i = 0; i < MZBP_DEDUP_WAYS; i++) {
        if (s[i].expires_ms > now_ms && s[i].hash == hash) {
            return &s[i];
        }
    }
    for (int i = 0; i < MZBP_DEDUP_WAYS; i++) {
        if (s[i].expires_ms <= now_ms) {
            return &s[i];
        }
        if (s[i].expires_ms < victim->expires_ms) {
            victim = &s[i];
        }
    }
    return victim;
}

int mzbp_dedup_record(struct mzbp_dedup *d, uint64_t hash, uint64_t now_ms, uint64_t window_ms)
{
    struct mzbp_dedup_slot *slot = pick_slot(bucket_of(d, hash), hash, now_ms);
    int evicted = slot->expires_ms > now_ms && slot->hash != hash;

    slot->hash = hash;
    slot->expires_ms = now_ms + window_ms;
    return evicted;
}
