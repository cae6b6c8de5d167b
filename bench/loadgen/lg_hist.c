#include "lg_hist.h"

#include <math.h>

static unsigned bucket_of(uint64_t v)
{
    unsigned msb;
    unsigned shift;
    unsigned idx;

    if (v < 2 * LG_HIST_SUB) {
        return (unsigned)v;
    }
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - LG_HIST_SUB_BITS;
    idx = 2 * LG_HIST_SUB + (shift - 1) * LG_HIST_SUB + (unsigned)((v >> shift) - LG_HIST_SUB);
    return idx < LG_HIST_BUCKETS ? idx : LG_HIST_BUCKETS - 1;
}

/* The middle of a bucket, the value a quantile in it is reported as. */
static uint64_t bucket_middle(unsigned idx)
{
    unsigned shift;
    uint64_t mantissa;

    if (idx < 2 * LG_HIST_SUB) {
        return idx;
    }
    shift = (idx - 2 * LG_HIST_SUB) / LG_HIST_SUB + 1;
    mantissa = LG_HIST_SUB + (idx - 2 * LG_HIST_SUB) % LG_HIST_SUB;
    return (mantissa << shift) + ((uint64_t)1 << (shift - 1));
}

void lg_hist_add(struct lg_hist *h, uint64_t value)
{
    h->buckets[bucket_of(value)]++;
    h->count++;
    if (value > h->max) {
        h->max = value;
    }
}

void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
    dst->count += src->count;
    if (src->max > dst->max) {
        dst->max = src->max;
    }
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
    uint64_t rank;
    uint64_t seen = 0;
    uint64_t mid;

    if (h->count == 0) {
        return 0;
    }
    if (q >= 1.0) {
        return h->max;
    }
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1) {
        rank = 1;
    }
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            mid = bucket_middle(i);
            return mid < h->max ? mid : h->max;
        }
    }
    return h->max;
}
