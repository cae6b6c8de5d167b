#include "mzb_config.h"

#include "mzb_meta.h"
#include "mzb_reply.h"
#include "mzb_topic.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Offsets are kept in 32 bits, which a 1 GiB cap makes safe with room to spare. */
#define CONFIG_MAX_BYTES ((size_t)1 << 30)
#define CONFIG_MAX_ROUTES 1000000
#define CONFIG_MAX_DEPTH 2048   /* jansson's JSON_PARSER_MAX_DEPTH; it refuses deeper text */
#define CONFIG_SHOWN_MAX 48     /* bytes of a value quoted back in an error */
#define CONFIG_PAIRWISE_MAX 16  /* objects up to this size are checked for duplicates pairwise */
#define CONFIG_IPC_PATH_MAX 107 /* sizeof(sockaddr_un.sun_path) - 1 on Linux */
#define NODE_NONE UINT32_MAX
#define OFF_NONE SIZE_MAX

static const char default_reply_pattern[] = "reply/{client_id}/#";

enum node_flag {
    NODE_KEY_ESCAPED = 1, /* the key holds a backslash escape, so its text is not its value */
    NODE_SHADOWED = 2,    /* a later duplicate of the key replaced this value in jansson */
};

/*
 * One JSON value of the document, in document order. jansson keeps no
 * positions, so this index maps each value to where it was written. The first
 * child of a container, when it has one, is the node right after it.
 */
struct pos_node {
    uint32_t off;     /* first byte of the value */
    uint32_t key_off; /* opening quote of its key; NODE_NONE in arrays and for the root */
    uint32_t key_len; /* bytes between the key's quotes */
    uint32_t parent;
    uint32_t next;  /* next sibling */
    uint32_t last;  /* last child so far, while the index is built */
    uint32_t count; /* number of children */
    uint32_t flags;
};

struct pos_index {
    struct pos_node *nodes;
    uint32_t count;
    uint32_t cap;
};

/* The earliest problem found so far; problems are compared by their offset. */
struct fault {
    size_t off;
    uint32_t node; /* whose path is reported; NODE_NONE for the whole document */
    int code;
    char text[512];
};

struct loader {
    const char *text;
    size_t len;
    struct pos_index idx;
    struct fault fault;
    int nomem;
    struct mzb_config *cfg;
    json_t *service_map; /* service name -> index in cfg->services */
};

/* A key's value: its text in the document, or a decoded copy owned by owner. */
struct key_view {
    const char *ptr;
    size_t len;
    json_t *owner;
};

struct field;
typedef int (*field_read_fn)(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                             void *dst);

enum field_flag {
    FIELD_REQUIRED = 1,
    FIELD_REQUEST_ONLY = 2, /* refused on event routes */
    FIELD_CONNECT = 4,      /* an endpoint the plugin connects to, so '*' is no host */
};

/* One key of an object: how to read its value and where to store it in dst. */
struct field {
    const char *key;
    field_read_fn read;
    size_t offset;
    long long min;
    long long max;
    unsigned flags;
};

static void fault_vset(struct loader *ld, uint32_t node, size_t off, int code, const char *fmt,
                       va_list ap)
{
    if (off >= ld->fault.off) {
        return;
    }
    ld->fault.off = off;
    ld->fault.node = node;
    ld->fault.code = code;
    vsnprintf(ld->fault.text, sizeof(ld->fault.text), fmt, ap);
}

/* A problem with the document as a whole, at a byte offset. */
__attribute__((format(printf, 4, 5))) static void fault_at(struct loader *ld, size_t off, int code,
                                                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fault_vset(ld, NODE_NONE, off, code, fmt, ap);
    va_end(ap);
}

/* A problem with a value: reported at the value, or at the '{' for a missing key. */
__attribute__((format(printf, 3, 4))) static void fault_value(struct loader *ld, uint32_t node,
                                                              const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fault_vset(ld, node, ld->idx.nodes[node].off, MZB_CONFIG_E_INVALID, fmt, ap);
    va_end(ap);
}

/* A problem with a key itself (unknown, duplicated, not allowed here). */
__attribute__((format(printf, 3, 4))) static void fault_key(struct loader *ld, uint32_t node,
                                                            const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fault_vset(ld, node, ld->idx.nodes[node].key_off, MZB_CONFIG_E_INVALID, fmt, ap);
    va_end(ap);
}

static void line_column(const char *text, size_t len, size_t off, int *line, int *column)
{
    size_t line_start = 0;
    long n = 1;

    if (off > len) {
        off = len;
    }
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            n++;
            line_start = i + 1;
        }
    }
    *line = n > INT32_MAX ? INT32_MAX : (int)n;
    *column = off - line_start + 1 > INT32_MAX ? INT32_MAX : (int)(off - line_start + 1);
}

/*
 * Finds the first NUL byte or malformed UTF-8 sequence. Both make jansson
 * fail too, but its message names neither the cause nor the exact byte.
 */
static size_t bytes_find_fault(const char *text, size_t len, int *is_nul)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    while (i < len) {
        size_t n = mzb_utf8_sequence_len(s + i, len - i);

        if (s[i] == 0 || n == 0) {
            *is_nul = s[i] == 0;
            return i;
        }
        i += n;
    }
    return OFF_NONE;
}

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_space(const char *text, size_t len, size_t i)
{
    while (i < len && is_json_space(text[i])) {
        i++;
    }
    return i;
}

/* Refuses what jansson would report poorly: a BOM, an empty file, an oversized one. */
static int bytes_check_start(struct loader *ld)
{
    if (ld->len >= 3 && memcmp(ld->text, "\xEF\xBB\xBF", 3) == 0) {
        fault_at(ld, 0, MZB_CONFIG_E_SYNTAX,
                 "the file starts with a UTF-8 byte order mark; save it without one");
        return -1;
    }
    if (skip_space(ld->text, ld->len, 0) == ld->len) {
        fault_at(ld, 0, MZB_CONFIG_E_SYNTAX, "the file is empty; expected a JSON object");
        return -1;
    }
    if (ld->len > CONFIG_MAX_BYTES) {
        fault_at(ld, 0, MZB_CONFIG_E_SYNTAX, "the file is larger than 1 GiB, the most accepted");
        return -1;
    }
    return 0;
}

