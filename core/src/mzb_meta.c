#include "mzb_meta.h"

#include <string.h>

#define FIELD_HEADER 5 /* tag (1) + length (4) */

void mzb_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xffu);
        v >>= 8;
    }
}

uint64_t mzb_get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

void mzb_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t mzb_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static size_t field_size(const struct mzb_bytes *b, int present)
{
    return present ? FIELD_HEADER + b->len : 0;
}

size_t mzb_meta_encoded_size(const struct mzb_meta *meta)
{
    size_t size = MZB_META_HEADER_SIZE;

    size += field_size(&meta->topic, 1);
    size += field_size(&meta->client_id, 1);
    size += field_size(&meta->username, meta->has_username);
    size += field_size(&meta->content_type, meta->has_content_type);
    size += field_size(&meta->response_topic, meta->has_response_topic);
    size += field_size(&meta->correlation, meta->has_correlation);
    size += field_size(&meta->reply_topic, meta->has_reply_topic);
    size += field_size(&meta->route, 1);
    for (size_t i = 0; i < meta->user_prop_count; i++) {
        size += FIELD_HEADER + 2 + meta->user_props[i].key.len + meta->user_props[i].value.len;
    }
    return size;
}

static uint8_t *put_field(uint8_t *p, uint8_t tag, const struct mzb_bytes *b)
{
    p[0] = tag;
    mzb_put_u32(p + 1, (uint32_t)b->len);
    if (b->len > 0) {
        memcpy(p + FIELD_HEADER, b->ptr, b->len);
    }
    return p + FIELD_HEADER + b->len;
}

static uint8_t *put_user_prop(uint8_t *p, const struct mzb_user_prop *up)
{
    size_t len = 2 + up->key.len + up->value.len;

    p[0] = MZB_TAG_USER_PROPERTY;
    mzb_put_u32(p + 1, (uint32_t)len);
    p[5] = (uint8_t)(up->key.len >> 8);
    p[6] = (uint8_t)up->key.len;
    if (up->key.len > 0) {
        memcpy(p + 7, up->key.ptr, up->key.len);
    }
    if (up->value.len > 0) {
        memcpy(p + 7 + up->key.len, up->value.ptr, up->value.len);
    }
    return p + FIELD_HEADER + len;
}

static void put_header(const struct mzb_meta *meta, uint8_t *p)
{
    p[0] = MZB_META_VERSION;
    p[1] = meta->mode;
    p[2] = meta->qos;
    p[3] = meta->retain ? 1 : 0;
    p[4] = meta->protocol;
    p[5] = meta->reply_qos;
    p[6] = 0;
    p[7] = 0;
    mzb_put_u64(p + 8, meta->msg_id);
    mzb_put_u32(p + 16, meta->timeout_ms);
}

int mzb_meta_encode(const struct mzb_meta *meta, uint8_t *buf, size_t cap, size_t *out_len)
{
    size_t need = mzb_meta_encoded_size(meta);
    uint8_t *p = buf + MZB_META_HEADER_SIZE;

    if (need > cap || meta->user_prop_count > MZB_META_MAX_USER_PROPS) {
        return MZB_META_E_NOSPACE;
    }

    put_header(meta, buf);
    p = put_field(p, MZB_TAG_TOPIC, &meta->topic);
    p = put_field(p, MZB_TAG_CLIENT_ID, &meta->client_id);
    if (meta->has_username) {
        p = put_field(p, MZB_TAG_USERNAME, &meta->username);
    }
    if (meta->has_content_type) {
        p = put_field(p, MZB_TAG_CONTENT_TYPE, &meta->content_type);
    }
    if (meta->has_response_topic) {
        p = put_field(p, MZB_TAG_RESPONSE_TOPIC, &meta->response_topic);
    }
    if (meta->has_correlation) {
        p = put_field(p, MZB_TAG_CORRELATION, &meta->correlation);
    }
    for (size_t i = 0; i < meta->user_prop_count; i++) {
        p = put_user_prop(p, &meta->user_props[i]);
    }
    if (meta->has_reply_topic) {
        p = put_field(p, MZB_TAG_REPLY_TOPIC, &meta->reply_topic);
    }
    p = put_field(p, MZB_TAG_ROUTE, &meta->route);

    *out_len = (size_t)(p - buf);
    return MZB_META_OK;
}

static int decode_user_prop(struct mzb_meta *meta, const uint8_t *v, size_t len)
{
    struct mzb_user_prop *up;
    size_t key_len;

    if (len < 2) {
        return MZB_META_E_FIELD;
    }
    key_len = ((size_t)v[0] << 8) | v[1];
    if (key_len > len - 2) {
        return MZB_META_E_FIELD;
    }
    if (meta->user_prop_count == MZB_META_MAX_USER_PROPS) {
        return MZB_META_E_TOO_MANY;
    }

    up = &meta->user_props[meta->user_prop_count++];
    up->key.ptr = v + 2;
    up->key.len = key_len;
    up->value.ptr = v + 2 + key_len;
    up->value.len = len - 2 - key_len;
    return MZB_META_OK;
}

