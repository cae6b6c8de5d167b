#include "handoff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mzb_batch.h"

int mzbp_handoff_init(struct mzbp_handoff *h, uint32_t limit)
{
    memset(h, 0, sizeof(*h));
    h->limit = limit == 0 ? 1 : limit;
    atomic_init(&h->pending, 0);
    return pthread_mutex_init(&h->lock, NULL);
}

void mzbp_handoff_destroy(struct mzbp_handoff *h)
{
    free(h->buf);
    h->buf = NULL;
    (void)pthread_mutex_destroy(&h->lock);
}

/* Makes room for need more bytes; the lock is held. */
static int reserve(struct mzbp_handoff *h, size_t need)
{
    size_t cap = h->cap > 0 ? h->cap : MZBP_HANDOFF_FIRST_CAP;
    uint8_t *grown;

    if (h->buf != NULL && h->cap - h->len >= need) {
        return 0;
    }
    while (cap - h->len < need) {
        if (cap > SIZE_MAX / 2) {
            return ENOMEM;
        }
        cap *= 2;
    }
    grown = realloc(h->buf, cap);
    if (grown == NULL) {
        return ENOMEM;
    }
    h->buf = grown;
    h->cap = cap;
    return 0;
}

/* Writes the record at the end of the body, whose room was reserved; the lock is held. */
static int write_record(struct mzbp_handoff *h, const char *service, size_t service_len,
                        const struct mzb_meta *m, size_t meta_len, const void *payload,
                        size_t payload_len)
{
    uint8_t *meta = mzb_batch_put_service(h->buf + h->len, service, service_len);
    size_t written = 0;
    uint8_t *end;

    if (mzb_meta_encode(m, meta, meta_len, &written) != MZB_META_OK || written != meta_len) {
        return EMSGSIZE;
    }
    end = mzb_batch_put_rest(meta, meta_len, payload, payload_len);
    h->len = (size_t)(end - h->buf);
    return 0;
}

int mzbp_handoff_append(struct mzbp_handoff *h, const char *service, size_t service_len,
                        const struct mzb_meta *m, const void *payload, size_t payload_len,
                        uint32_t *waiting, size_t *bytes)
{
    size_t meta_len = mzb_meta_encoded_size(m);
    size_t size = mzb_batch_record_size(service_len, meta_len, payload_len);
    unsigned count;
    int rc;

    if (size == 0) {
        return EMSGSIZE;
    }
    pthread_mutex_lock(&h->lock);
    count = atomic_load_explicit(&h->pending, memory_order_relaxed);
    if (count >= h->limit) {
        rc = EAGAIN;
    } else if ((rc = reserve(h, size)) == 0 &&
               (rc = write_record(h, service, service_len, m, meta_len, payload, payload_len)) ==
                   0) {
        count++;
        atomic_store(&h->pending, count);
    }
    *waiting = count;
    *bytes = h->len;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int mzbp_handoff_take(struct mzbp_handoff *h, struct mzbp_handoff_batch *out)
{
    pthread_mutex_lock(&h->lock);
    out->data = h->buf;
    out->len = h->len;
    out->count = atomic_load_explicit(&h->pending, memory_order_relaxed);
    h->buf = NULL;
    h->len = 0;
    h->cap = 0;
    atomic_store(&h->pending, 0);
    pthread_mutex_unlock(&h->lock);

    if (out->count == 0) {
        free(out->data);
        out->data = NULL;
        out->len = 0;
        return 0;
    }
    return 1;
}

uint32_t mzbp_handoff_pending(struct mzbp_handoff *h)
{
    return atomic_load(&h->pending);
}