/*
 * jansson reports a "\u0000" escape at the end of its string. Strings never
 * span lines (a raw newline is refused inside one), so scanning the line from
 * its start finds the escape itself.
 */
static size_t find_nul_escape(const char *text, size_t line_start, size_t end)
{
    int in_string = 0;

    for (size_t i = line_start; i < end; i++) {
        if (text[i] == '"') {
            in_string = !in_string;
        } else if (in_string && text[i] == '\\') {
            if (end - i >= 6 && memcmp(text + i, "\\u0000", 6) == 0) {
                return i;
            }
            i++;
        }
    }
    return OFF_NONE;
}

static void syntax_nul_escape(struct loader *ld, size_t off)
{
    size_t line_start = off;
    size_t at;

    while (line_start > 0 && ld->text[line_start - 1] != '\n') {
        line_start--;
    }
    at = find_nul_escape(ld->text, line_start, off + 1);
    fault_at(ld, at == OFF_NONE ? off : at, MZB_CONFIG_E_SYNTAX,
             "a string holds the escape \\u0000 (the NUL character), which no key or value "
             "may contain");
}

/* Turns jansson's error into a fault at the byte it stopped on. */
static void syntax_fault(struct loader *ld, const json_error_t *je)
{
    size_t off = je->position > 0 ? (size_t)je->position - 1 : 0;

    if (off >= ld->len) {
        off = ld->len - 1;
    }
    switch (json_error_code(je)) {
    case json_error_out_of_memory:
        ld->nomem = 1;
        break;
    case json_error_stack_overflow:
        fault_at(ld, off, MZB_CONFIG_E_SYNTAX,
                 "arrays and objects are nested more than %d levels deep; the configuration "
                 "needs 4 levels at most",
                 CONFIG_MAX_DEPTH);
        break;
    case json_error_null_character:
    case json_error_null_byte_in_key:
        syntax_nul_escape(ld, off);
        break;
    default:
        fault_at(ld, off, MZB_CONFIG_E_SYNTAX, "not valid JSON: %s", je->text);
        break;
    }
}

static json_t *parse_json(struct loader *ld)
{
    json_error_t je;
    int is_nul = 0;
    size_t bad = bytes_find_fault(ld->text, ld->len, &is_nul);
    json_t *root;

    /* Duplicates are found by the position index, so jansson must accept them. */
    root = json_loadb(ld->text, ld->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (root != NULL && bad == OFF_NONE) {
        return root;
    }
    /*
     * jansson stops on the bad byte itself (its position is then the byte's
     * offset), and may even accept text cut short by a NUL, so the byte scan
     * decides unless jansson failed on something earlier.
     */
    if (bad != OFF_NONE && (root != NULL || bad <= (size_t)je.position)) {
        if (is_nul) {
            fault_at(ld, bad, MZB_CONFIG_E_SYNTAX,
                     "the file holds a NUL byte (0x00), which JSON text may not contain");
        } else {
            fault_at(ld, bad, MZB_CONFIG_E_SYNTAX,
                     "the byte 0x%02X is not valid UTF-8 here; save the file as UTF-8",
                     (unsigned char)ld->text[bad]);
        }
    } else {
        syntax_fault(ld, &je);
    }
    json_decref(root);
    return NULL;
}

static uint32_t index_add(struct loader *ld, size_t off, uint32_t parent)
{
    struct pos_index *idx = &ld->idx;
    struct pos_node *n;

    if (idx->count == idx->cap) {
        uint32_t cap = idx->cap ? idx->cap * 2 : 256;
        struct pos_node *nodes = realloc(idx->nodes, (size_t)cap * sizeof(*nodes));

        if (nodes == NULL) {
            ld->nomem = 1;
            return NODE_NONE;
        }
        idx->nodes = nodes;
        idx->cap = cap;
    }
    n = &idx->nodes[idx->count];
    *n = (struct pos_node){(uint32_t)off, NODE_NONE, 0, parent, NODE_NONE, NODE_NONE, 0, 0};
    if (parent != NODE_NONE) {
        struct pos_node *p = &idx->nodes[parent];

        if (p->last != NODE_NONE) {
            idx->nodes[p->last].next = idx->count;
        }
        p->last = idx->count;
        p->count++;
    }
    return idx->count++;
}

static uint32_t first_child(const struct loader *ld, uint32_t node)
{
    return ld->idx.nodes[node].count > 0 ? node + 1 : NODE_NONE;
}

static int is_object_node(const struct loader *ld, uint32_t node)
{
    return node != NODE_NONE && ld->text[ld->idx.nodes[node].off] == '{';
}

/* Index of the closing quote of the string whose opening quote is at off. */
static size_t string_end(const char *text, size_t len, size_t off, int *escaped)
{
    size_t i = off + 1;

    while (i < len && text[i] != '"') {
        if (text[i] == '\\') {
            *escaped = 1;
            i++;
        }
        i++;
    }
    return i < len ? i : len;
}

static size_t scalar_end(const char *text, size_t len, size_t off)
{
    size_t i = off;

    while (i < len && !is_json_space(text[i]) && strchr(",:]}", text[i]) == NULL) {
        i++;
    }
    return i;
}

static int key_get(const struct loader *ld, uint32_t node, struct key_view *kv)
{
    const struct pos_node *n = &ld->idx.nodes[node];

    kv->owner = NULL;
    if (!(n->flags & NODE_KEY_ESCAPED)) {
        kv->ptr = ld->text + n->key_off + 1;
        kv->len = n->key_len;
        return 0;
    }

    /* The key token is valid JSON already, so jansson can decode its escapes. */
    kv->owner = json_loadb(ld->text + n->key_off, (size_t)n->key_len + 2, JSON_DECODE_ANY, NULL);
    if (!json_is_string(kv->owner)) {
        json_decref(kv->owner);
        kv->owner = NULL;
        return -1;
    }
    kv->ptr = json_string_value(kv->owner);
    kv->len = json_string_length(kv->owner);
    return 0;
}

static void key_release(struct key_view *kv)
{
    json_decref(kv->owner);
    kv->owner = NULL;
}

/* 1 when the keys of nodes a and b are equal, 0 when not, -1 when out of memory. */
static int keys_equal(struct loader *ld, uint32_t a, uint32_t b)
{
    const struct pos_node *na = &ld->idx.nodes[a];
    const struct pos_node *nb = &ld->idx.nodes[b];
    struct key_view ka;
    struct key_view kb;
    int eq;

    if (!((na->flags | nb->flags) & NODE_KEY_ESCAPED)) {
        return na->key_len == nb->key_len &&
               memcmp(ld->text + na->key_off, ld->text + nb->key_off, na->key_len) == 0;
    }
    if (key_get(ld, a, &ka) != 0) {
        return -1;
    }
    if (key_get(ld, b, &kb) != 0) {
        key_release(&ka);
        return -1;
    }
    eq = ka.len == kb.len && memcmp(ka.ptr, kb.ptr, ka.len) == 0;
    key_release(&ka);
    key_release(&kb);
    return eq;
}

static void duplicate_found(struct loader *ld, uint32_t earlier, uint32_t later)
{
    const struct pos_node *e = &ld->idx.nodes[earlier];
    int line;
    int column;

    ld->idx.nodes[earlier].flags |= NODE_SHADOWED;
    if (ld->idx.nodes[later].key_off >= ld->fault.off) {
        return;
    }
    line_column(ld->text, ld->len, e->key_off, &line, &column);
    fault_key(ld, later,
              "the key \"%.*s\" appears a second time in this object (first on line %d); "
              "keep only one",
              (int)(e->key_len > CONFIG_SHOWN_MAX ? CONFIG_SHOWN_MAX : e->key_len),
              ld->text + e->key_off + 1, line);
}

static int duplicates_pairwise(struct loader *ld, uint32_t obj)
{
    for (uint32_t b = first_child(ld, obj); b != NODE_NONE; b = ld->idx.nodes[b].next) {
        for (uint32_t a = first_child(ld, obj); a != b; a = ld->idx.nodes[a].next) {
            int eq = keys_equal(ld, a, b);

            if (eq < 0) {
                return -1;
            }
            if (eq && !(ld->idx.nodes[a].flags & NODE_SHADOWED)) {
                duplicate_found(ld, a, b);
            }
        }
    }
    return 0;
}

static uint32_t key_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    return h;
}

