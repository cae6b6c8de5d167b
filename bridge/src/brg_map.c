#include "brg_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 64

struct entry {
    struct entry *next;
    uint64_t hash;
    void *value;
    size_t len;
    unsigned char key[];
};

struct brg_map {
    struct entry **buckets;
    size_t bucket_count; /* a power of two */
    size_t count;
};

/* FNV-1a, then a final mix so that keys differing in their last bytes spread over buckets. */
static uint64_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3u;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return h;
}

struct brg_map *brg_map_new(void)
{
    struct brg_map *map = calloc(1, sizeof(*map));

    if (!map) {
        return NULL;
    }
    map->buckets = calloc(INITIAL_BUCKETS, sizeof(*map->buckets));
    if (!map->buckets) {
        free(map);
        return NULL;
    }
    map->bucket_count = INITIAL_BUCKETS;
    return map;
}

void brg_map_destroy(struct brg_map **map)
{
    if (!map || !*map) {
        return;
    }

    for (size_t i = 0; i < (*map)->bucket_count; i++) {
        struct entry *e = (*map)->buckets[i];

        while (e) {
            struct entry *next = e->next;

            free(e);
            e = next;
        }
    }
    free((*map)->buckets);
    free(*map);
    *map = NULL;
}

static struct entry **find_slot(const struct brg_map *map, const void *key, size_t len,
                                uint64_t hash)
{
    struct entry **slot = &map->buckets[hash & (map->bucket_count - 1)];

    while (*slot) {
        struct entry *e = *slot;

        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0) {
            return slot;
        }
        slot = &e->next;
    }
    return slot;
}

void *brg_map_get(const struct brg_map *map, const void *key, size_t len)
{
    struct entry **slot = find_slot(map, key, len, hash_bytes(key, len));

    return *slot ? (*slot)->value : NULL;
}

/* Doubling when the load passes one keeps chains short; a failed grow only costs speed. */
static void grow(struct brg_map *map)
{
    size_t count = map->bucket_count * 2;
    struct entry **buckets = calloc(count, sizeof(*buckets));

    if (!buckets) {
        return;
    }
    for (size_t i = 0; i < map->bucket_count; i++) {
        struct entry *e = map->buckets[i];

        while (e) {
            struct entry *next = e->next;
            size_t b = e->hash & (count - 1);

            e->next = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(map->buckets);
    map->buckets = buckets;
    map->bucket_count = count;
}

int brg_map_put(struct brg_map *map, const void *key, size_t len, void *value)
{
    uint64_t hash = hash_bytes(key, len);
    struct entry **slot = find_slot(map, key, len, hash);
    struct entry *e;

    if (*slot) {
        (*slot)->value = value;
        return 0;
    }

    e = malloc(sizeof(*e) + len);
    if (!e) {
        return -1;
    }
    e->next = NULL;
    e->hash = hash;
    e->value = value;
    e->len = len;
    if (len > 0) {
        memcpy(e->key, key, len);
    }
    *slot = e;
    map->count++;

    if (map->count > map->bucket_count) {
        grow(map);
    }
    return 0;
}

void *brg_map_remove(struct brg_map *map, const void *key, size_t len)
{
    struct entry **slot = find_slot(map, key, len, hash_bytes(key, len));
    struct entry *e = *slot;
    void *value;

    if (!e) {
        return NULL;
    }
    *slot = e->next;
    value = e->value;
    free(e);
    map->count--;
    return value;
}

size_t brg_map_count(const struct brg_map *map)
{
    return map->count;
}
