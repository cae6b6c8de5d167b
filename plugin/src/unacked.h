/*
 * unacked: the QoS 1 and 2 dispatches the bridge has not acknowledged yet,
 * found by message id and kept in the order they were first added, so that
 * they can be sent again, in order, to a restarted bridge.
 *
 * Each entry is in one of three states:
 * - queued: in the send queue, to go as soon as the socket takes it;
 * - deferred: the bridge sent it back (RETRY) and it may go again only at its
 *   due time, 100 ms after the first RETRY and twice as long after each
 *   further one, at most 2 s;
 * - sent: on the wire, waiting for the bridge's ACK or RETRY.
 * Queued and deferred entries together are the "unsent" ones.
 *
 * Deferred entries wait in lists of their own, one per backoff step, so each
 * list is ordered by due time when the clock only moves forward; the send
 * queue never holds an entry whose time has not come, so messages behind a
 * deferred one are not held up by it, and finding due entries never scans
 * the whole table. Used by the I/O thread only; not thread-safe.
 */
#ifndef MZBP_UNACKED_H
#define MZBP_UNACKED_H

#include <stddef.h>
#include <stdint.h>

/* The pause after the first RETRY of a message, and the longest pause (docs/protocol.md). */
#define MZBP_RETRY_FIRST_MS 100u
#define MZBP_RETRY_MAX_MS 2000u

enum mzbp_pending_state {
    MZBP_PENDING_SENT = 0,
    MZBP_PENDING_QUEUED = 1,
    MZBP_PENDING_DEFERRED = 2,
};

struct mzbp_pending {
    uint64_t id;
    uint64_t due_ms;     /* deferred: not sent again before this time */
    uint8_t state;       /* enum mzbp_pending_state */
    uint8_t retries;     /* RETRYs since the last resend to a new connection; saturates */
    uint8_t sent_before; /* sent at least once, so a send now counts as a resend */
    struct mzbp_pending *hash_next;
    struct mzbp_pending *prev; /* every entry, in the order they were added */
    struct mzbp_pending *next;
    struct mzbp_pending *qprev; /* the send queue or a deferral list, by state */
    struct mzbp_pending *qnext;
    size_t record_len;
    uint8_t record[]; /* the dispatch as one BATCH record (mzb_batch.h) */
};

struct mzbp_unacked;

/* Returns a new entry with id and a copy of the record, or NULL when out of memory. */
struct mzbp_pending *mzbp_pending_new(uint64_t id, const void *record, size_t record_len);

/* Frees the entry and sets *p to NULL. Accepts NULL. */
void mzbp_pending_free(struct mzbp_pending **p);

/* Returns a table that holds at most max_entries (at least 1), or NULL when out of memory. */
struct mzbp_unacked *mzbp_unacked_new(size_t max_entries);

/* Frees the table and every entry in it, and sets *t to NULL. Accepts NULL. */
void mzbp_unacked_destroy(struct mzbp_unacked **t);

enum mzbp_unacked_err {
    MZBP_UNACKED_OK = 0,
    MZBP_UNACKED_E_FULL = 1,      /* max_entries reached */
    MZBP_UNACKED_E_DUPLICATE = 2, /* an entry with this id is held already */
};

/*
 * Appends p at the end of the send order and of the send queue. On
 * MZBP_UNACKED_OK the table owns p; otherwise the caller still does.
 */
int mzbp_unacked_add(struct mzbp_unacked *t, struct mzbp_pending *p);

/* Removes the entry with id, in any state, and hands it to the caller; NULL when none. */
struct mzbp_pending *mzbp_unacked_take(struct mzbp_unacked *t, uint64_t id);

/* The first entry of the send queue, or NULL when it is empty. */
struct mzbp_pending *mzbp_unacked_first_queued(const struct mzbp_unacked *t);

/* Marks the first entry of the send queue as sent; the next one becomes the first. */
void mzbp_unacked_mark_first_sent(struct mzbp_unacked *t);

/*
 * The bridge sent the entry with id back: it leaves the send queue or the
 * wire and waits until now_ms plus its backoff (mzbp_unacked_backoff_ms of
 * its RETRY count, this one included). A deferred entry is deferred again,
 * for longer. Returns the entry, still owned by the table, or NULL when no
 * entry has this id.
 */
struct mzbp_pending *mzbp_unacked_defer(struct mzbp_unacked *t, uint64_t id, uint64_t now_ms);

/*
 * Moves every deferred entry due at now_ms to the end of the send queue,
 * earliest due first (equal times: the lower id, which for the plugin's
 * counter-based ids is the older message). Returns how many moved. Costs
 * time in the number moved, not in the number deferred.
 */
size_t mzbp_unacked_release_due(struct mzbp_unacked *t, uint64_t now_ms);

/* Sets *due_ms to the earliest due time of a deferred entry and returns 1; 0 when none. */
int mzbp_unacked_next_due(const struct mzbp_unacked *t, uint64_t *due_ms);

/*
 * Puts every entry, sent and deferred ones too, into the send queue in the
 * order they were added, and forgets their RETRY counts: for a resend to a
 * bridge that lost them.
 */
void mzbp_unacked_mark_all_unsent(struct mzbp_unacked *t);

/* The pause after the given number of RETRYs of one message (at least 1). */
uint32_t mzbp_unacked_backoff_ms(unsigned retries);

size_t mzbp_unacked_count(const struct mzbp_unacked *t);
/* Queued and deferred entries. */
size_t mzbp_unacked_unsent_count(const struct mzbp_unacked *t);
size_t mzbp_unacked_deferred_count(const struct mzbp_unacked *t);

/* The oldest entry in send order, or NULL; for tests and diagnostics. */
struct mzbp_pending *mzbp_unacked_first(const struct mzbp_unacked *t);

#endif