/* Inserts node into the open-addressing table slots, reporting an equal key already there. */
static int duplicates_insert(struct loader *ld, uint32_t *slots, size_t mask, uint32_t node)
{
    struct key_view kv;
    size_t s;

    if (key_get(ld, node, &kv) != 0) {
        return -1;
    }
    s = key_hash(kv.ptr, kv.len) & mask;
    key_release(&kv);
    for (; slots[s] != NODE_NONE; s = (s + 1) & mask) {
        int eq = keys_equal(ld, slots[s], node);

        if (eq < 0) {
            return -1;
        }
        if (eq) {
            duplicate_found(ld, slots[s], node);
            break;
        }
    }
    slots[s] = node;
    return 0;
}

static int duplicates_hashed(struct loader *ld, uint32_t obj)
{
    size_t cap = 64;
    uint32_t *slots;
    int rc = 0;

    while (cap < (size_t)ld->idx.nodes[obj].count * 2) {
        cap *= 2;
    }
    slots = malloc(cap * sizeof(*slots));
    if (slots == NULL) {
        return -1;
    }
    memset(slots, 0xFF, cap * sizeof(*slots));
    for (uint32_t c = first_child(ld, obj); c != NODE_NONE && rc == 0; c = ld->idx.nodes[c].next) {
        rc = duplicates_insert(ld, slots, cap - 1, c);
    }
    free(slots);
    return rc;
}

static void object_close(struct loader *ld, uint32_t obj)
{
    int rc;

    if (ld->idx.nodes[obj].count <= CONFIG_PAIRWISE_MAX) {
        rc = duplicates_pairwise(ld, obj);
    } else {
        rc = duplicates_hashed(ld, obj);
    }
    if (rc != 0) {
        ld->nomem = 1;
    }
}

/* The tokenizer's state while it walks text that jansson has already accepted. */
struct scan {
    size_t i;
    uint32_t cur; /* innermost open container */
    int expect_key;
    uint32_t key_off;
    uint32_t key_len;
    uint32_t key_flags;
};

static void scan_string(struct loader *ld, struct scan *sc)
{
    int escaped = 0;
    size_t end = string_end(ld->text, ld->len, sc->i, &escaped);

    if (sc->expect_key) {
        sc->key_off = (uint32_t)sc->i;
        sc->key_len = (uint32_t)(end - sc->i - 1);
        sc->key_flags = escaped ? NODE_KEY_ESCAPED : 0;
        sc->expect_key = 0;
    } else {
        uint32_t n = index_add(ld, sc->i, sc->cur);

        if (n != NODE_NONE && is_object_node(ld, sc->cur)) {
            ld->idx.nodes[n].key_off = sc->key_off;
            ld->idx.nodes[n].key_len = sc->key_len;
            ld->idx.nodes[n].flags = sc->key_flags;
        }
    }
    sc->i = end + 1;
}

static void scan_value(struct loader *ld, struct scan *sc, char c)
{
    uint32_t n = index_add(ld, sc->i, sc->cur);

    if (n == NODE_NONE) {
        return;
    }
    if (is_object_node(ld, sc->cur)) {
        ld->idx.nodes[n].key_off = sc->key_off;
        ld->idx.nodes[n].key_len = sc->key_len;
        ld->idx.nodes[n].flags = sc->key_flags;
    }
    if (c == '{' || c == '[') {
        sc->cur = n;
        sc->expect_key = c == '{';
        sc->i++;
    } else {
        sc->i = scalar_end(ld->text, ld->len, sc->i);
    }
}

static void scan_step(struct loader *ld, struct scan *sc)
{
    char c = ld->text[sc->i];

    if (is_json_space(c) || c == ':') {
        sc->i++;
    } else if (c == ',') {
        sc->expect_key = is_object_node(ld, sc->cur);
        sc->i++;
    } else if (c == '}' || c == ']') {
        if (c == '}') {
            object_close(ld, sc->cur);
        }
        sc->cur = ld->idx.nodes[sc->cur].parent;
        sc->i++;
    } else if (c == '"') {
        scan_string(ld, sc);
    } else {
        scan_value(ld, sc, c);
    }
}

/*
 * Records every value's position and finds duplicate keys. jansson has
 * accepted the text, so the grammar needs no checking here and the nesting is
 * at most CONFIG_MAX_DEPTH; the loop is iterative all the same.
 */
