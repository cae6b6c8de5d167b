#include "mzb_topic.h"

#include <stdlib.h>
#include <string.h>

static const char *const topic_errors[] = {
    [MZB_TOPIC_OK] = "the topic is valid",
    [MZB_TOPIC_E_EMPTY] = "the topic is empty",
    [MZB_TOPIC_E_TOO_LONG] = "the topic is longer than 65,535 bytes",
    [MZB_TOPIC_E_UTF8] = "the topic is not valid UTF-8 or holds the character U+0000",
    [MZB_TOPIC_E_WILDCARD] = "a topic name may not hold the wildcards '+' or '#'",
    [MZB_TOPIC_E_HASH_POSITION] = "'#' must stand alone in the last level of a filter",
    [MZB_TOPIC_E_PLUS_POSITION] = "'+' must stand alone in its level of a filter",
    [MZB_TOPIC_E_DOLLAR] = "a reply topic may not start with '$'",
    [MZB_TOPIC_E_NOMEM] = "out of memory",
};

const char *mzb_topic_strerror(int err)
{
    if (err < 0 || (size_t)err >= sizeof(topic_errors) / sizeof(topic_errors[0])) {
        return "unknown topic error";
    }
    return topic_errors[err];
}

/*
 * Length of the UTF-8 sequence starting at s[0] (at most avail bytes), or 0
 * when it is malformed. The second-byte ranges follow Unicode table 3-7, which
 * is what shuts out overlong forms, surrogates and values above U+10FFFF.
 */
