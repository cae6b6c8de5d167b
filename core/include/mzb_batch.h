/*
 * mzb_batch: the body of a BATCH message from the plugin to the bridge
 * (docs/protocol.md, section 1): dispatches laid end to end in one frame, so
 * that a busy broker hands many of them over with one ZeroMQ message and
 * wakes the threads and processes behind it once per batch, not per message.
 *
 * One record is: service length (1 byte, 1 to 255), service name, metadata
 * length (4 bytes), metadata frame (section 2), payload length (4 bytes),
 * payload. Integers are big-endian.
 */
#ifndef MZB_BATCH_H
#define MZB_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define MZB_BATCH_SERVICE_MAX 255
/* The bytes a record adds around its service name, metadata and payload. */
#define MZB_BATCH_OVERHEAD 9

enum mzb_batch_err {
    MZB_BATCH_OK = 0,
    MZB_BATCH_END = 1,         /* no record left: the frame was read to its end */
    MZB_BATCH_E_SERVICE = 2,   /* the service name length is 0 */
    MZB_BATCH_E_TRUNCATED = 3, /* a length runs past the end of the frame */
};

/* One record; the pointers borrow from the frame it was read from. */
struct mzb_batch_record {
    const uint8_t *service;
    size_t service_len;
    const uint8_t *meta;
    size_t meta_len;
    const uint8_t *payload;
    size_t payload_len;
};

/* The size of a record; 0 when a length does not fit the format. */
size_t mzb_batch_record_size(size_t service_len, size_t meta_len, size_t payload_len);

/*
 * Writes the service part of a record at p and returns where the metadata
 * goes, so that a writer can encode the metadata in place; the caller has
 * checked the sizes with mzb_batch_record_size.
 */
uint8_t *mzb_batch_put_service(uint8_t *p, const void *service, size_t service_len);

/*
 * Finishes a record whose metadata (meta_len bytes) was written at meta:
 * fills in its length and appends the payload. Returns the end of the record.
 */
uint8_t *mzb_batch_put_rest(uint8_t *meta, size_t meta_len, const void *payload,
                            size_t payload_len);

/*
 * Reads the record at *offset of buf (len bytes) into rec and moves *offset
 * past it. Returns MZB_BATCH_OK, MZB_BATCH_END when *offset is at the end, or
 * an error, after which the rest of the frame cannot be read.
 */
int mzb_batch_next(const uint8_t *buf, size_t len, size_t *offset, struct mzb_batch_record *rec);

/* A static English phrase for an mzb_batch_err code. */
const char *mzb_batch_strerror(int err);

#endif