static void index_build(struct loader *ld)
{
    struct scan sc = {0, NODE_NONE, 0, NODE_NONE, 0, 0};

    while (sc.i < ld->len && !ld->nomem) {
        if (sc.cur == NODE_NONE && ld->idx.count > 0) {
            break;
        }
        scan_step(ld, &sc);
    }
}

static uint32_t array_position(const struct loader *ld, uint32_t node)
{
    uint32_t i = 0;

    for (uint32_t c = ld->idx.nodes[node].parent + 1; c != node; c = ld->idx.nodes[c].next) {
        i++;
    }
    return i;
}

static void path_append(char *buf, size_t cap, size_t *used, const char *s, size_t len)
{
    if (*used + len >= cap) {
        len = cap - 1 - *used;
    }
    memcpy(buf + *used, s, len);
    *used += len;
    buf[*used] = '\0';
}

/* Writes the key path of node, such as "routes[2].filter"; "" for the root. */
static void path_of(const struct loader *ld, uint32_t node, char *buf, size_t cap)
{
    uint32_t chain[CONFIG_MAX_DEPTH + 2];
    size_t depth = 0;
    size_t used = 0;

    buf[0] = '\0';
    for (uint32_t n = node; n != NODE_NONE && depth < CONFIG_MAX_DEPTH + 2;
         n = ld->idx.nodes[n].parent) {
        chain[depth++] = n;
    }
    for (size_t d = depth; d-- > 0;) {
        const struct pos_node *n = &ld->idx.nodes[chain[d]];
        char part[16];

        if (n->parent == NODE_NONE) {
            continue;
        }
        if (n->key_off == NODE_NONE) {
            snprintf(part, sizeof(part), "[%u]", array_position(ld, chain[d]));
            path_append(buf, cap, &used, part, strlen(part));
            continue;
        }
        if (used > 0) {
            path_append(buf, cap, &used, ".", 1);
        }
        path_append(buf, cap, &used, ld->text + n->key_off + 1, n->key_len);
    }
}

/* Copies the value's text as written in the file, shortened to CONFIG_SHOWN_MAX bytes. */
static void value_shown(const struct loader *ld, uint32_t node, char *buf, size_t cap)
{
    size_t off = ld->idx.nodes[node].off;
    int escaped = 0;
    size_t end;
    size_t n;
    int is_string = ld->text[off] == '"';

    end = is_string ? string_end(ld->text, ld->len, off, &escaped) + 1
                    : scalar_end(ld->text, ld->len, off);
    n = end - off;
    if (n <= CONFIG_SHOWN_MAX) {
        snprintf(buf, cap, "%.*s", (int)n, ld->text + off);
        return;
    }

    /* Cut on a character boundary so the message stays valid UTF-8. */
    n = CONFIG_SHOWN_MAX;
    while (n > 1 && ((unsigned char)ld->text[off + n] & 0xC0) == 0x80) {
        n--;
    }
    snprintf(buf, cap, "%.*s...%s", (int)n, ld->text + off, is_string ? "\"" : "");
}

/* Describes what was found, for "found X; expected Y" sentences. */
static void value_describe(const struct loader *ld, json_t *v, uint32_t node, char *buf, size_t cap)
{
    char shown[CONFIG_SHOWN_MAX + 8];

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        snprintf(buf, cap, "an object");
        return;
    case JSON_ARRAY:
        snprintf(buf, cap, "an array");
        return;
    default:
        break;
    }
    value_shown(ld, node, shown, sizeof(shown));
    if (json_is_string(v)) {
        snprintf(buf, cap, "the string %s", shown);
    } else if (json_is_integer(v)) {
        snprintf(buf, cap, "the integer %s", shown);
    } else if (json_is_real(v)) {
        snprintf(buf, cap, "the real number %s", shown);
    } else {
        snprintf(buf, cap, "%s", shown);
    }
}

