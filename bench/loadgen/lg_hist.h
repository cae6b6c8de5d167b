/*
 * lg_hist: a latency histogram with log-linear buckets (exact below 128 ns, then 64 buckets
 * per power of two, so every recorded value is within 1.6% of its bucket). Fixed size, no
 * allocation, so recording costs a few instructions on the hot path.
 */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 6
#define LG_HIST_SUB (1 << LG_HIST_SUB_BITS)
#define LG_HIST_MAX_BITS 42 /* values up to about 73 minutes in ns */
#define LG_HIST_BUCKETS (2 * LG_HIST_SUB + (LG_HIST_MAX_BITS - LG_HIST_SUB_BITS) * LG_HIST_SUB)

struct lg_hist {
    uint64_t count;
    uint64_t max;
    uint64_t buckets[LG_HIST_BUCKETS];
};

/* Adds one value (ns); values past the top land in the last bucket, max stays exact. */
void lg_hist_add(struct lg_hist *h, uint64_t value);

/* Adds every value of src into dst. */
void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);

/* The value at quantile q (0..1): the middle of its bucket; max for q >= 1; 0 when empty. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

#endif