size_t mzb_utf8_sequence_len(const unsigned char *s, size_t avail)
{
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    size_t n;

    if (s[0] < 0x80) {
        return s[0] == 0 ? 0 : 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        lo = s[0] == 0xE0 ? 0xA0 : 0x80;
        hi = s[0] == 0xED ? 0x9F : 0xBF;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        lo = s[0] == 0xF0 ? 0x90 : 0x80;
        hi = s[0] == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }

    if (avail < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

int mzb_utf8_check(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = mzb_utf8_sequence_len(u + i, len - i);

        if (n == 0) {
            return MZB_TOPIC_E_UTF8;
        }
        i += n;
    }
    return MZB_TOPIC_OK;
}

/* The checks that topic names and filters share: length, then encoding. */
static int topic_common_check(const char *s, size_t len)
{
    if (s == NULL || len == 0) {
        return MZB_TOPIC_E_EMPTY;
    }
    if (len > MZB_TOPIC_MAX_LEN) {
        return MZB_TOPIC_E_TOO_LONG;
    }
    return mzb_utf8_check(s, len);
}

/* Returns the length of the level starting at s (up to the next '/' or end). */
static size_t level_len(const char *s, size_t avail)
{
    const char *slash = memchr(s, '/', avail);

    return slash == NULL ? avail : (size_t)(slash - s);
}

static int filter_level_check(const char *level, size_t n, int is_last)
{
    if (memchr(level, '#', n) != NULL) {
        return n == 1 && is_last ? MZB_TOPIC_OK : MZB_TOPIC_E_HASH_POSITION;
    }
    if (memchr(level, '+', n) != NULL && n != 1) {
        return MZB_TOPIC_E_PLUS_POSITION;
    }
    return MZB_TOPIC_OK;
}

int mzb_filter_check(const char *filter, size_t len)
{
    size_t pos = 0;
    int rc = topic_common_check(filter, len);

    if (rc != MZB_TOPIC_OK) {
        return rc;
    }

    for (;;) {
        size_t n = level_len(filter + pos, len - pos);
        int is_last = pos + n == len;

        rc = filter_level_check(filter + pos, n, is_last);
        if (rc != MZB_TOPIC_OK || is_last) {
            return rc;
        }
        pos += n + 1;
    }
}

int mzb_topic_check(const char *topic, size_t len)
{
    int rc = topic_common_check(topic, len);

    if (rc != MZB_TOPIC_OK) {
        return rc;
    }
    if (memchr(topic, '+', len) != NULL || memchr(topic, '#', len) != NULL) {
        return MZB_TOPIC_E_WILDCARD;
    }
    return MZB_TOPIC_OK;
}

int mzb_reply_topic_check(const char *topic, size_t len)
{
    int rc = mzb_topic_check(topic, len);

    if (rc != MZB_TOPIC_OK) {
        return rc;
    }
    return topic[0] == '$' ? MZB_TOPIC_E_DOLLAR : MZB_TOPIC_OK;
}

/*
 * Deliberately written apart from the route tree (string walking, no shared
 * helpers beyond strcspn) so that the tests can use it as an oracle.
 */
int mzb_topic_matches(const char *filter, const char *topic)
{
    const char *f = filter;
    const char *t = topic;

    if (t[0] == '$' && (f[0] == '+' || f[0] == '#')) {
        return 0;
    }

    for (;;) {
        size_t fn = strcspn(f, "/");
        size_t tn = strcspn(t, "/");

        if (fn == 1 && f[0] == '#') {
            return 1;
        }
        if (!(fn == 1 && f[0] == '+') && (fn != tn || memcmp(f, t, fn) != 0)) {
            return 0;
        }
        f += fn;
        t += tn;
        if (*f == '\0') {
            return *t == '\0';
        }
        if (*t == '\0') {
            /* "sport/#" also matches "sport": the '#' stands for zero levels too. */
            return strcmp(f, "/#") == 0;
        }
        f++;
        t++;
    }
}

/*
 * A tree node stands for one filter level. Literal children live in an open
 * addressing table (power-of-two size, linear probing) so that a node with a
 * hundred thousand children is still one probe away; '+' and '#' children have
 * their own pointers. The parent pointer lets lookups and destruction walk the
 * tree without a stack, so no topic or filter depth can exhaust one.
 */
struct topic_node {
    struct topic_node *parent;
    struct topic_node **slots;
    struct topic_node *plus;
    struct topic_node *hash;
    uint32_t *routes;
    uint32_t slot_cap;
    uint32_t child_count;
    uint32_t route_count;
    uint32_t route_cap;
    uint32_t label_hash;
    uint32_t label_len;
    char label[];
};

/*
 * The nodes holding each route's filters, by route index. Lookups need them
 * only for routes with several filters, to report such a route once without
 * keeping per-lookup state (which would make concurrent lookups unsafe).
 */
struct route_filters {
    struct topic_node *first;
    struct topic_node **more;
    uint32_t more_count;
    uint32_t more_cap;
};

struct mzb_route_tree {
    struct topic_node *root;
    struct route_filters *routes;
    uint32_t route_slots;
    size_t node_count;
};

static uint32_t label_hash_of(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static struct topic_node *node_new(struct topic_node *parent, const char *label, size_t n)
{
    struct topic_node *node = calloc(1, sizeof(*node) + n);

    if (node == NULL) {
        return NULL;
    }
    node->parent = parent;
    node->label_len = (uint32_t)n;
    node->label_hash = label_hash_of(label, n);
    memcpy(node->label, label, n);
    return node;
}

static void node_free(struct topic_node *node)
{
    free(node->slots);
    free(node->routes);
    free(node);
}

static struct topic_node *node_find_child(const struct topic_node *node, const char *label,
                                          size_t n)
{
    uint32_t h;
    uint32_t mask;

    if (node->child_count == 0) {
        return NULL;
    }

    h = label_hash_of(label, n);
    mask = node->slot_cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        const struct topic_node *c = node->slots[i];

        if (c == NULL) {
            return NULL;
        }
        if (c->label_hash == h && c->label_len == n && memcmp(c->label, label, n) == 0) {
            return node->slots[i];
        }
    }
}

static void slots_put(struct topic_node **slots, uint32_t cap, struct topic_node *child)
{
    uint32_t mask = cap - 1;
    uint32_t i = child->label_hash & mask;

    while (slots[i] != NULL) {
        i = (i + 1) & mask;
    }
    slots[i] = child;
}

/* Keeps the load factor at or under 3/4 so probe runs stay short. */
static int node_reserve_child(struct topic_node *node)
{
    uint32_t cap = node->slot_cap == 0 ? 2 : node->slot_cap;
    struct topic_node **slots;

    while ((uint64_t)(node->child_count + 1) * 4 > (uint64_t)cap * 3) {
        if (cap > UINT32_MAX / 2) {
            return MZB_TOPIC_E_NOMEM;
        }
        cap *= 2;
    }
    if (cap == node->slot_cap) {
        return MZB_TOPIC_OK;
    }

    slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return MZB_TOPIC_E_NOMEM;
    }
    for (uint32_t i = 0; i < node->slot_cap; i++) {
        if (node->slots[i] != NULL) {
            slots_put(slots, cap, node->slots[i]);
        }
    }
    free(node->slots);
    node->slots = slots;
    node->slot_cap = cap;
    return MZB_TOPIC_OK;
}

