#include "handler_request.h"

#include <stdlib.h>
#include <string.h>

#include "mzb_handler.h"

enum { FRAME_ADDRESS = 3, FRAME_EMPTY = 4, FRAME_PAYLOAD = 5, FRAME_META = 6 };

static struct mzb_request *request_new(void)
{
    struct mzb_request *req = calloc(1, sizeof(*req));

    if (!req) {
        return NULL;
    }
    zmq_msg_init(&req->payload);
    zmq_msg_init(&req->meta_frame);
    return req;
}

void mzb_request_free(struct mzb_request *req)
{
    if (!req) {
        return;
    }
    zmq_msg_close(&req->payload);
    zmq_msg_close(&req->meta_frame);
    free(req);
}

static const char *check_envelope(const struct mzbh_msg *m)
{
    size_t address_len;

    if (m->count <= FRAME_PAYLOAD) {
        return "REQUEST has fewer frames than client address, empty frame and payload";
    }
    address_len = mzbh_frame_size(m, FRAME_ADDRESS);
    if (address_len == 0 || address_len > MZBH_MAX_ADDRESS) {
        return "REQUEST client address is empty or longer than 255 bytes";
    }
    if (mzbh_frame_size(m, FRAME_EMPTY) != 0) {
        return "REQUEST has no empty frame after the client address";
    }
    return NULL;
}

static int decode_meta(struct mzb_request *req, const char **why)
{
    int rc =
        mzb_meta_decode(zmq_msg_data(&req->meta_frame), zmq_msg_size(&req->meta_frame), &req->meta);

    if (rc != MZB_META_OK) {
        *why = mzb_meta_strerror(rc);
        memset(&req->meta, 0, sizeof(req->meta));
        return MZBH_PARSE_META;
    }
    req->has_meta = 1;
    return MZBH_PARSE_OK;
}

int mzbh_request_parse(struct mzbh_msg *m, uint64_t generation, struct mzb_request **out,
                       const char **why)
{
    struct mzb_request *req;

    *out = NULL;
    *why = check_envelope(m);
    if (*why) {
        return MZBH_PARSE_ENVELOPE;
    }
    req = request_new();
    if (!req) {
        *why = "out of memory";
        return MZBH_PARSE_NOMEM;
    }

    req->generation = generation;
    req->address_len = mzbh_frame_size(m, FRAME_ADDRESS);
    memcpy(req->address, mzbh_frame_data(m, FRAME_ADDRESS), req->address_len);
    zmq_msg_move(&req->payload, &m->frames[FRAME_PAYLOAD]);
    *out = req;

    /* A plain MDP client sends no metadata; that is a valid request. */
    if (m->count <= FRAME_META) {
        return MZBH_PARSE_OK;
    }
    zmq_msg_move(&req->meta_frame, &m->frames[FRAME_META]);
    return decode_meta(req, why);
}

const void *mzb_request_payload(const struct mzb_request *req, size_t *len)
{
    zmq_msg_t *payload = (zmq_msg_t *)&req->payload;
    const void *data = zmq_msg_data(payload);

    if (len) {
        *len = zmq_msg_size(payload);
    }
    return data ? data : "";
}

int mzb_request_has_metadata(const struct mzb_request *req)
{
    return req->has_meta;
}

const struct mzb_meta *mzb_request_meta(const struct mzb_request *req)
{
    return req->has_meta ? &req->meta : NULL;
}

static const void *field(const struct mzb_request *req, const struct mzb_bytes *b, size_t *len)
{
    int present = req->has_meta && b->ptr;

    if (len) {
        *len = present ? b->len : 0;
    }
    return present ? b->ptr : NULL;
}

const char *mzb_request_topic(const struct mzb_request *req, size_t *len)
{
    return field(req, &req->meta.topic, len);
}

const char *mzb_request_client_id(const struct mzb_request *req, size_t *len)
{
    return field(req, &req->meta.client_id, len);
}

const char *mzb_request_username(const struct mzb_request *req, size_t *len)
{
    return field(req, &req->meta.username, len);
}

const char *mzb_request_content_type(const struct mzb_request *req, size_t *len)
{
    return field(req, &req->meta.content_type, len);
}

const char *mzb_request_response_topic(const struct mzb_request *req, size_t *len)
{
    return field(req, &req->meta.response_topic, len);
}

const void *mzb_request_correlation(const struct mzb_request *req, size_t *len)
{
    return field(req, &req->meta.correlation, len);
}

const char *mzb_request_reply_topic(const struct mzb_request *req, size_t *len)
{
    return field(req, &req->meta.reply_topic, len);
}

const char *mzb_request_route(const struct mzb_request *req, size_t *len)
{
    return field(req, &req->meta.route, len);
}

int mzb_request_qos(const struct mzb_request *req)
{
    return req->has_meta ? req->meta.qos : -1;
}

int mzb_request_retain(const struct mzb_request *req)
{
    return req->has_meta ? req->meta.retain : -1;
}

int mzb_request_mode(const struct mzb_request *req)
{
    return req->has_meta ? req->meta.mode : -1;
}

int mzb_request_protocol(const struct mzb_request *req)
{
    return req->has_meta ? req->meta.protocol : -1;
}

int64_t mzb_request_timeout_ms(const struct mzb_request *req)
{
    return req->has_meta ? (int64_t)req->meta.timeout_ms : -1;
}

int mzb_request_message_id(const struct mzb_request *req, uint64_t *id)
{
    if (!req->has_meta) {
        return 0;
    }
    if (id) {
        *id = req->meta.msg_id;
    }
    return 1;
}

size_t mzb_request_user_property_count(const struct mzb_request *req)
{
    return req->has_meta ? req->meta.user_prop_count : 0;
}

int mzb_request_user_property(const struct mzb_request *req, size_t i, const char **key,
                              size_t *key_len, const char **value, size_t *value_len)
{
    const struct mzb_user_prop *up;

    if (i >= mzb_request_user_property_count(req)) {
        return MZB_HANDLER_E_INVALID;
    }

    up = &req->meta.user_props[i];
    if (key) {
        *key = (const char *)up->key.ptr;
    }
    if (key_len) {
        *key_len = up->key.len;
    }
    if (value) {
        *value = (const char *)up->value.ptr;
    }
    if (value_len) {
        *value_len = up->value.len;
    }
    return MZB_HANDLER_OK;
}
