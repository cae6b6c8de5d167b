/*
 * mzb-enrich: answers a JSON object with the same object plus an "mzb" object
 * that says where the message came from: topic, client id, QoS, the time it
 * arrived here and the MQTT v5 user properties. Anything else gets
 * {"error": "..."}.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_common.h"
#include "mzb_log.h"

/* A reply for when even the error reply cannot be built. */
static const char nomem_reply[] = "{\"error\":\"the handler ran out of memory\"}";

/* Replies with doc as compact JSON. A reply that cannot be queued is logged by the library. */
static void reply_json(struct mzb_handler *h, struct mzb_request *req, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

    if (!text) {
        mzb_log(MZB_LOG_ERROR, "out of memory while writing a reply");
        mzb_handler_reply(h, req, nomem_reply, strlen(nomem_reply));
        return;
    }
    mzb_handler_reply(h, req, text, strlen(text));
    free(text);
}

static void reply_error(struct mzb_handler *h, struct mzb_request *req, const char *sentence)
{
    json_t *doc = json_pack("{s:s}", "error", sentence);

    reply_json(h, req, doc);
    json_decref(doc);
}

/* A JSON string of the bytes, or null when they are absent or not valid UTF-8. */
static json_t *string_or_null(const char *s, size_t len)
{
    json_t *str = s ? json_stringn(s, len) : NULL;

    return str ? str : json_null();
}

static json_t *user_properties(const struct mzb_request *req)
{
    json_t *list = json_array();
    size_t count = mzb_request_user_property_count(req);

    for (size_t i = 0; list && i < count; i++) {
        const char *key, *value;
        size_t key_len, value_len;

        mzb_request_user_property(req, i, &key, &key_len, &value, &value_len);
        /* A list of pairs, since MQTT allows a key more than once and keeps the order. */
        if (json_array_append_new(list, json_pack("{s:o,s:o}", "key", string_or_null(key, key_len),
                                                  "value", string_or_null(value, value_len)))) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static json_t *origin(const struct mzb_request *req)
{
    const char *topic, *client;
    size_t topic_len, client_len;
    int qos = mzb_request_qos(req);
    char now[32];

    topic = mzb_request_topic(req, &topic_len);
    client = mzb_request_client_id(req, &client_len);
    return json_pack("{s:o,s:o,s:o,s:s,s:o}", "topic", string_or_null(topic, topic_len),
                     "client_id", string_or_null(client, client_len), "qos",
                     qos >= 0 ? json_integer(qos) : json_null(), "received_at",
                     mzbx_iso_time(now, sizeof(now)), "user_properties", user_properties(req));
}

static const char *parse_object(const struct mzb_request *req, json_t **out, char *why, size_t cap)
{
    json_error_t err;
    size_t len;
    const void *payload = mzb_request_payload(req, &len);
    json_t *doc = json_loadb(payload, len, 0, &err);

    *out = NULL;
    if (!doc) {
        snprintf(why, cap, "the payload is not JSON: %s (line %d, column %d)", err.text, err.line,
                 err.column);
        return why;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return "the payload is JSON but not an object; send {...}";
    }
    *out = doc;
    return NULL;
}

static int enrich(struct mzb_handler *h, struct mzb_request *req, void *arg)
{
    char why_buf[300];
    const char *why;
    json_t *doc;

    (void)arg;
    mzbx_log_request("enrich", req);
    why = parse_object(req, &doc, why_buf, sizeof(why_buf));
    if (why) {
        reply_error(h, req, why);
        return MZBX_EXIT_OK;
    }

    /* An "mzb" key the publisher sent is replaced: the handler's view is the one to trust. */
    if (json_object_set_new(doc, "mzb", origin(req)) != 0) {
        json_decref(doc);
        reply_error(h, req, "the handler ran out of memory");
        return MZBX_EXIT_OK;
    }
    reply_json(h, req, doc);
    json_decref(doc);
    return MZBX_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct mzbx_program prog = {
        "mzb-enrich",
        "Answers a JSON object with the same object plus an \"mzb\" object naming its origin.", 0};

    return mzbx_run(&prog, argc, argv, enrich, NULL);
}
