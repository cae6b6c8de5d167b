/*
 * brg_plugins: what the bridge knows of each connected broker plugin, keyed
 * by ZeroMQ routing id: its instance, its last statistics, when it was last
 * heard, and the message ids waiting to be acknowledged to it or to be
 * handed back to it for a later resend.
 */
#ifndef BRG_PLUGINS_H
#define BRG_PLUGINS_H

#include "brg_list.h"
#include "brg_map.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define BRG_INSTANCE_SIZE 8

/* A growing array of message ids. */
struct brg_id_list {
    uint64_t *ids;
    size_t count;
    size_t cap;
};

struct brg_plugin {
    struct brg_link link;       /* in brg_plugins.all */
    struct brg_link dirty_link; /* in brg_plugins.dirty while acks or retries wait */
    uint8_t instance[BRG_INSTANCE_SIZE];
    int has_instance;
    json_t *stats; /* the last statistics reported (owned), or NULL */
    uint64_t last_seen_ms;
    struct brg_id_list acks;    /* message ids to acknowledge (ACK) */
    struct brg_id_list retries; /* message ids the plugin should send again later (RETRY) */
    size_t id_len;
    unsigned char id[];
};

struct brg_plugins {
    struct brg_map *by_id;
    struct brg_link all;
    struct brg_link dirty;
    size_t count;
};

/* Returns 0, or -1 when out of memory. */
int brg_plugins_init(struct brg_plugins *p);

/* Frees every plugin entry. */
void brg_plugins_clear(struct brg_plugins *p);

/* Finds the plugin with this routing id or adds it; marks it seen. NULL when out of memory. */
struct brg_plugin *brg_plugins_touch(struct brg_plugins *p, const void *id, size_t len,
                                     uint64_t now_ms);

/* Queues msg_id for an ACK to the plugin with this routing id. Returns 0, or -1 out of memory. */
int brg_plugins_queue_ack(struct brg_plugins *p, const void *id, size_t len, uint64_t msg_id,
                          uint64_t now_ms);

/* Queues msg_id for a RETRY to the plugin with this routing id. Returns 0, or -1 out of memory. */
int brg_plugins_queue_retry(struct brg_plugins *p, const void *id, size_t len, uint64_t msg_id,
                            uint64_t now_ms);

/* Drops the first n ids of list (they were sent). */
void brg_id_list_consume(struct brg_id_list *list, size_t n);

/* Replaces a plugin's statistics with stats (the reference is stolen). */
void brg_plugin_set_stats(struct brg_plugin *pl, json_t *stats);

/* Takes the first plugin with acks or retries waiting off the dirty list, or returns NULL. */
struct brg_plugin *brg_plugins_next_dirty(struct brg_plugins *p);

/*
 * Forgets plugins silent for max_age_ms or longer that have no ack or retry
 * waiting. Returns how many.
 */
size_t brg_plugins_expire(struct brg_plugins *p, uint64_t now_ms, uint64_t max_age_ms);

#endif