__attribute__((format(printf, 4, 5))) static void fault_found(struct loader *ld, json_t *v,
                                                              uint32_t node, const char *fmt, ...)
{
    char found[CONFIG_SHOWN_MAX + 40];
    char expected[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(expected, sizeof(expected), fmt, ap);
    va_end(ap);
    value_describe(ld, v, node, found, sizeof(found));
    fault_value(ld, node, "found %s; expected %s", found, expected);
}

static void *member(void *dst, const struct field *f)
{
    return (char *)dst + f->offset;
}

/* Reads an integer in [f->min, f->max]; returns 0, or -1 after recording a fault. */
static int read_integer(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                        long long *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max) {
        fault_found(ld, v, node, "an integer from %lld to %lld", f->min, f->max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int read_u32(struct loader *ld, const struct field *f, json_t *v, uint32_t node, void *dst)
{
    long long x;

    if (read_integer(ld, f, v, node, &x) != 0) {
        return -1;
    }
    *(uint32_t *)member(dst, f) = (uint32_t)x;
    return 0;
}

static int read_int(struct loader *ld, const struct field *f, json_t *v, uint32_t node, void *dst)
{
    long long x;

    if (read_integer(ld, f, v, node, &x) != 0) {
        return -1;
    }
    *(int *)member(dst, f) = (int)x;
    return 0;
}

static int store_string(struct loader *ld, const struct field *f, json_t *v, void *dst)
{
    char **slot = member(dst, f);
    char *copy = strdup(json_string_value(v));

    if (copy == NULL) {
        ld->nomem = 1;
        return -1;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

static int require_string(struct loader *ld, json_t *v, uint32_t node, const char *expected)
{
    if (!json_is_string(v)) {
        fault_found(ld, v, node, "%s", expected);
        return -1;
    }
    /* \u0000 is accepted by the parser so that the error can name the key that holds it. */
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        fault_found(ld, v, node, "a string without the character U+0000 (NUL)");
        return -1;
    }
    return 0;
}

static int read_string(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                       void *dst)
{
    size_t len;

    if (require_string(ld, v, node, "a string") != 0) {
        return -1;
    }
    len = json_string_length(v);
    if ((long long)len < f->min || (long long)len > f->max) {
        fault_found(ld, v, node, "a string of %lld to %lld bytes (this one has %zu)", f->min,
                    f->max, len);
        return -1;
    }
    return store_string(ld, f, v, dst);
}

static int host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static const char *tcp_host_problem(const char *host, size_t len, int connect)
{
    if (len == 0) {
        return "the host is empty";
    }
    if (len > 255) {
        return "the host is longer than 255 bytes";
    }
    if (len == 1 && host[0] == '*') {
        return connect ? "the plugin connects to this endpoint, so '*' cannot be its host" : NULL;
    }
    if (host[0] == '[') {
        for (size_t i = 1; i + 1 < len; i++) {
            if (strchr("0123456789abcdefABCDEF:.", host[i]) == NULL) {
                return "an IPv6 address in brackets holds a character other than hex digits, "
                       "':' and '.'";
            }
        }
        return host[len - 1] == ']' ? NULL : "an IPv6 address is missing its closing ']'";
    }
    for (size_t i = 0; i < len; i++) {
        if (!host_char_ok(host[i])) {
            return "the host may hold only letters, digits, '.', '-' and '_'";
        }
    }
    return NULL;
}

static const char *tcp_port_problem(const char *port)
{
    long value = 0;

    if (*port == '\0') {
        return "the port is empty";
    }
    for (const char *p = port; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || p - port >= 5) {
            return "the port must be a number from 1 to 65535";
        }
        value = value * 10 + (*p - '0');
    }
    return value >= 1 && value <= 65535 ? NULL : "the port must be a number from 1 to 65535";
}

static const char *endpoint_problem(const char *s, int connect)
{
    const char *colon;
    const char *problem;

    if (strncmp(s, "ipc://", 6) == 0) {
        if (s[6] == '\0') {
            return "the path after ipc:// is empty";
        }
        return strlen(s + 6) > CONFIG_IPC_PATH_MAX ? "the ipc path is longer than 107 bytes" : NULL;
    }
    if (strncmp(s, "tcp://", 6) != 0) {
        return "it starts with neither tcp:// nor ipc://";
    }
    colon = strrchr(s + 6, ':');
    if (colon == NULL || (s[6] == '[' && strchr(colon, ']') != NULL)) {
        return "the port is missing";
    }
    problem = tcp_host_problem(s + 6, (size_t)(colon - (s + 6)), connect);
    return problem != NULL ? problem : tcp_port_problem(colon + 1);
}

static int read_endpoint(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                         void *dst)
{
    char shown[CONFIG_SHOWN_MAX + 8];
    const char *problem;

    if (require_string(ld, v, node, "an endpoint string, tcp://HOST:PORT or ipc://PATH") != 0) {
        return -1;
    }
    problem = endpoint_problem(json_string_value(v), f->flags & FIELD_CONNECT);
    if (problem != NULL) {
        value_shown(ld, node, shown, sizeof(shown));
        fault_value(ld, node,
                    "%s is not a valid endpoint: %s; expected tcp://HOST:PORT or "
                    "ipc://PATH",
                    shown, problem);
        return -1;
    }
    return store_string(ld, f, v, dst);
}

static int read_filter(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                       void *dst)
{
    char shown[CONFIG_SHOWN_MAX + 8];
    int rc;

    if (require_string(ld, v, node, "a topic filter string") != 0) {
        return -1;
    }
    rc = mzb_filter_check(json_string_value(v), json_string_length(v));
    if (rc != MZB_TOPIC_OK) {
        value_shown(ld, node, shown, sizeof(shown));
        fault_value(ld, node, "%s is not a valid topic filter: %s", shown, mzb_topic_strerror(rc));
        return -1;
    }
    return store_string(ld, f, v, dst);
}

static int service_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("._:/-", c) != NULL;
}

/* Writes into why what is wrong with a service name, or returns 0 when it is fine. */
static int service_problem(const char *s, size_t len, char *why, size_t cap)
{
    if (len == 0) {
        snprintf(why, cap, "it is empty");
        return 1;
    }
    if (len > 255) {
        snprintf(why, cap, "it is %zu bytes long; at most 255 are allowed", len);
        return 1;
    }
    if (strncmp(s, "mmi.", 4) == 0) {
        snprintf(why, cap, "names starting with \"mmi.\" are kept for the bridge's own services");
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!service_char_ok(s[i])) {
            snprintf(why, cap, "the byte 0x%02X is not allowed; use letters, digits and . _ : / -",
                     (unsigned char)s[i]);
            return 1;
        }
    }
    return 0;
}

static int read_service(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                        void *dst)
{
    char shown[CONFIG_SHOWN_MAX + 8];
    char why[128];

    if (require_string(ld, v, node, "a service name string") != 0) {
        return -1;
    }
    if (service_problem(json_string_value(v), json_string_length(v), why, sizeof(why))) {
        value_shown(ld, node, shown, sizeof(shown));
        fault_value(ld, node, "%s is not a valid service name: %s", shown, why);
        return -1;
    }
    return store_string(ld, f, v, dst);
}

/* Reads a string that must be one of names[]; stores its index as an int. */
static int read_choice(struct loader *ld, json_t *v, uint32_t node, const char *const names[2],
                       int *out)
{
    for (int i = 0; i < 2 && json_is_string(v); i++) {
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    fault_found(ld, v, node, "\"%s\" or \"%s\"", names[0], names[1]);
    return -1;
}

static int read_mode(struct loader *ld, const struct field *f, json_t *v, uint32_t node, void *dst)
{
    static const char *const names[2] = {
        [MZB_MODE_EVENT] = "event", [MZB_MODE_REQUEST] = "request"};

    return read_choice(ld, v, node, names, member(dst, f));
}

static int read_overload(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                         void *dst)
{
    static const char *const names[2] = {"deliver", "refuse"};

    return read_choice(ld, v, node, names, member(dst, f));
}

typedef int (*reply_check_fn)(const char *s, char *why, size_t why_cap);

static int read_reply(struct loader *ld, const struct field *f, json_t *v, uint32_t node, void *dst,
                      reply_check_fn check)
{
    char shown[CONFIG_SHOWN_MAX + 8];
    char why[200];

    if (require_string(ld, v, node, "a string") != 0) {
        return -1;
    }
    why[0] = '\0';
    if (check(json_string_value(v), why, sizeof(why)) != MZB_REPLY_OK) {
        size_t n = strlen(why);

        /* The reason is embedded in our own sentence, which has no final period. */
        if (n > 0 && why[n - 1] == '.') {
            why[n - 1] = '\0';
        }
        value_shown(ld, node, shown, sizeof(shown));
        fault_value(ld, node, "%s is not a valid %s: %s", shown, f->key, why);
        return -1;
    }
    return store_string(ld, f, v, dst);
}

static int read_reply_pattern(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                              void *dst)
{
    return read_reply(ld, f, v, node, dst, mzb_reply_pattern_check);
}

static int read_reply_topic(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                            void *dst)
{
    return read_reply(ld, f, v, node, dst, mzb_reply_template_check);
}

static const struct field *field_find(const struct field *fields, size_t n,
                                      const struct key_view *kv)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(fields[i].key) == kv->len && memcmp(fields[i].key, kv->ptr, kv->len) == 0) {
            return &fields[i];
        }
    }
    return NULL;
}