static void set_bytes(struct mzb_bytes *b, int *present, const uint8_t *v, size_t len)
{
    /* A present empty field still gets a non-NULL pointer, so absence stays visible. */
    b->ptr = v;
    b->len = len;
    if (present) {
        *present = 1;
    }
}

static int decode_field(struct mzb_meta *meta, uint8_t tag, const uint8_t *v, size_t len)
{
    switch (tag) {
    case MZB_TAG_TOPIC:
        set_bytes(&meta->topic, NULL, v, len);
        break;
    case MZB_TAG_CLIENT_ID:
        set_bytes(&meta->client_id, NULL, v, len);
        break;
    case MZB_TAG_USERNAME:
        set_bytes(&meta->username, &meta->has_username, v, len);
        break;
    case MZB_TAG_CONTENT_TYPE:
        set_bytes(&meta->content_type, &meta->has_content_type, v, len);
        break;
    case MZB_TAG_RESPONSE_TOPIC:
        set_bytes(&meta->response_topic, &meta->has_response_topic, v, len);
        break;
    case MZB_TAG_CORRELATION:
        set_bytes(&meta->correlation, &meta->has_correlation, v, len);
        break;
    case MZB_TAG_USER_PROPERTY:
        return decode_user_prop(meta, v, len);
    case MZB_TAG_REPLY_TOPIC:
        set_bytes(&meta->reply_topic, &meta->has_reply_topic, v, len);
        break;
    case MZB_TAG_ROUTE:
        set_bytes(&meta->route, NULL, v, len);
        break;
    default:
        break; /* unknown tags are skipped for forward compatibility */
    }
    return MZB_META_OK;
}

static int decode_header(const uint8_t *buf, size_t len, struct mzb_meta *meta)
{
    if (len < MZB_META_HEADER_SIZE) {
        return MZB_META_E_SHORT;
    }
    if (buf[0] != MZB_META_VERSION) {
        return MZB_META_E_VERSION;
    }
    if (buf[1] > MZB_MODE_REQUEST || buf[2] > 2 || buf[5] > 2) {
        return MZB_META_E_VALUE;
    }

    meta->mode = buf[1];
    meta->qos = buf[2];
    meta->retain = buf[3] & 1u;
    meta->protocol = buf[4];
    meta->reply_qos = buf[5];
    meta->msg_id = mzb_get_u64(buf + 8);
    meta->timeout_ms = mzb_get_u32(buf + 16);
    return MZB_META_OK;
}

int mzb_meta_decode(const uint8_t *buf, size_t len, struct mzb_meta *meta)
{
    size_t pos = MZB_META_HEADER_SIZE;
    int rc;

    memset(meta, 0, sizeof(*meta));
    rc = decode_header(buf, len, meta);
    if (rc != MZB_META_OK) {
        return rc;
    }

    while (pos < len) {
        size_t field_len;

        if (len - pos < FIELD_HEADER) {
            return MZB_META_E_FIELD;
        }
        field_len = mzb_get_u32(buf + pos + 1);
        if (field_len > len - pos - FIELD_HEADER) {
            return MZB_META_E_FIELD;
        }
        rc = decode_field(meta, buf[pos], buf + pos + FIELD_HEADER, field_len);
        if (rc != MZB_META_OK) {
            return rc;
        }
        pos += FIELD_HEADER + field_len;
    }

    return meta->topic.ptr ? MZB_META_OK : MZB_META_E_NO_TOPIC;
}

const char *mzb_meta_strerror(int err)
{
    static const char *const text[] = {
        [MZB_META_OK] = "no error",
        [MZB_META_E_SHORT] = "metadata frame is shorter than its 20-byte header",
        [MZB_META_E_VERSION] = "metadata frame has an unknown format version",
        [MZB_META_E_FIELD] = "a metadata field runs past the end of the frame",
        [MZB_META_E_VALUE] = "metadata header holds a mode or QoS out of range",
        [MZB_META_E_NO_TOPIC] = "metadata frame has no topic field",
        [MZB_META_E_TOO_MANY] = "metadata frame holds more than 64 user properties",
        [MZB_META_E_NOSPACE] = "metadata does not fit the buffer",
    };

    if (err < 0 || (size_t)err >= sizeof(text) / sizeof(text[0])) {
        return "unknown metadata error";
    }
    return text[err];
}
