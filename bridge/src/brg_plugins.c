#include "brg_plugins.h"

#include <stdlib.h>
#include <string.h>

int brg_plugins_init(struct brg_plugins *p)
{
    p->by_id = brg_map_new();
    brg_list_init(&p->all);
    brg_list_init(&p->dirty);
    p->count = 0;
    return p->by_id ? 0 : -1;
}

static void free_plugin(struct brg_plugins *p, struct brg_plugin *pl)
{
    brg_map_remove(p->by_id, pl->id, pl->id_len);
    brg_list_remove(&pl->link);
    brg_list_remove(&pl->dirty_link);
    p->count--;
    json_decref(pl->stats);
    free(pl->acks.ids);
    free(pl->retries.ids);
    free(pl);
}

void brg_plugins_clear(struct brg_plugins *p)
{
    while (p->by_id && !brg_list_empty(&p->all)) {
        free_plugin(p, brg_container_of(p->all.next, struct brg_plugin, link));
    }
    brg_map_destroy(&p->by_id);
}

struct brg_plugin *brg_plugins_touch(struct brg_plugins *p, const void *id, size_t len,
                                     uint64_t now_ms)
{
    struct brg_plugin *pl = brg_map_get(p->by_id, id, len);

    if (!pl) {
        pl = calloc(1, sizeof(*pl) + len);
        if (!pl) {
            return NULL;
        }
        memcpy(pl->id, id, len);
        pl->id_len = len;
        if (brg_map_put(p->by_id, pl->id, len, pl) != 0) {
            free(pl);
            return NULL;
        }
        brg_list_push_back(&p->all, &pl->link);
        brg_list_init(&pl->dirty_link);
        p->count++;
    }
    pl->last_seen_ms = now_ms;
    return pl;
}

static int id_list_push(struct brg_id_list *list, uint64_t msg_id)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        uint64_t *ids = realloc(list->ids, cap * sizeof(*ids));

        if (!ids) {
            return -1;
        }
        list->ids = ids;
        list->cap = cap;
    }
    list->ids[list->count++] = msg_id;
    return 0;
}

void brg_id_list_consume(struct brg_id_list *list, size_t n)
{
    if (n == 0) {
        return;
    }
    memmove(list->ids, list->ids + n, (list->count - n) * sizeof(*list->ids));
    list->count -= n;
}

/* Finds or adds the plugin, appends msg_id to the chosen list and marks the plugin dirty. */
static int queue_id(struct brg_plugins *p, const void *id, size_t len, uint64_t msg_id,
                    uint64_t now_ms, int retry)
{
    struct brg_plugin *pl = brg_map_get(p->by_id, id, len);

    if (!pl) {
        pl = brg_plugins_touch(p, id, len, now_ms);
        if (!pl) {
            return -1;
        }
    }
    if (id_list_push(retry ? &pl->retries : &pl->acks, msg_id) != 0) {
        return -1;
    }
    if (!brg_link_linked(&pl->dirty_link)) {
        brg_list_push_back(&p->dirty, &pl->dirty_link);
    }
    return 0;
}

int brg_plugins_queue_ack(struct brg_plugins *p, const void *id, size_t len, uint64_t msg_id,
                          uint64_t now_ms)
{
    return queue_id(p, id, len, msg_id, now_ms, 0);
}

int brg_plugins_queue_retry(struct brg_plugins *p, const void *id, size_t len, uint64_t msg_id,
                            uint64_t now_ms)
{
    return queue_id(p, id, len, msg_id, now_ms, 1);
}

void brg_plugin_set_stats(struct brg_plugin *pl, json_t *stats)
{
    json_decref(pl->stats);
    pl->stats = stats;
}

struct brg_plugin *brg_plugins_next_dirty(struct brg_plugins *p)
{
    struct brg_link *l = brg_list_pop_front(&p->dirty);

    return l ? brg_container_of(l, struct brg_plugin, dirty_link) : NULL;
}

size_t brg_plugins_expire(struct brg_plugins *p, uint64_t now_ms, uint64_t max_age_ms)
{
    struct brg_link *l = p->all.next;
    size_t n = 0;

    while (l != &p->all) {
        struct brg_plugin *pl = brg_container_of(l, struct brg_plugin, link);

        l = l->next;
        if (pl->acks.count == 0 && pl->retries.count == 0 &&
            now_ms - pl->last_seen_ms >= max_age_ms) {
            free_plugin(p, pl);
            n++;
        }
    }
    return n;
}
