/*
 * mzb_topic: MQTT topic names and filters (MQTT 5.0 section 4.7), and the
 * route tree that finds every route whose filter matches a topic.
 */
#ifndef MZB_TOPIC_H
#define MZB_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#define MZB_TOPIC_MAX_LEN 65535

enum mzb_topic_err {
    MZB_TOPIC_OK = 0,
    MZB_TOPIC_E_EMPTY = 1,         /* the empty string */
    MZB_TOPIC_E_TOO_LONG = 2,      /* longer than 65,535 bytes */
    MZB_TOPIC_E_UTF8 = 3,          /* not valid UTF-8, or holds U+0000 */
    MZB_TOPIC_E_WILDCARD = 4,      /* + or # in a topic name */
    MZB_TOPIC_E_HASH_POSITION = 5, /* # not alone in the last level */
    MZB_TOPIC_E_PLUS_POSITION = 6, /* + not alone in its level */
    MZB_TOPIC_E_DOLLAR = 7,        /* a reply topic that starts with $ */
    MZB_TOPIC_E_NOMEM = 8,
};

/* A static English sentence for an mzb_topic_err code. */
const char *mzb_topic_strerror(int err);

/*
 * Checks that s (len bytes, not necessarily NUL-terminated) is valid UTF-8 as
 * MQTT requires: well-formed, no surrogates, no U+0000. Returns MZB_TOPIC_OK or
 * MZB_TOPIC_E_UTF8.
 */
int mzb_utf8_check(const char *s, size_t len);

/*
 * Length of the UTF-8 sequence that starts at s[0] (avail bytes are readable),
 * or 0 when it is malformed: overlong, a surrogate, above U+10FFFF, or cut off.
 * U+0000 is a valid one-byte sequence here; mzb_utf8_check refuses it.
 */
size_t mzb_utf8_sequence_len(const unsigned char *s, size_t avail);

/* Validates a topic filter (wildcards allowed). */
int mzb_filter_check(const char *filter, size_t len);

/* Validates a topic name as a publisher may use it (no wildcards). */
int mzb_topic_check(const char *topic, size_t len);

/*
 * Validates a topic the product may publish a reply to: a valid topic name
 * that does not start with '$'.
 */
int mzb_reply_topic_check(const char *topic, size_t len);

/*
 * Returns 1 when topic matches filter by the rules of section 4.7, else 0.
 * Both are assumed valid. Used by tests and for one-off checks; the route
 * tree below is what the plugin uses per message.
 */
int mzb_topic_matches(const char *filter, const char *topic);

/*
 * The route tree: filters added with a route index; a lookup reports each
 * matching route index once. Lookup cost depends on the topic's depth, not on
 * the number of routes, and a lookup does not allocate.
 */
struct mzb_route_tree;

/* Returns a new empty tree, or NULL when out of memory. */
struct mzb_route_tree *mzb_route_tree_new(void);

/* Frees the tree and sets *tree to NULL. Accepts NULL and a pointer to NULL. */
void mzb_route_tree_destroy(struct mzb_route_tree **tree);

/*
 * Adds filter (NUL-terminated, already validated) for route index route_index.
 * The same filter may be added for several routes. Returns MZB_TOPIC_OK or
 * MZB_TOPIC_E_NOMEM.
 */
int mzb_route_tree_add(struct mzb_route_tree *tree, const char *filter, uint32_t route_index);

/*
 * Calls fn(route_index, arg) for every route whose filter matches topic (len
 * bytes, not NUL-terminated), in no set order; a route is reported once per
 * lookup even when several of its filters match. Topics starting with '$' are
 * not matched by filters starting with a wildcard. Safe on the broker's thread:
 * it neither blocks nor allocates. Returns the number of calls made.
 */
typedef void (*mzb_route_fn)(uint32_t route_index, void *arg);
size_t mzb_route_tree_match(struct mzb_route_tree *tree, const char *topic, size_t len,
                            mzb_route_fn fn, void *arg);

/* Number of nodes, for memory figures in benchmarks. */
size_t mzb_route_tree_node_count(const struct mzb_route_tree *tree);

#endif
