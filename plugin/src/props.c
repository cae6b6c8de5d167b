#include "props.h"

#include <string.h>

#include "mosq_property_mirror.h"

/* An empty value still needs a non-NULL pointer so the encoder sees it as present. */
static const uint8_t empty_value[1];

static struct mzb_bytes bytes_of(const struct mzbp_mosq_string *s)
{
    struct mzb_bytes b = {(const uint8_t *)s->v, s->len};

    if (b.ptr == NULL) {
        b.ptr = empty_value;
        b.len = 0;
    }
    return b;
}

int mzbp_prop_id_valid(int32_t id)
{
    static const uint8_t ids[] = {0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13,
                                  0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1C, 0x1F, 0x21,
                                  0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A};

    for (size_t i = 0; i < sizeof(ids); i++) {
        if (id == ids[i]) {
            return 1;
        }
    }
    return 0;
}

/* A string with a NULL pointer but a length is not something the broker makes. */
static int string_sane(const struct mzbp_mosq_string *s)
{
    return s->v != NULL || s->len == 0;
}

static void hash_string(struct mzbp_hash *h, const struct mzbp_mosq_string *s)
{
    if (h != NULL) {
        mzbp_hash_bytes(h, s->v, s->len);
    }
}

/* Takes a string or binary value; -1 when it cannot be one the broker stored. */
static int take_bytes(const struct mzbp_mosq_string *s, struct mzb_bytes *dst, int *has,
                      struct mzbp_hash *h)
{
    if (!string_sane(s)) {
        return -1;
    }
    *dst = bytes_of(s);
    *has = 1;
    hash_string(h, s);
    return 0;
}

static int read_payload_format(const struct mzbp_mosq_property *p, struct mzbp_props *out,
                               struct mzbp_hash *h)
{
    out->has_payload_format = 1;
    out->payload_format = p->value.i8;
    if (h != NULL) {
        mzbp_hash_u64(h, p->value.i8);
    }
    return 0;
}

static int read_content_type(const struct mzbp_mosq_property *p, struct mzbp_props *out,
                             struct mzbp_hash *h)
{
    return take_bytes(&p->value.s, &out->content_type, &out->has_content_type, h);
}

static int read_response_topic(const struct mzbp_mosq_property *p, struct mzbp_props *out,
                               struct mzbp_hash *h)
{
    return take_bytes(&p->value.s, &out->response_topic, &out->has_response_topic, h);
}

static int read_correlation(const struct mzbp_mosq_property *p, struct mzbp_props *out,
                            struct mzbp_hash *h)
{
    return take_bytes(&p->value.bin, &out->correlation, &out->has_correlation, h);
}

/* Keeps the first MZB_META_MAX_USER_PROPS in order and counts the rest. */
static int read_user_property(const struct mzbp_mosq_property *p, struct mzbp_props *out,
                              struct mzbp_hash *h)
{
    struct mzb_user_prop *up;

    if (!string_sane(&p->name) || !string_sane(&p->value.s)) {
        return -1;
    }
    hash_string(h, &p->name);
    hash_string(h, &p->value.s);
    if (out->user_prop_count == MZB_META_MAX_USER_PROPS) {
        out->user_props_dropped++;
        return 0;
    }
    up = &out->user_props[out->user_prop_count++];
    up->key = bytes_of(&p->name);
    up->value = bytes_of(&p->value.s);
    return 0;
}

typedef int (*prop_reader)(const struct mzbp_mosq_property *p, struct mzbp_props *out,
                           struct mzbp_hash *h);

static const struct {
    int32_t id;
    prop_reader read;
} readers[] = {
    {MZBP_PROP_PAYLOAD_FORMAT, read_payload_format}, {MZBP_PROP_CONTENT_TYPE, read_content_type},
    {MZBP_PROP_RESPONSE_TOPIC, read_response_topic}, {MZBP_PROP_CORRELATION_DATA, read_correlation},
    {MZBP_PROP_USER_PROPERTY, read_user_property},
};

/* Reads one entry; returns -1 when it cannot be a property the broker stored. */
static int read_one(const struct mzbp_mosq_property *p, struct mzbp_props *out, struct mzbp_hash *h)
{
    if (!mzbp_prop_id_valid(p->identifier)) {
        return -1;
    }
    if (h != NULL) {
        mzbp_hash_u64(h, (uint64_t)p->identifier);
    }
    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
        if (readers[i].id == p->identifier) {
            return readers[i].read(p, out, h);
        }
    }
    /* Valid, but not one a PUBLISH hands to plugins; nothing to forward. */
    return 0;
}

int mzbp_props_read(const void *list, struct mzbp_props *out, struct mzbp_hash *h)
{
    const struct mzbp_mosq_property *p = list;

    memset(out, 0, sizeof(*out));
    for (; p != NULL; p = p->next) {
        if (read_one(p, out, h) != 0) {
            out->broken = 1;
            return -1;
        }
    }
    return 0;
}
