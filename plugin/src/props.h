/*
 * props: reads the MQTT v5 properties of a message from the broker's property
 * list (see mosq_property_mirror.h for why and how). Borrows: every mzb_bytes
 * points into the list, which must outlive the result. Never allocates;
 * safe on the broker's thread.
 */
#ifndef MZBP_PROPS_H
#define MZBP_PROPS_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "mzb_meta.h"

/* MQTT v5 property identifiers a PUBLISH carries to a plugin. */
enum mzbp_prop_id {
    MZBP_PROP_PAYLOAD_FORMAT = 0x01,
    MZBP_PROP_CONTENT_TYPE = 0x03,
    MZBP_PROP_RESPONSE_TOPIC = 0x08,
    MZBP_PROP_CORRELATION_DATA = 0x09,
    MZBP_PROP_USER_PROPERTY = 0x26,
};

struct mzbp_props {
    struct mzb_bytes content_type;
    struct mzb_bytes response_topic;
    struct mzb_bytes correlation;
    int has_content_type;
    int has_response_topic;
    int has_correlation;
    int has_payload_format;
    uint8_t payload_format;

    /* The first MZB_META_MAX_USER_PROPS user properties, in order. */
    size_t user_prop_count;
    struct mzb_user_prop user_props[MZB_META_MAX_USER_PROPS];
    size_t user_props_dropped; /* how many more the message had */

    int broken; /* the walk stopped at an entry that is not a valid MQTT property */
};

/* Returns 1 when id is an MQTT 5.0 property identifier (section 2.2.2.2), else 0. */
int mzbp_prop_id_valid(int32_t id);

/*
 * Fills out from list (a mosquitto_property *, NULL for none). When h is not
 * NULL every property read is also fed into it, for the QoS 2 repeat table.
 * Returns 0, or -1 when the walk stopped early (out->broken is then set and
 * out holds what came before the bad entry).
 */
int mzbp_props_read(const void *list, struct mzbp_props *out, struct mzbp_hash *h);

#endif
