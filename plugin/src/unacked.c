#include "unacked.h"

#include <stdlib.h>

/* Bucket arrays stop growing here; chains then get longer, which stays correct. */
#define MAX_BUCKETS ((size_t)1 << 20)

struct mzbp_unacked {
    struct mzbp_pending **buckets;
    size_t bucket_mask;
    size_t max_entries;
    size_t count;
    size_t unsent;
    struct mzbp_pending *head;
    struct mzbp_pending *tail;
    struct mzbp_pending *first_unsent;
};

struct mzbp_pending *mzbp_pending_new(uint64_t id)
{
    struct mzbp_pending *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->id = id;
    for (int i = 0; i < MZBP_FRAME_COUNT; i++) {
        zmq_msg_init(&p->frames[i]);
    }
    return p;
}

void mzbp_pending_free(struct mzbp_pending **pp)
{
    struct mzbp_pending *p = pp ? *pp : NULL;

    if (p == NULL) {
        return;
    }
    /* zmq_msg_close fails only on a message that was never initialised. */
    for (int i = 0; i < MZBP_FRAME_COUNT; i++) {
        (void)zmq_msg_close(&p->frames[i]);
    }
    free(p);
    *pp = NULL;
}

static size_t bucket_count_for(size_t max_entries)
{
    size_t n = 16;

    while (n < max_entries && n < MAX_BUCKETS) {
        n <<= 1;
    }
    return n;
}

struct mzbp_unacked *mzbp_unacked_new(size_t max_entries)
{
    struct mzbp_unacked *t = calloc(1, sizeof(*t));
    size_t buckets;

    if (t == NULL) {
        return NULL;
    }
    t->max_entries = max_entries > 0 ? max_entries : 1;
    buckets = bucket_count_for(t->max_entries);
    t->buckets = calloc(buckets, sizeof(*t->buckets));
    if (t->buckets == NULL) {
        free(t);
        return NULL;
    }
    t->bucket_mask = buckets - 1;
    return t;
}

void mzbp_unacked_destroy(struct mzbp_unacked **tp)
{
    struct mzbp_unacked *t = tp ? *tp : NULL;

    if (t == NULL) {
        return;
    }
    while (t->head != NULL) {
        struct mzbp_pending *p = t->head;

        t->head = p->next;
        mzbp_pending_free(&p);
    }
    free(t->buckets);
    free(t);
    *tp = NULL;
}

/* Ids share their top 24 bits and count up in the low 40, so mix before masking. */
static size_t bucket_of(const struct mzbp_unacked *t, uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ULL;

    return (size_t)(h >> 32) & t->bucket_mask;
}

static struct mzbp_pending **find_slot(struct mzbp_unacked *t, uint64_t id)
{
    struct mzbp_pending **slot = &t->buckets[bucket_of(t, id)];

    while (*slot != NULL && (*slot)->id != id) {
        slot = &(*slot)->hash_next;
    }
    return slot;
}

static void order_append(struct mzbp_unacked *t, struct mzbp_pending *p)
{
    p->prev = t->tail;
    p->next = NULL;
    if (t->tail != NULL) {
        t->tail->next = p;
    } else {
        t->head = p;
    }
    t->tail = p;
}

static void order_unlink(struct mzbp_unacked *t, struct mzbp_pending *p)
{
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        t->head = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    } else {
        t->tail = p->prev;
    }
    p->prev = NULL;
    p->next = NULL;
}

int mzbp_unacked_add(struct mzbp_unacked *t, struct mzbp_pending *p)
{
    struct mzbp_pending **slot;

    if (t->count >= t->max_entries) {
        return MZBP_UNACKED_E_FULL;
    }
    slot = find_slot(t, p->id);
    if (*slot != NULL) {
        return MZBP_UNACKED_E_DUPLICATE;
    }

    p->hash_next = NULL;
    *slot = p;
    order_append(t, p);
    t->count++;

    if (p->unsent || t->first_unsent != NULL) {
        p->unsent = 1;
        t->unsent++;
        if (t->first_unsent == NULL) {
            t->first_unsent = p;
        }
    }
    return MZBP_UNACKED_OK;
}

struct mzbp_pending *mzbp_unacked_take(struct mzbp_unacked *t, uint64_t id)
{
    struct mzbp_pending **slot = find_slot(t, id);
    struct mzbp_pending *p = *slot;

    if (p == NULL) {
        return NULL;
    }
    *slot = p->hash_next;
    p->hash_next = NULL;

    if (t->first_unsent == p) {
        t->first_unsent = p->next;
    }
    if (p->unsent) {
        t->unsent--;
    }
    order_unlink(t, p);
    t->count--;
    return p;
}

struct mzbp_pending *mzbp_unacked_first_unsent(const struct mzbp_unacked *t)
{
    return t->first_unsent;
}

void mzbp_unacked_mark_first_sent(struct mzbp_unacked *t)
{
    struct mzbp_pending *p = t->first_unsent;

    if (p == NULL) {
        return;
    }
    p->unsent = 0;
    t->unsent--;
    t->first_unsent = p->next;
}

void mzbp_unacked_mark_all_unsent(struct mzbp_unacked *t)
{
    for (struct mzbp_pending *p = t->head; p != NULL; p = p->next) {
        p->unsent = 1;
    }
    t->unsent = t->count;
    t->first_unsent = t->head;
}

size_t mzbp_unacked_count(const struct mzbp_unacked *t)
{
    return t->count;
}

size_t mzbp_unacked_unsent_count(const struct mzbp_unacked *t)
{
    return t->unsent;
}

struct mzbp_pending *mzbp_unacked_first(const struct mzbp_unacked *t)
{
    return t->head;
}
