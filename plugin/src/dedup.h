/*
 * dedup: remembers the hashes of recent QoS 2 dispatches, so that a QoS 2
 * PUBLISH the client sends again (DUP=1, same packet id) is not dispatched a
 * second time. Mosquitto 2.0 calls the MESSAGE callback before its own
 * duplicate check and the plugin API does not show packet ids, so the hash of
 * (client id, topic, payload, properties) stands in for the packet id.
 *
 * A fixed table: no allocation per message, safe on the broker's thread, not
 * thread-safe (the broker's thread is its only user).
 */
#ifndef MZBP_DEDUP_H
#define MZBP_DEDUP_H

#include <stdint.h>

/* 256 KiB; covers about 3,000 QoS 2 dispatches a second in a 5 s window. */
#define MZBP_DEDUP_SLOTS 16384
#define MZBP_DEDUP_WAYS 8

struct mzbp_dedup_slot {
    uint64_t hash;
    uint64_t expires_ms; /* 0: empty */
};

struct mzbp_dedup {
    struct mzbp_dedup_slot slots[MZBP_DEDUP_SLOTS];
};

/* Empties the table. */
void mzbp_dedup_clear(struct mzbp_dedup *d);

/* Returns 1 when hash was recorded and its window has not ended at now_ms, else 0. */
int mzbp_dedup_seen(const struct mzbp_dedup *d, uint64_t hash, uint64_t now_ms);

/*
 * Records hash until now_ms + window_ms. When every slot hash can use still
 * holds a live entry, the one closest to its end is overwritten and 1 is
 * returned (a repeat of that message would then get through); else 0.
 */
int mzbp_dedup_record(struct mzbp_dedup *d, uint64_t hash, uint64_t now_ms, uint64_t window_ms);

#endif