static void fault_unknown_key(struct loader *ld, uint32_t node, const struct field *fields,
                              size_t n)
{
    const struct pos_node *k = &ld->idx.nodes[node];
    char known[300];
    size_t used = 0;

    known[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof(known); i++) {
        int w = snprintf(known + used, sizeof(known) - used, "%s\"%s\"", i == 0 ? "" : ", ",
                         fields[i].key);

        used += w > 0 ? (size_t)w : 0;
    }
    fault_key(ld, node, "unknown key \"%.*s\"; expected one of %s",
              (int)(k->key_len > CONFIG_SHOWN_MAX ? CONFIG_SHOWN_MAX : k->key_len),
              ld->text + k->key_off + 1, known);
}

static void read_member(struct loader *ld, json_t *obj, uint32_t child, const struct field *fields,
                        size_t n, void *dst, uint32_t *found)
{
    struct key_view kv;
    const struct field *f;

    if (key_get(ld, child, &kv) != 0) {
        ld->nomem = 1;
        return;
    }
    f = field_find(fields, n, &kv);
    if (f == NULL) {
        fault_unknown_key(ld, child, fields, n);
    } else {
        found[f - fields] = child;
        f->read(ld, f, json_object_getn(obj, kv.ptr, kv.len), child, dst);
    }
    key_release(&kv);
}

/*
 * Reads every member of the object at node into dst by the table fields, in
 * document order, and records in found[] the node of each key present.
 */
