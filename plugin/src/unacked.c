#include "unacked.h"

#include <stdlib.h>
#include <string.h>

/* Bucket arrays stop growing here; chains then get longer, which stays correct. */
#define MAX_BUCKETS ((size_t)1 << 20)

/*
 * One deferral list per backoff step: 100, 200, 400, 800, 1600 ms, and the
 * last one for every further RETRY at 2 s. All entries of a list wait the
 * same time, so appending keeps it ordered by due time.
 */
#define DEFER_LEVELS 6

_Static_assert((MZBP_RETRY_FIRST_MS << (DEFER_LEVELS - 2)) < MZBP_RETRY_MAX_MS &&
                   (MZBP_RETRY_FIRST_MS << (DEFER_LEVELS - 1)) >= MZBP_RETRY_MAX_MS,
               "each deferral list holds one backoff step");

/* A list linked through qprev and qnext. */
struct queue {
    struct mzbp_pending *head;
    struct mzbp_pending *tail;
};

struct mzbp_unacked {
    struct mzbp_pending **buckets;
    size_t bucket_mask;
    size_t max_entries;
    size_t count;
    size_t queued;
    size_t deferred;
    struct mzbp_pending *head; /* every entry, in the order they were added */
    struct mzbp_pending *tail;
    struct queue send;
    struct queue defer[DEFER_LEVELS];
};

struct mzbp_pending *mzbp_pending_new(uint64_t id, const void *record, size_t record_len)
{
    struct mzbp_pending *p = malloc(sizeof(*p) + record_len);

    if (p == NULL) {
        return NULL;
    }
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->record_len = record_len;
    if (record_len > 0) {
        memcpy(p->record, record, record_len);
    }
    return p;
}

