/*
 * mzb_meta: the metadata frame that travels with every dispatched publish
 * (docs/protocol.md, section 2). Encoding writes into a caller's buffer and
 * never allocates, so the plugin can use it on the broker's thread.
 */
#ifndef MZB_META_H
#define MZB_META_H

#include <stddef.h>
#include <stdint.h>

#define MZB_META_VERSION 1
#define MZB_META_HEADER_SIZE 20
#define MZB_META_MAX_USER_PROPS 64

enum mzb_mode {
    MZB_MODE_EVENT = 0,
    MZB_MODE_REQUEST = 1,
};

enum mzb_meta_tag {
    MZB_TAG_TOPIC = 1,
    MZB_TAG_CLIENT_ID = 2,
    MZB_TAG_USERNAME = 3,
    MZB_TAG_CONTENT_TYPE = 4,
    MZB_TAG_RESPONSE_TOPIC = 5,
    MZB_TAG_CORRELATION = 6,
    MZB_TAG_USER_PROPERTY = 7,
    MZB_TAG_REPLY_TOPIC = 8,
    MZB_TAG_ROUTE = 9,
};

enum mzb_meta_err {
    MZB_META_OK = 0,
    MZB_META_E_SHORT = 1,    /* shorter than the fixed header */
    MZB_META_E_VERSION = 2,  /* unknown format version */
    MZB_META_E_FIELD = 3,    /* a field runs past the end of the frame */
    MZB_META_E_VALUE = 4,    /* a header value out of range (mode, QoS) */
    MZB_META_E_NO_TOPIC = 5, /* the topic field is missing */
    MZB_META_E_TOO_MANY = 6, /* more user properties than MZB_META_MAX_USER_PROPS */
    MZB_META_E_NOSPACE = 7,  /* the encode buffer is too small */
};

/* A byte string that is not NUL-terminated; ptr may be NULL when len is 0. */
struct mzb_bytes {
    const uint8_t *ptr;
    size_t len;
};

struct mzb_user_prop {
    struct mzb_bytes key;
    struct mzb_bytes value;
};

/*
 * A decoded (or to-be-encoded) metadata frame. Every mzb_bytes borrows: after
 * decode it points into the frame given to mzb_meta_decode, which must outlive
 * the struct. A field with ptr == NULL was absent; has_* says the same for
 * optional fields whose empty value is meaningful.
 */
struct mzb_meta {
    uint8_t mode;
    uint8_t qos;
    uint8_t retain;
    uint8_t protocol;
    uint8_t reply_qos;
    uint64_t msg_id;
    uint32_t timeout_ms;

    struct mzb_bytes topic;
    struct mzb_bytes client_id;
    struct mzb_bytes username;
    struct mzb_bytes content_type;
    struct mzb_bytes response_topic;
    struct mzb_bytes correlation;
    struct mzb_bytes reply_topic;
    struct mzb_bytes route;
    int has_username;
    int has_content_type;
    int has_response_topic;
    int has_correlation;
    int has_reply_topic;

    size_t user_prop_count;
    struct mzb_user_prop user_props[MZB_META_MAX_USER_PROPS];
};

/* Returns the number of bytes mzb_meta_encode needs for meta. */
size_t mzb_meta_encoded_size(const struct mzb_meta *meta);

/*
 * Writes meta into buf (capacity cap). Returns MZB_META_OK and sets *out_len,
 * or MZB_META_E_NOSPACE. Never allocates; safe on the broker's thread.
 */
int mzb_meta_encode(const struct mzb_meta *meta, uint8_t *buf, size_t cap, size_t *out_len);

/*
 * Parses a frame into meta (zeroed first). Returns MZB_META_OK or an error code;
 * on error meta's content is unspecified. Never allocates; meta borrows from buf.
 */
int mzb_meta_decode(const uint8_t *buf, size_t len, struct mzb_meta *meta);

/* A static English sentence for an mzb_meta_err code. */
const char *mzb_meta_strerror(int err);

/* Big-endian helpers shared by the frame code. */
void mzb_put_u64(uint8_t *p, uint64_t v);
uint64_t mzb_get_u64(const uint8_t *p);
void mzb_put_u32(uint8_t *p, uint32_t v);
uint32_t mzb_get_u32(const uint8_t *p);

#endif