static struct topic_node *node_literal_child(struct mzb_route_tree *tree, struct topic_node *node,
                                             const char *label, size_t n)
{
    struct topic_node *child = node_find_child(node, label, n);

    if (child != NULL) {
        return child;
    }
    if (node_reserve_child(node) != MZB_TOPIC_OK) {
        return NULL;
    }

    child = node_new(node, label, n);
    if (child == NULL) {
        return NULL;
    }
    slots_put(node->slots, node->slot_cap, child);
    node->child_count++;
    tree->node_count++;
    return child;
}

static struct topic_node *node_wild_child(struct mzb_route_tree *tree, struct topic_node *node,
                                          char wildcard)
{
    struct topic_node **slot = wildcard == '+' ? &node->plus : &node->hash;

    if (*slot == NULL) {
        *slot = node_new(node, "", 0);
        if (*slot == NULL) {
            return NULL;
        }
        tree->node_count++;
    }
    return *slot;
}

/* Finds or creates the node for filter's last level, making the path down to it. */
static struct topic_node *tree_make_path(struct mzb_route_tree *tree, const char *filter)
{
    struct topic_node *node = tree->root;
    const char *level = filter;

    for (;;) {
        size_t n = strcspn(level, "/");
        int wild = n == 1 && (level[0] == '+' || level[0] == '#');

        node =
            wild ? node_wild_child(tree, node, level[0]) : node_literal_child(tree, node, level, n);
        if (node == NULL || level[n] == '\0') {
            return node;
        }
        level += n + 1;
    }
}

struct mzb_route_tree *mzb_route_tree_new(void)
{
    struct mzb_route_tree *tree = calloc(1, sizeof(*tree));

    if (tree == NULL) {
        return NULL;
    }
    tree->root = node_new(NULL, "", 0);
    if (tree->root == NULL) {
        free(tree);
        return NULL;
    }
    tree->node_count = 1;
    return tree;
}

/* Takes one child away from node, or returns NULL when it has none left. */
static struct topic_node *node_detach_any_child(struct topic_node *node)
{
    struct topic_node *child;

    if (node->plus != NULL) {
        child = node->plus;
        node->plus = NULL;
        return child;
    }
    if (node->hash != NULL) {
        child = node->hash;
        node->hash = NULL;
        return child;
    }

    /* Shrinking slot_cap from the top keeps the whole teardown linear. */
    while (node->slot_cap > 0) {
        child = node->slots[--node->slot_cap];
        if (child != NULL) {
            return child;
        }
    }
    return NULL;
}

static void tree_free_nodes(struct topic_node *root)
{
    struct topic_node *node = root;

    while (node != NULL) {
        struct topic_node *child = node_detach_any_child(node);

        if (child != NULL) {
            node = child;
        } else {
            struct topic_node *parent = node->parent;

            node_free(node);
            node = parent;
        }
    }
}

void mzb_route_tree_destroy(struct mzb_route_tree **tree)
{
    struct mzb_route_tree *t;

    if (tree == NULL || *tree == NULL) {
        return;
    }
    t = *tree;

    tree_free_nodes(t->root);
    for (uint32_t i = 0; i < t->route_slots; i++) {
        free(t->routes[i].more);
    }
    free(t->routes);
    free(t);
    *tree = NULL;
}

static int tree_reserve_route(struct mzb_route_tree *tree, uint32_t route_index)
{
    struct route_filters *grown;
    uint32_t want;

    if (route_index < tree->route_slots) {
        return MZB_TOPIC_OK;
    }
    if (route_index == UINT32_MAX) {
        return MZB_TOPIC_E_NOMEM;
    }

    want = tree->route_slots == 0 ? 16 : tree->route_slots;
    while (want <= route_index) {
        want = want > UINT32_MAX / 2 ? UINT32_MAX : want * 2;
    }
    grown = realloc(tree->routes, (size_t)want * sizeof(*grown));
    if (grown == NULL) {
        return MZB_TOPIC_E_NOMEM;
    }
    memset(grown + tree->route_slots, 0, (size_t)(want - tree->route_slots) * sizeof(*grown));
    tree->routes = grown;
    tree->route_slots = want;
    return MZB_TOPIC_OK;
}

static int route_has_node(const struct route_filters *rf, const struct topic_node *node)
{
    if (rf->first == node) {
        return 1;
    }
    for (uint32_t i = 0; i < rf->more_count; i++) {
        if (rf->more[i] == node) {
            return 1;
        }
    }
    return 0;
}