static void read_object(struct loader *ld, json_t *obj, uint32_t node, const struct field *fields,
                        size_t n, void *dst, uint32_t *found)
{
    for (size_t i = 0; i < n; i++) {
        found[i] = NODE_NONE;
    }
    for (uint32_t c = first_child(ld, node); c != NODE_NONE && !ld->nomem;
         c = ld->idx.nodes[c].next) {
        if (!(ld->idx.nodes[c].flags & NODE_SHADOWED)) {
            read_member(ld, obj, c, fields, n, dst, found);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if ((fields[i].flags & FIELD_REQUIRED) && found[i] == NODE_NONE) {
            fault_value(ld, node, "the required key \"%s\" is missing", fields[i].key);
        }
    }
}

static int require_object(struct loader *ld, json_t *v, uint32_t node)
{
    if (!json_is_object(v)) {
        fault_found(ld, v, node, "an object");
        return -1;
    }
    return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MQTT_AT(m) offsetof(struct mzb_mqtt_config, m)
#define CFG_AT(m) offsetof(struct mzb_config, m)
#define ROUTE_AT(m) offsetof(struct mzb_route, m)

static const struct field mqtt_fields[] = {
    {"host", read_string, MQTT_AT(host), 1, 255, 0},
    {"port", read_int, MQTT_AT(port), 1, 65535, 0},
    {"client_id", read_string, MQTT_AT(client_id), 1, 256, 0},
    {"username", read_string, MQTT_AT(username), 0, 65535, 0},
    {"password", read_string, MQTT_AT(password), 0, 65535, 0},
    {"keepalive", read_int, MQTT_AT(keepalive), 5, 65535, 0},
};

static int read_mqtt(struct loader *ld, const struct field *f, json_t *v, uint32_t node, void *dst)
{
    uint32_t found[COUNT(mqtt_fields)];

    if (require_object(ld, v, node) != 0) {
        return -1;
    }
    read_object(ld, v, node, mqtt_fields, COUNT(mqtt_fields), member(dst, f), found);
    return 0;
}

enum { BRIDGE_PLUGIN_ENDPOINT = 0, BRIDGE_HANDLER_ENDPOINT = 1 };

static const struct field bridge_fields[] = {
    [BRIDGE_PLUGIN_ENDPOINT] = {"plugin_endpoint", read_endpoint, CFG_AT(plugin_endpoint), 0, 0,
                                FIELD_REQUIRED | FIELD_CONNECT},
    [BRIDGE_HANDLER_ENDPOINT] = {"handler_endpoint", read_endpoint, CFG_AT(handler_endpoint), 0, 0,
                                 FIELD_REQUIRED},
    {"heartbeat_ms", read_u32, CFG_AT(heartbeat_ms), 100, 60000, 0},
    {"liveness", read_u32, CFG_AT(liveness), 2, 100, 0},
    {"max_queue", read_u32, CFG_AT(max_queue), 1, 10000000, 0},
    {"stats_interval_s", read_u32, CFG_AT(stats_interval_s), 0, 86400, 0},
    {"mqtt", read_mqtt, CFG_AT(mqtt), 0, 0, 0},
};

static int read_bridge(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                       void *dst)
{
    struct mzb_config *cfg = dst;
    uint32_t found[COUNT(bridge_fields)];

    (void)f;
    if (require_object(ld, v, node) != 0) {
        return -1;
    }
    read_object(ld, v, node, bridge_fields, COUNT(bridge_fields), dst, found);
    if (cfg->plugin_endpoint != NULL && cfg->handler_endpoint != NULL &&
        strcmp(cfg->plugin_endpoint, cfg->handler_endpoint) == 0) {
        fault_value(ld, found[BRIDGE_HANDLER_ENDPOINT],
                    "the handler endpoint is the same as bridge.plugin_endpoint; the two sockets "
                    "need different endpoints");
    }
    return 0;
}

static const struct field plugin_fields[] = {
    {"queue_limit", read_u32, CFG_AT(queue_limit), 1, 10000000, 0},
    {"max_unacked", read_u32, CFG_AT(max_unacked), 0, 10000000, 0},
    {"qos2_dedup_ms", read_u32, CFG_AT(qos2_dedup_ms), 0, 3600000, 0},
    {"log_interval_s", read_u32, CFG_AT(log_interval_s), 1, 3600, 0},
};

static int read_plugin(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                       void *dst)
{
    uint32_t found[COUNT(plugin_fields)];

    (void)f;
    if (require_object(ld, v, node) != 0) {
        return -1;
    }
    read_object(ld, v, node, plugin_fields, COUNT(plugin_fields), dst, found);
    return 0;
}

static const struct field route_fields[] = {
    {"filter", read_filter, ROUTE_AT(filter), 0, 0, FIELD_REQUIRED},
    {"service", read_service, ROUTE_AT(service), 0, 0, FIELD_REQUIRED},
    {"mode", read_mode, ROUTE_AT(mode), 0, 0, FIELD_REQUIRED},
    {"reply_pattern", read_reply_pattern, ROUTE_AT(reply_pattern), 0, 0, FIELD_REQUEST_ONLY},
    {"reply_topic", read_reply_topic, ROUTE_AT(reply_topic), 0, 0, FIELD_REQUEST_ONLY},
    {"timeout_ms", read_u32, ROUTE_AT(timeout_ms), 1, 3600000, FIELD_REQUEST_ONLY},
    {"qos", read_int, ROUTE_AT(qos), 0, 2, FIELD_REQUEST_ONLY},
    {"on_overload", read_overload, ROUTE_AT(refuse_on_overload), 0, 0, 0},
};

static void service_assign(struct loader *ld, struct mzb_route *r)
{
    struct mzb_config *cfg = ld->cfg;
    json_t *known = json_object_get(ld->service_map, r->service);
    char *copy;

    if (known != NULL) {
        r->service_index = (uint32_t)json_integer_value(known);
        return;
    }
    copy = strdup(r->service);
    if (copy == NULL ||
        json_object_set_new(ld->service_map, r->service, json_integer(cfg->service_count)) != 0) {
        free(copy);
        ld->nomem = 1;
        return;
    }
    r->service_index = (uint32_t)cfg->service_count;
    cfg->services[cfg->service_count++] = copy;
}

/* Applies what depends on the mode once every key of the route is read. */
static void route_finish(struct loader *ld, struct mzb_route *r, const uint32_t *found)
{
    if (r->mode == MZB_MODE_EVENT) {
        for (size_t i = 0; i < COUNT(route_fields); i++) {
            if ((route_fields[i].flags & FIELD_REQUEST_ONLY) && found[i] != NODE_NONE) {
                fault_key(ld, found[i],
                          "\"%s\" applies only to request routes, and this route's mode is "
                          "\"event\"",
                          route_fields[i].key);
            }
        }
        r->timeout_ms = 0;
    } else if (r->mode == MZB_MODE_REQUEST && r->reply_pattern == NULL) {
        r->reply_pattern = strdup(default_reply_pattern);
        ld->nomem |= r->reply_pattern == NULL;
    }
    if (r->service != NULL && !ld->nomem) {
        service_assign(ld, r);
    }
}

static void read_route(struct loader *ld, json_t *v, uint32_t node, struct mzb_route *r)
{
    uint32_t found[COUNT(route_fields)];

    r->mode = -1;
    r->timeout_ms = 5000;
    r->qos = -1;
    if (!json_is_object(v)) {
        fault_found(ld, v, node, "an object with the keys \"filter\", \"service\" and \"mode\"");
        return;
    }
    read_object(ld, v, node, route_fields, COUNT(route_fields), r, found);
    route_finish(ld, r, found);
}

static int routes_alloc(struct loader *ld, size_t n)
{
    struct mzb_config *cfg = ld->cfg;

    cfg->routes = calloc(n ? n : 1, sizeof(*cfg->routes));
    cfg->services = calloc(n ? n : 1, sizeof(*cfg->services));
    ld->service_map = json_object();
    if (cfg->routes == NULL || cfg->services == NULL || ld->service_map == NULL) {
        ld->nomem = 1;
        return -1;
    }
    cfg->route_count = n;
    return 0;
}

static int read_routes(struct loader *ld, const struct field *f, json_t *v, uint32_t node,
                       void *dst)
{
    size_t n = json_array_size(v);
    uint32_t c = first_child(ld, node);

    (void)f;
    (void)dst;
    if (!json_is_array(v)) {
        fault_found(ld, v, node, "an array of routes");
        return -1;
    }
    if (n > CONFIG_MAX_ROUTES) {
        fault_value(ld, node, "found %zu routes; at most %d are allowed", n, CONFIG_MAX_ROUTES);
        return -1;
    }
    if (routes_alloc(ld, n) != 0) {
        return -1;
    }
    for (size_t i = 0; i < n && c != NODE_NONE && !ld->nomem; i++, c = ld->idx.nodes[c].next) {
        read_route(ld, json_array_get(v, i), c, &ld->cfg->routes[i]);
    }
    return 0;
}

static const struct field root_fields[] = {
    {"bridge", read_bridge, 0, 0, 0, FIELD_REQUIRED},
    {"plugin", read_plugin, 0, 0, 0, 0},
    {"routes", read_routes, 0, 0, 0, FIELD_REQUIRED},
};

static void read_root(struct loader *ld, json_t *root)
{
    uint32_t found[COUNT(root_fields)];

    if (!json_is_object(root)) {
        fault_found(ld, root, 0,
                    "an object with the keys \"bridge\" and \"routes\" at the top level");
        return;
    }
    read_object(ld, root, 0, root_fields, COUNT(root_fields), ld->cfg, found);
}

static struct mzb_config *config_new(void)
{
    struct mzb_config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL) {
        return NULL;
    }
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 4;
    cfg->max_queue = 10000;
    cfg->stats_interval_s = 60;
    cfg->mqtt.port = 1883;
    cfg->mqtt.keepalive = 30;
    cfg->queue_limit = 10000;
    cfg->max_unacked = 100000;
    cfg->qos2_dedup_ms = 5000;
    cfg->log_interval_s = 10;
    cfg->mqtt.host = strdup("127.0.0.1");
    cfg->mqtt.client_id = strdup("mzb-bridge");
    if (cfg->mqtt.host == NULL || cfg->mqtt.client_id == NULL) {
        mzb_config_destroy(&cfg);
    }
    return cfg;
}

static void error_fill(const struct loader *ld, const char *name, struct mzb_config_error *err)
{
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", name != NULL ? name : "<config>");
    if (ld->nomem) {
        snprintf(err->text, sizeof(err->text), "out of memory while loading the configuration");
        return;
    }
    line_column(ld->text, ld->len, ld->fault.off, &err->line, &err->column);
    if (ld->fault.node != NODE_NONE) {
        path_of(ld, ld->fault.node, err->path, sizeof(err->path));
    }
    snprintf(err->text, sizeof(err->text), "%s", ld->fault.text);
}

static void config_check(struct loader *ld)
{
    json_t *root;

    if (bytes_check_start(ld) != 0) {
        return;
    }
    root = parse_json(ld);
    if (root == NULL) {
        return;
    }
    index_build(ld);
    ld->cfg = config_new();
    if (ld->cfg == NULL) {
        ld->nomem = 1;
    }
    if (!ld->nomem) {
        read_root(ld, root);
    }
    json_decref(root);
}

int mzb_config_load_string(const char *text, size_t len, const char *name, struct mzb_config **out,
                           struct mzb_config_error *err)
{
    struct loader ld;
    int rc = MZB_CONFIG_OK;

    memset(&ld, 0, sizeof(ld));
    ld.text = text != NULL ? text : "";
    ld.len = text != NULL ? len : 0;
    ld.fault.off = OFF_NONE;
    *out = NULL;

    config_check(&ld);
    if (ld.nomem) {
        rc = MZB_CONFIG_E_NOMEM;
    } else if (ld.fault.off != OFF_NONE) {
        rc = ld.fault.code;
    }
    if (rc != MZB_CONFIG_OK && err != NULL) {
        error_fill(&ld, name, err);
    }
    if (rc == MZB_CONFIG_OK) {
        *out = ld.cfg;
    } else {
        mzb_config_destroy(&ld.cfg);
    }
    json_decref(ld.service_map);
    free(ld.idx.nodes);
    return rc;
}

static void error_io(const char *path, const char *what, int errnum, struct mzb_config_error *err)
{
    char buf[128];

    if (err == NULL) {
        return;
    }
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", path);
    snprintf(err->text, sizeof(err->text), "cannot %s the file: %s", what,
             strerror_r(errnum, buf, sizeof(buf)));
}

/*
 * Reads the whole stream; returns 0 or an errno value. Reading stops one byte
 * past the cap, which is enough for the loader to refuse the file.
 */
static int read_all(FILE *fp, char **text, size_t *len)
{
    size_t limit = CONFIG_MAX_BYTES + 1;
    size_t cap = 0;
    size_t used = 0;
    char *buf = NULL;

    while (!feof(fp) && !ferror(fp) && used < limit) {
        if (used == cap) {
            size_t grown_cap = cap == 0 ? 65536 : (cap * 2 < limit ? cap * 2 : limit);
            char *grown = realloc(buf, grown_cap);

            if (grown == NULL) {
                free(buf);
                return ENOMEM;
            }
            buf = grown;
            cap = grown_cap;
        }
        used += fread(buf + used, 1, cap - used, fp);
    }
    if (ferror(fp)) {
        free(buf);
        return errno != 0 ? errno : EIO;
    }
    *text = buf;
    *len = used;
    return 0;
}

int mzb_config_load_file(const char *path, struct mzb_config **out, struct mzb_config_error *err)
{
    FILE *fp;
    char *text = NULL;
    size_t len = 0;
    int errnum;
    int rc;

    *out = NULL;
    fp = fopen(path, "rb");
    if (fp == NULL) {
        error_io(path, "open", errno, err);
        return MZB_CONFIG_E_IO;
    }
    errno = 0;
    errnum = read_all(fp, &text, &len);
    if (fclose(fp) != 0 && errnum == 0) {
        errnum = errno;
    }
    if (errnum != 0) {
        free(text);
        error_io(path, "read", errnum, err);
        return errnum == ENOMEM ? MZB_CONFIG_E_NOMEM : MZB_CONFIG_E_IO;
    }
    rc = mzb_config_load_string(text, len, path, out, err);
    free(text);
    return rc;
}

void mzb_config_destroy(struct mzb_config **cfg)
{
    struct mzb_config *c;

    if (cfg == NULL || *cfg == NULL) {
        return;
    }
    c = *cfg;
    for (size_t i = 0; c->routes != NULL && i < c->route_count; i++) {
        free(c->routes[i].filter);
        free(c->routes[i].service);
        free(c->routes[i].reply_pattern);
        free(c->routes[i].reply_topic);
    }
    for (size_t i = 0; c->services != NULL && i < c->service_count; i++) {
        free(c->services[i]);
    }
    free(c->routes);
    free(c->services);
    free(c->plugin_endpoint);
    free(c->handler_endpoint);
    free(c->mqtt.host);
    free(c->mqtt.client_id);
    free(c->mqtt.username);
    free(c->mqtt.password);
    free(c);
    *cfg = NULL;
}

static void format_append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void format_append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*used >= cap - 1) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n > 0) {
        *used = *used + (size_t)n < cap - 1 ? *used + (size_t)n : cap - 1;
    }
}

char *mzb_config_error_format(const struct mzb_config_error *err, char *buf, size_t cap)
{
    size_t used = 0;

    if (buf == NULL || cap == 0) {
        return buf;
    }
    buf[0] = '\0';
    format_append(buf, cap, &used, "%s", err->file);
    if (err->line > 0) {
        format_append(buf, cap, &used, ":%d", err->line);
        if (err->column > 0) {
            format_append(buf, cap, &used, ":%d", err->column);
        }
    }
    if (used > 0) {
        format_append(buf, cap, &used, ": ");
    }
    if (err->path[0] != '\0') {
        format_append(buf, cap, &used, "%s: ", err->path);
    }
    format_append(buf, cap, &used, "%s", err->text);
    return buf;
}

int mzb_config_service_index(const struct mzb_config *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && name != NULL && i < cfg->service_count; i++) {
        if (strcmp(cfg->services[i], name) == 0) {
            return i > INT32_MAX ? -1 : (int)i;
        }
    }
    return -1;
}
