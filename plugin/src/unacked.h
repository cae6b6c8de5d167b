/*
 * unacked: the QoS 1 and 2 dispatches the bridge has not acknowledged yet,
 * found by message id and kept in the order they were first sent, so that
 * they can be sent again, in order, to a restarted bridge.
 *
 * Entries that are not (or no longer) on the wire are "unsent". The table
 * keeps them as a suffix of the send order: a new entry joins the unsent ones
 * when any exist, a flush sends from the first unsent one onward, and a
 * resend marks everything unsent. Used by the I/O thread only; not
 * thread-safe.
 */
#ifndef MZBP_UNACKED_H
#define MZBP_UNACKED_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* The frames of a DISPATCH after "MZB01" and the command byte. */
enum mzbp_frame {
    MZBP_FRAME_SERVICE = 0,
    MZBP_FRAME_META = 1,
    MZBP_FRAME_PAYLOAD = 2,
    MZBP_FRAME_COUNT = 3,
};

struct mzbp_pending {
    uint64_t id;
    int unsent;      /* not on the wire now */
    int sent_before; /* sent at least once, so a send now counts as a resend */
    struct mzbp_pending *hash_next;
    struct mzbp_pending *prev;
    struct mzbp_pending *next;
    zmq_msg_t frames[MZBP_FRAME_COUNT];
};

struct mzbp_unacked;

/* Returns a new entry with id and empty frames, or NULL when out of memory. */
struct mzbp_pending *mzbp_pending_new(uint64_t id);

/* Closes the entry's frames, frees it and sets *p to NULL. Accepts NULL. */
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
 * Appends p at the end of the send order. It is marked unsent when p->unsent
 * is set or other entries are still unsent (so nothing overtakes them). On
 * MZBP_UNACKED_OK the table owns p; otherwise the caller still does.
 */
int mzbp_unacked_add(struct mzbp_unacked *t, struct mzbp_pending *p);

/* Removes the entry with id and hands it to the caller, or returns NULL when none. */
struct mzbp_pending *mzbp_unacked_take(struct mzbp_unacked *t, uint64_t id);

/* The oldest unsent entry, or NULL when every entry is on the wire. */
struct mzbp_pending *mzbp_unacked_first_unsent(const struct mzbp_unacked *t);

/* Marks the oldest unsent entry as sent; the next one becomes the oldest unsent. */
void mzbp_unacked_mark_first_sent(struct mzbp_unacked *t);

/* Marks every entry unsent, for a resend to a bridge that lost them. */
void mzbp_unacked_mark_all_unsent(struct mzbp_unacked *t);

size_t mzbp_unacked_count(const struct mzbp_unacked *t);
size_t mzbp_unacked_unsent_count(const struct mzbp_unacked *t);

/* The oldest entry in send order, or NULL; for tests and diagnostics. */
struct mzbp_pending *mzbp_unacked_first(const struct mzbp_unacked *t);

#endif
