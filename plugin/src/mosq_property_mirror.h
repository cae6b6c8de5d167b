/*
 * A private copy of the layout of Mosquitto's property list
 * (lib/property_mosq.h, struct mqtt5__property).
 *
 * Why: the broker hands a plugin the v5 properties of a message as an opaque
 * mosquitto_property list, and the functions it exports to plugins (see
 * src/linker.syms) can build and free such lists but cannot read one; there
 * is no mosquitto_property_read_* among them. Reading content type, response
 * topic, correlation data and user properties therefore means walking the
 * list with the broker's own layout.
 *
 * Checked against: the definitions in lib/property_mosq.h of every release
 * from v2.0.0 to v2.0.20 are identical to this one. A broker whose layout
 * differs would break this walk; props.c stops at the first entry whose
 * identifier is not an MQTT property id, which catches most such mismatches.
 */
#ifndef MZBP_MOSQ_PROPERTY_MIRROR_H
#define MZBP_MOSQ_PROPERTY_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

struct mzbp_mosq_string {
    char *v;
    uint16_t len;
};

struct mzbp_mosq_property {
    struct mzbp_mosq_property *next;
    union {
        uint8_t i8;
        uint16_t i16;
        uint32_t i32;
        uint32_t varint;
        struct mzbp_mosq_string bin;
        struct mzbp_mosq_string s;
    } value;
    struct mzbp_mosq_string name; /* a user property's key; its value is in value.s */
    int32_t identifier;
    bool client_generated;
};

#endif
