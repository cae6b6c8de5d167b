/*
 * handoff: the dispatches the broker's thread has made and the I/O thread has
 * not taken yet, laid out as one growing BATCH body (mzb_batch.h).
 *
 * The broker's thread appends; the I/O thread takes the whole body at once.
 * Both hold the lock only for an append or a pointer swap, so neither waits
 * longer than one record's copy. When and how the I/O thread is told to take
 * it is io_thread.c's business.
 */
#ifndef MZBP_HANDOFF_H
#define MZBP_HANDOFF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mzb_meta.h"

/* A body starts this large, and grows by doubling to fit a record. */
#define MZBP_HANDOFF_FIRST_CAP 16384

struct mzbp_handoff {
    pthread_mutex_t lock;
    uint8_t *buf; /* NULL until the first append after a take */
    size_t len;
    size_t cap;
    uint32_t limit;      /* plugin.queue_limit: records that may wait */
    atomic_uint pending; /* records waiting; readable without the lock */
};

/* A taken body; the taker owns data (malloc'd) and frees it, or hands it to ZeroMQ. */
struct mzbp_handoff_batch {
    uint8_t *data;
    size_t len;
    uint32_t count;
};

/* Sets up an empty handoff; returns 0 or an errno value. */
int mzbp_handoff_init(struct mzbp_handoff *h, uint32_t limit);

/* Frees what waits and the lock. */
void mzbp_handoff_destroy(struct mzbp_handoff *h);

/*
 * Appends one record: the service name, the metadata m (encoded straight into
 * the body) and a copy of the payload. Returns 0 and sets *waiting (records)
 * and *bytes (body size) to what waits now, EAGAIN when limit records wait
 * already, EMSGSIZE when the record cannot be encoded, or ENOMEM.
 */
int mzbp_handoff_append(struct mzbp_handoff *h, const char *service, size_t service_len,
                        const struct mzb_meta *m, const void *payload, size_t payload_len,
                        uint32_t *waiting, size_t *bytes);

/* Takes everything that waits; returns 0 when nothing did (out is then empty). */
int mzbp_handoff_take(struct mzbp_handoff *h, struct mzbp_handoff_batch *out);

/* Records waiting; a snapshot, without the lock. */
uint32_t mzbp_handoff_pending(struct mzbp_handoff *h);

#endif