static int route_reserve_more(struct route_filters *rf)
{
    uint32_t cap;
    struct topic_node **grown;

    if (rf->first == NULL || rf->more_count < rf->more_cap) {
        return MZB_TOPIC_OK;
    }

    cap = rf->more_cap == 0 ? 2 : rf->more_cap * 2;
    grown = realloc(rf->more, (size_t)cap * sizeof(*grown));
    if (grown == NULL) {
        return MZB_TOPIC_E_NOMEM;
    }
    rf->more = grown;
    rf->more_cap = cap;
    return MZB_TOPIC_OK;
}

static int node_reserve_route(struct topic_node *node)
{
    uint32_t cap;
    uint32_t *grown;

    if (node->route_count < node->route_cap) {
        return MZB_TOPIC_OK;
    }

    cap = node->route_cap == 0 ? 1 : node->route_cap * 2;
    grown = realloc(node->routes, (size_t)cap * sizeof(*grown));
    if (grown == NULL) {
        return MZB_TOPIC_E_NOMEM;
    }
    node->routes = grown;
    node->route_cap = cap;
    return MZB_TOPIC_OK;
}

/*
 * Both lists grow before either changes, so a failure leaves the route as it
 * was. Nodes made for the path stay, empty: they never report anything.
 */
int mzb_route_tree_add(struct mzb_route_tree *tree, const char *filter, uint32_t route_index)
{
    struct route_filters *rf;
    struct topic_node *node;
    int rc;

    rc = mzb_filter_check(filter, filter == NULL ? 0 : strlen(filter));
    if (rc != MZB_TOPIC_OK) {
        return rc;
    }
    if (tree_reserve_route(tree, route_index) != MZB_TOPIC_OK) {
        return MZB_TOPIC_E_NOMEM;
    }

    node = tree_make_path(tree, filter);
    if (node == NULL) {
        return MZB_TOPIC_E_NOMEM;
    }
    rf = &tree->routes[route_index];
    if (route_has_node(rf, node)) {
        return MZB_TOPIC_OK;
    }
    if (node_reserve_route(node) != MZB_TOPIC_OK || route_reserve_more(rf) != MZB_TOPIC_OK) {
        return MZB_TOPIC_E_NOMEM;
    }

    node->routes[node->route_count++] = route_index;
    if (rf->first == NULL) {
        rf->first = node;
    } else {
        rf->more[rf->more_count++] = node;
    }
    return MZB_TOPIC_OK;
}

size_t mzb_route_tree_node_count(const struct mzb_route_tree *tree)
{
    return tree == NULL ? 0 : tree->node_count;
}

/* Start of the level that ends at end (the offset of its '/' or of the topic's end). */
static size_t level_start(const char *topic, size_t end)
{
    size_t i = end;

    while (i > 0 && topic[i - 1] != '/') {
        i--;
    }
    return i;
}

static int node_is_plus(const struct topic_node *node)
{
    return node->parent != NULL && node->parent->plus == node;
}

static int node_is_hash(const struct topic_node *node)
{
    return node->parent != NULL && node->parent->hash == node;
}

static size_t node_depth(const struct topic_node *node)
{
    size_t depth = 0;

    for (; node->parent != NULL; node = node->parent) {
        depth++;
    }
    return depth;
}

/*
 * Offset just past the first `levels` levels of the topic (where the next '/'
 * or the end is), or SIZE_MAX when the topic has fewer levels.
 */
static size_t topic_prefix_end(const char *topic, size_t len, size_t levels)
{
    size_t pos = 0;

    for (size_t i = 1;; i++) {
        const char *slash = memchr(topic + pos, '/', len - pos);
        size_t end = slash == NULL ? len : (size_t)(slash - topic);

        if (i == levels) {
            return end;
        }
        if (slash == NULL) {
            return SIZE_MAX;
        }
        pos = end + 1;
    }
}

static size_t topic_level_count(const char *topic, size_t len)
{
    size_t count = 1;

    for (const char *p = topic; (p = memchr(p, '/', len - (size_t)(p - topic))) != NULL; p++) {
        count++;
    }
    return count;
}

/*
 * Whether the filter ending at node matches the topic, found by walking from
 * node up to the root while stepping back through the topic's levels. Used
 * only for routes with several filters, so its cost is paid rarely.
 */
