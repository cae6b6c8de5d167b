/*
 * brg_map: a hash table from byte strings (service names, routing ids,
 * message ids) to pointers. Keys are copied; values are borrowed and never
 * freed by the map.
 */
#ifndef BRG_MAP_H
#define BRG_MAP_H

#include <stddef.h>

struct brg_map;

/* Returns a new empty map, or NULL when out of memory. */
struct brg_map *brg_map_new(void);

/* Frees the map (not the values) and sets *map to NULL. Accepts NULL and a pointer to NULL. */
void brg_map_destroy(struct brg_map **map);

/* Returns the value stored under key, or NULL. */
void *brg_map_get(const struct brg_map *map, const void *key, size_t len);

/*
 * Stores value under key, replacing any value already there. Returns 0, or -1
 * when out of memory (the map is then unchanged).
 */
int brg_map_put(struct brg_map *map, const void *key, size_t len, void *value);

/* Removes key and returns the value it held, or NULL when it was absent. */
void *brg_map_remove(struct brg_map *map, const void *key, size_t len);

size_t brg_map_count(const struct brg_map *map);

#endif