void mzbp_pending_free(struct mzbp_pending **pp)
{
    if (pp == NULL || *pp == NULL) {
        return;
    }
    free(*pp);
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

/* Inserts p after at, or at the head when at is NULL. */
static void queue_insert_after(struct queue *q, struct mzbp_pending *at, struct mzbp_pending *p)
{
    p->qprev = at;
    p->qnext = at != NULL ? at->qnext : q->head;
    if (p->qnext != NULL) {
        p->qnext->qprev = p;
    } else {
        q->tail = p;
    }
    if (at != NULL) {
        at->qnext = p;
    } else {
        q->head = p;
    }
}

static void queue_unlink(struct queue *q, struct mzbp_pending *p)
{
    if (p->qprev != NULL) {
        p->qprev->qnext = p->qnext;
    } else {
        q->head = p->qnext;
    }
    if (p->qnext != NULL) {
        p->qnext->qprev = p->qprev;
    } else {
        q->tail = p->qprev;
    }
    p->qprev = NULL;
    p->qnext = NULL;
}

static struct queue *defer_list_of(struct mzbp_unacked *t, const struct mzbp_pending *p)
{
    unsigned level = p->retries < DEFER_LEVELS ? p->retries : DEFER_LEVELS;

    return &t->defer[level > 0 ? level - 1 : 0];
}

/*
 * Ordered by due time even if the clock jumped back: the walk from the tail
 * stops at once while it moves forward, and equal times keep arrival order.
 */
static void defer_insert(struct queue *q, struct mzbp_pending *p)
{
    struct mzbp_pending *at = q->tail;

    while (at != NULL && at->due_ms > p->due_ms) {
        at = at->qprev;
    }
    queue_insert_after(q, at, p);
}

/* Takes p out of the send queue or its deferral list, leaving it as if sent. */
static void leave_queues(struct mzbp_unacked *t, struct mzbp_pending *p)
{
    if (p->state == MZBP_PENDING_QUEUED) {
        queue_unlink(&t->send, p);
        t->queued--;
    } else if (p->state == MZBP_PENDING_DEFERRED) {
        queue_unlink(defer_list_of(t, p), p);
        t->deferred--;
    }
    p->state = MZBP_PENDING_SENT;
}

static void enqueue(struct mzbp_unacked *t, struct mzbp_pending *p)
{
    queue_insert_after(&t->send, t->send.tail, p);
    p->state = MZBP_PENDING_QUEUED;
    t->queued++;
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

    p->retries = 0;
    p->due_ms = 0;
    enqueue(t, p);
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

    leave_queues(t, p);
    order_unlink(t, p);
    t->count--;
    return p;
}

struct mzbp_pending *mzbp_unacked_first_queued(const struct mzbp_unacked *t)
{
    return t->send.head;
}

void mzbp_unacked_mark_first_sent(struct mzbp_unacked *t)
{
    struct mzbp_pending *p = t->send.head;

    if (p != NULL) {
        leave_queues(t, p);
    }
}

uint32_t mzbp_unacked_backoff_ms(unsigned retries)
{
    unsigned shift = retries > 0 ? retries - 1 : 0;

    if (shift >= DEFER_LEVELS - 1) {
        return MZBP_RETRY_MAX_MS;
    }
    return MZBP_RETRY_FIRST_MS << shift;
}

struct mzbp_pending *mzbp_unacked_defer(struct mzbp_unacked *t, uint64_t id, uint64_t now_ms)
{
    struct mzbp_pending *p = *find_slot(t, id);

    if (p == NULL) {
        return NULL;
    }
    leave_queues(t, p);

    if (p->retries < UINT8_MAX) {
        p->retries++;
    }
    p->due_ms = now_ms + mzbp_unacked_backoff_ms(p->retries);
    p->state = MZBP_PENDING_DEFERRED;
    defer_insert(defer_list_of(t, p), p);
    t->deferred++;
    return p;
}

/* The deferral list whose head is due first at now_ms, or NULL when none is due. */
static struct queue *earliest_due(struct mzbp_unacked *t, uint64_t now_ms)
{
    struct queue *best = NULL;

    for (int i = 0; i < DEFER_LEVELS; i++) {
        const struct mzbp_pending *h = t->defer[i].head;

        if (h == NULL || h->due_ms > now_ms) {
            continue;
        }
        if (best == NULL || h->due_ms < best->head->due_ms ||
            (h->due_ms == best->head->due_ms && h->id < best->head->id)) {
            best = &t->defer[i];
        }
    }
    return best;
}

size_t mzbp_unacked_release_due(struct mzbp_unacked *t, uint64_t now_ms)
{
    struct queue *q;
    size_t moved = 0;

    while ((q = earliest_due(t, now_ms)) != NULL) {
        struct mzbp_pending *p = q->head;

        leave_queues(t, p);
        enqueue(t, p);
        moved++;
    }
    return moved;
}

int mzbp_unacked_next_due(const struct mzbp_unacked *t, uint64_t *due_ms)
{
    int found = 0;

    for (int i = 0; i < DEFER_LEVELS; i++) {
        const struct mzbp_pending *h = t->defer[i].head;

        if (h != NULL && (!found || h->due_ms < *due_ms)) {
            *due_ms = h->due_ms;
            found = 1;
        }
    }
    return found;
}

void mzbp_unacked_mark_all_unsent(struct mzbp_unacked *t)
{
    memset(&t->send, 0, sizeof(t->send));
    memset(t->defer, 0, sizeof(t->defer));
    t->queued = 0;
    t->deferred = 0;
    for (struct mzbp_pending *p = t->head; p != NULL; p = p->next) {
        p->retries = 0;
        p->due_ms = 0;
        enqueue(t, p);
    }
}

size_t mzbp_unacked_count(const struct mzbp_unacked *t)
{
    return t->count;
}

size_t mzbp_unacked_unsent_count(const struct mzbp_unacked *t)
{
    return t->queued + t->deferred;
}

size_t mzbp_unacked_deferred_count(const struct mzbp_unacked *t)
{
    return t->deferred;
}

struct mzbp_pending *mzbp_unacked_first(const struct mzbp_unacked *t)
{
    return t->head;
}