static int node_path_matches(const struct topic_node *node, const char *topic, size_t len)
{
    size_t levels;
    size_t end;

    if (node_is_hash(node)) {
        node = node->parent;
        levels = node_depth(node);
        if (levels == 0) {
            return topic[0] != '$';
        }
        end = topic_prefix_end(topic, len, levels);
    } else {
        levels = node_depth(node);
        end = topic_level_count(topic, len) == levels ? len : SIZE_MAX;
    }
    if (end == SIZE_MAX) {
        return 0;
    }

    for (;;) {
        size_t start = level_start(topic, end);
        size_t n = end - start;

        if (node_is_plus(node)) {
            if (start == 0 && topic[0] == '$') {
                return 0;
            }
        } else if (node->label_len != n || memcmp(node->label, topic + start, n) != 0) {
            return 0;
        }
        if (node->parent->parent == NULL) {
            return 1;
        }
        node = node->parent;
        end = start - 1;
    }
}

/*
 * A route with several filters is reported at the first of its filter nodes
 * (in the order they were added) that matches, and skipped at the others.
 */
static int route_reported_here(const struct mzb_route_tree *tree, uint32_t route,
                               const struct topic_node *node, const char *topic, size_t len)
{
    const struct route_filters *rf = &tree->routes[route];

    if (rf->more_count == 0 || rf->first == node) {
        return 1;
    }
    if (node_path_matches(rf->first, topic, len)) {
        return 0;
    }
    for (uint32_t i = 0; i < rf->more_count && rf->more[i] != node; i++) {
        if (node_path_matches(rf->more[i], topic, len)) {
            return 0;
        }
    }
    return 1;
}

struct match_ctx {
    const struct mzb_route_tree *tree;
    const char *topic;
    size_t len;
    mzb_route_fn fn;
    void *arg;
    size_t calls;
};

static void report_routes(struct match_ctx *m, const struct topic_node *node)
{
    for (uint32_t i = 0; i < node->route_count; i++) {
        uint32_t route = node->routes[i];

        if (route_reported_here(m->tree, route, node, m->topic, m->len)) {
            m->fn(route, m->arg);
            m->calls++;
        }
    }
}

/*
 * Filters starting with a wildcard must not match topics starting with '$'
 * (MQTT 5.0 section 4.7.2); that only concerns the root's wildcard children.
 */
static int wildcards_allowed(const struct match_ctx *m, const struct topic_node *node)
{
    return node->parent != NULL || m->topic[0] != '$';
}

/*
 * Reports what node itself matches. pos is the offset of the next topic level
 * for node's children, or len + 1 when node consumed the last level.
 */
static void visit(struct match_ctx *m, const struct topic_node *node, size_t pos)
{
    if (node->hash != NULL && wildcards_allowed(m, node)) {
        report_routes(m, node->hash);
    }
    if (pos > m->len) {
        report_routes(m, node);
    }
}

/* The first child to descend into for the level at pos: the literal one, else '+'. */
static const struct topic_node *
first_child(const struct match_ctx *m, const struct topic_node *node, size_t pos, size_t *next_pos)
{
    const struct topic_node *child;
    size_t n;

    if (pos > m->len) {
        return NULL;
    }

    n = level_len(m->topic + pos, m->len - pos);
    *next_pos = pos + n + 1;
    child = node_find_child(node, m->topic + pos, n);
    if (child != NULL) {
        return child;
    }
    return wildcards_allowed(m, node) ? node->plus : NULL;
}

/*
 * A depth-first walk that keeps no stack: going back up uses the parent
 * pointer and finds the previous topic level by scanning back to its '/'.
 * After a literal child the '+' sibling is tried on the same topic level.
 */
size_t mzb_route_tree_match(struct mzb_route_tree *tree, const char *topic, size_t len,
                            mzb_route_fn fn, void *arg)
{
    struct match_ctx m = {tree, topic, len, fn, arg, 0};
    const struct topic_node *node = tree->root;
    size_t pos = 0;

    if (tree == NULL || fn == NULL || topic == NULL || len == 0) {
        return 0;
    }

    for (;;) {
        const struct topic_node *child;
        size_t child_pos = 0;

        visit(&m, node, pos);
        child = first_child(&m, node, pos, &child_pos);
        if (child != NULL) {
            node = child;
            pos = child_pos;
            continue;
        }

        for (;;) {
            const struct topic_node *parent = node->parent;

            if (parent == NULL) {
                return m.calls;
            }
            if (parent->plus != NULL && parent->plus != node && wildcards_allowed(&m, parent)) {
                node = parent->plus;
                break;
            }
            node = parent;
            pos = level_start(topic, pos - 1);
        }
    }
}
