/*
 * brg_mqtt: the bridge's MQTT client, which publishes replies. It runs on the
 * bridge's own poll loop (no libmosquitto thread), reconnects by itself with
 * a growing delay, and keeps a bounded backlog of replies while the broker
 * is away.
 */
#ifndef BRG_MQTT_H
#define BRG_MQTT_H

#include "brg_counters.h"
#include "mzb_config.h"

#include <stddef.h>
#include <stdint.h>

/* One reply to publish; every pointer is borrowed for the call only. */
struct brg_mqtt_reply {
    const uint8_t *topic;
    size_t topic_len;
    const void *payload;
    size_t payload_len;
    const uint8_t *correlation;
    size_t correlation_len;
    int has_correlation;
    const char *error_word; /* mzb-error value, or NULL for a handler's answer */
    int qos;
    int v5; /* the requester speaks MQTT 5: properties are sent */
};

enum brg_pub_result {
    BRG_PUB_SENT = 0,          /* handed to libmosquitto */
    BRG_PUB_KEPT = 1,          /* MQTT is down: kept in the backlog */
    BRG_PUB_DROPPED = 2,       /* MQTT is down and the backlog is full */
    BRG_PUB_UNDELIVERABLE = 3, /* the topic or message cannot be published at all */
};

struct brg_mqtt;

/*
 * Makes the client (not connected yet). The config is borrowed and must
 * outlive the client; counters are updated for publishes and drops.
 * mosquitto_lib_init must have been called. Returns NULL and logs on failure.
 */
struct brg_mqtt *brg_mqtt_new(const struct mzb_mqtt_config *cfg, uint32_t backlog_limit,
                              struct brg_counters *counters);

/* Disconnects, frees the backlog (logging how many replies it held) and sets *m to NULL. */
void brg_mqtt_destroy(struct brg_mqtt **m);

/* Starts the first connection attempt; failures are retried from brg_mqtt_tick. */
void brg_mqtt_start(struct brg_mqtt *m, uint64_t now_ms);

/* Publishes, or keeps, one reply. Never blocks. Returns enum brg_pub_result. */
int brg_mqtt_publish(struct brg_mqtt *m, const struct brg_mqtt_reply *reply);

/* The socket to poll, or -1 while there is none. */
int brg_mqtt_fd(struct brg_mqtt *m);

/* 1 when libmosquitto has bytes to write. */
int brg_mqtt_want_write(struct brg_mqtt *m);

/* Runs libmosquitto's read or write step after poll reported the socket ready. */
void brg_mqtt_handle_io(struct brg_mqtt *m, int readable, int writable, uint64_t now_ms);

/* Keepalive, reconnection, and the backlog once connected again. Call at least once a second. */
void brg_mqtt_tick(struct brg_mqtt *m, uint64_t now_ms);

/* When brg_mqtt_tick wants to run next. */
uint64_t brg_mqtt_next_wake(const struct brg_mqtt *m, uint64_t now_ms);

void brg_mqtt_set_backlog_limit(struct brg_mqtt *m, uint32_t limit);

int brg_mqtt_connected(const struct brg_mqtt *m);
size_t brg_mqtt_backlog(const struct brg_mqtt *m);

#endif
