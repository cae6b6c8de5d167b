#include "mzb_batch.h"

#include <string.h>

#include "mzb_meta.h"

size_t mzb_batch_record_size(size_t service_len, size_t meta_len, size_t payload_len)
{
    if (service_len == 0 || service_len > MZB_BATCH_SERVICE_MAX || meta_len > UINT32_MAX ||
        payload_len > UINT32_MAX) {
        return 0;
    }
    return MZB_BATCH_OVERHEAD + service_len + meta_len + payload_len;
}

uint8_t *mzb_batch_put_service(uint8_t *p, const void *service, size_t service_len)
{
    p[0] = (uint8_t)service_len;
    memcpy(p + 1, service, service_len);
    return p + 1 + service_len + 4;
}

uint8_t *mzb_batch_put_rest(uint8_t *meta, size_t meta_len, const void *payload, size_t payload_len)
{
    uint8_t *p = meta + meta_len;

    mzb_put_u32(meta - 4, (uint32_t)meta_len);
    mzb_put_u32(p, (uint32_t)payload_len);
    if (payload_len > 0) {
        memcpy(p + 4, payload, payload_len);
    }
    return p + 4 + payload_len;
}

/* Reads a 4-byte length and the bytes it counts; 0 on success. */
static int take_sized(const uint8_t *buf, size_t len, size_t *offset, const uint8_t **out,
                      size_t *out_len)
{
    size_t n;

    if (len - *offset < 4) {
        return -1;
    }
    n = mzb_get_u32(buf + *offset);
    *offset += 4;
    if (len - *offset < n) {
        return -1;
    }
    *out = buf + *offset;
    *out_len = n;
    *offset += n;
    return 0;
}

int mzb_batch_next(const uint8_t *buf, size_t len, size_t *offset, struct mzb_batch_record *rec)
{
    size_t at = *offset;

    if (at >= len) {
        return MZB_BATCH_END;
    }
    rec->service_len = buf[at++];
    if (rec->service_len == 0) {
        return MZB_BATCH_E_SERVICE;
    }
    if (len - at < rec->service_len) {
        return MZB_BATCH_E_TRUNCATED;
    }
    rec->service = buf + at;
    at += rec->service_len;
    if (take_sized(buf, len, &at, &rec->meta, &rec->meta_len) != 0 ||
        take_sized(buf, len, &at, &rec->payload, &rec->payload_len) != 0) {
        return MZB_BATCH_E_TRUNCATED;
    }
    *offset = at;
    return MZB_BATCH_OK;
}

const char *mzb_batch_strerror(int err)
{
    switch (err) {
    case MZB_BATCH_OK:
        return "no error";
    case MZB_BATCH_END:
        return "no record left";
    case MZB_BATCH_E_SERVICE:
        return "a record has an empty service name";
    case MZB_BATCH_E_TRUNCATED:
        return "a record's length runs past the end of the frame";
    default:
        return "unknown batch error";
    }
}
