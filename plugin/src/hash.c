#include "hash.h"

#include <string.h>

/* Odd constants with well-spread bits; any such pair works for a mixer. */
#define MUL_A 0x9e3779b97f4a7c15ULL
#define MUL_B 0xc2b2ae3d27d4eb4fULL

static uint64_t rotl(uint64_t v, unsigned r)
{
    return (v << r) | (v >> (64u - r));
}

/* A bijective avalanche so that every input bit reaches every output bit. */
static uint64_t avalanche(uint64_t v)
{
    v ^= v >> 31;
    v *= 0x7fb5d329728ea185ULL;
    v ^= v >> 27;
    v *= 0x81dadef4bc2dd44dULL;
    v ^= v >> 33;
    return v;
}

static void absorb(struct mzbp_hash *h, uint64_t word)
{
    h->state ^= rotl(word * MUL_B, 31) * MUL_A;
    h->state = rotl(h->state, 27) * MUL_A + MUL_B;
}

void mzbp_hash_init(struct mzbp_hash *h, uint64_t seed)
{
    h->state = avalanche(seed ^ MUL_B);
}

void mzbp_hash_u64(struct mzbp_hash *h, uint64_t v)
{
    absorb(h, v);
}

void mzbp_hash_bytes(struct mzbp_hash *h, const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t word;

    absorb(h, (uint64_t)len);
    while (len >= 8) {
        memcpy(&word, b, 8);
        absorb(h, word);
        b += 8;
        len -= 8;
    }
    if (len > 0) {
        word = 0;
        memcpy(&word, b, len);
        absorb(h, word);
    }
}

uint64_t mzbp_hash_final(const struct mzbp_hash *h)
{
    return avalanche(h->state);
}
