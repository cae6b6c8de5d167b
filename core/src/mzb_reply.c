#include "mzb_reply.h"

#include "mzb_topic.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How much of an offending level or name a reason quotes. */
#define QUOTE_MAX 40

enum placeholder {
    PH_UNKNOWN = -1,
    PH_CLIENT_ID = 0,
    PH_USERNAME = 1,
    PH_TOPIC = 2,
};

static const struct {
    const char *name;
    enum placeholder kind;
} placeholders[] = {
    {"client_id", PH_CLIENT_ID},
    {"username", PH_USERNAME},
    {"topic", PH_TOPIC},
};

static const char *const reply_errors[] = {
    [MZB_REPLY_OK] = "no error",
    [MZB_REPLY_E_INVALID] = "the reply pattern or template is not valid",
    [MZB_REPLY_E_PLACEHOLDER] = "the template names an unknown placeholder",
    [MZB_REPLY_E_NO_USERNAME] = "the template needs {username} but the client has no user name",
    [MZB_REPLY_E_TOO_LONG] = "the expanded reply topic does not fit its buffer",
};

const char *mzb_reply_strerror(int err)
{
    if (err < 0 || (size_t)err >= sizeof(reply_errors) / sizeof(reply_errors[0])) {
        return "unknown reply error";
    }
    return reply_errors[err];
}

static int set_why(int rc, char *why, size_t why_cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the reason for a refusal, when the caller wants one, and passes rc through. */
static int set_why(int rc, char *why, size_t why_cap, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || why_cap == 0) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf(why, why_cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int quote_len(size_t n)
{
    return n > QUOTE_MAX ? QUOTE_MAX : (int)n;
}

/* The placeholder named by the n bytes at name (between the braces). */
static enum placeholder placeholder_kind(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++) {
        if (strlen(placeholders[i].name) == n && memcmp(placeholders[i].name, name, n) == 0) {
            return placeholders[i].kind;
        }
    }
    return PH_UNKNOWN;
}

/* The placeholder a whole pattern level stands for, or PH_UNKNOWN. */
static enum placeholder pattern_level_placeholder(const char *level, size_t n)
{
    enum placeholder kind;

    if (n < 2 || level[0] != '{' || level[n - 1] != '}') {
        return PH_UNKNOWN;
    }
    kind = placeholder_kind(level + 1, n - 2);
    return kind == PH_TOPIC ? PH_UNKNOWN : kind;
}

/* The checks every pattern and template needs before its own rules. */
static int text_check(const char *what, const char *s, size_t len, char *why, size_t why_cap)
{
    if (len == 0) {
        return set_why(MZB_REPLY_E_INVALID, why, why_cap, "the %s is empty.", what);
    }
    if (len > MZB_TOPIC_MAX_LEN) {
        return set_why(MZB_REPLY_E_INVALID, why, why_cap, "the %s is longer than 65,535 bytes.",
                       what);
    }
    if (mzb_utf8_check(s, len) != MZB_TOPIC_OK) {
        return set_why(MZB_REPLY_E_INVALID, why, why_cap, "the %s is not valid UTF-8.", what);
    }
    if (s[0] == '$') {
        return set_why(MZB_REPLY_E_INVALID, why, why_cap,
                       "the %s starts with '$', and reply topics may not.", what);
    }
    return MZB_REPLY_OK;
}

static int pattern_level_check(const char *level, size_t n, int is_last, char *why, size_t why_cap)
{
    int rc;

    if (n == 0 || pattern_level_placeholder(level, n) != PH_UNKNOWN) {
        return MZB_REPLY_OK;
    }
    if (memchr(level, '{', n) != NULL || memchr(level, '}', n) != NULL) {
        return set_why(MZB_REPLY_E_INVALID, why, why_cap,
                       "the reply pattern level '%.*s' holds a brace but is not exactly "
                       "{client_id} or {username}.",
                       quote_len(n), level);
    }

    rc = mzb_filter_check(level, n);
    if (rc == MZB_TOPIC_OK && level[0] == '#' && !is_last) {
        rc = MZB_TOPIC_E_HASH_POSITION;
    }
    if (rc != MZB_TOPIC_OK) {
        return set_why(MZB_REPLY_E_INVALID, why, why_cap,
                       "the reply pattern level '%.*s' is wrong: %s.", quote_len(n), level,
                       mzb_topic_strerror(rc));
    }
    return MZB_REPLY_OK;
}

int mzb_reply_pattern_check(const char *pattern, char *why, size_t why_cap)
{
    size_t len = pattern == NULL ? 0 : strlen(pattern);
    const char *level = pattern;
    int rc = text_check("reply pattern", pattern, len, why, why_cap);

    if (rc != MZB_REPLY_OK) {
        return rc;
    }

    for (;;) {
        size_t n = strcspn(level, "/");
        int is_last = level[n] == '\0';

        rc = pattern_level_check(level, n, is_last, why, why_cap);
        if (rc != MZB_REPLY_OK || is_last) {
            return rc;
        }
        level += n + 1;
    }
}

static const char *placeholder_value(enum placeholder kind, const char *client_id,
                                     const char *username)
{
    return kind == PH_CLIENT_ID ? client_id : username;
}

/*
 * Matches one pattern level against the topic at *pos and moves *pos to the
 * end of what it consumed (a '/' or the topic's end). A placeholder consumes
 * its value's text, which may span several topic levels.
 */
static int pattern_level_match(const char *level, size_t n, const char *topic, size_t topic_len,
                               size_t *pos, const char *client_id, const char *username)
{
    const char *rest = topic + *pos;
    size_t avail = topic_len - *pos;
    const char *slash = memchr(rest, '/', avail);
    size_t tn = slash == NULL ? avail : (size_t)(slash - rest);
    enum placeholder kind = pattern_level_placeholder(level, n);
    const char *value;
    size_t vn;

    if (kind == PH_UNKNOWN) {
        if (!(n == 1 && level[0] == '+') && (n != tn || memcmp(level, rest, n) != 0)) {
            return 0;
        }
        *pos += tn;
        return 1;
    }

    value = placeholder_value(kind, client_id, username);
    if (value == NULL) {
        return 0;
    }
    vn = strlen(value);
    if (vn > avail || memcmp(value, rest, vn) != 0 || (vn < avail && rest[vn] != '/')) {
        return 0;
    }
    *pos += vn;
    return 1;
}

int mzb_reply_pattern_match(const char *pattern, const char *topic, size_t topic_len,
                            const char *client_id, const char *username)
{
    const char *p = pattern;
    size_t pos = 0;

    if (pattern == NULL || topic == NULL || topic_len == 0) {
        return 0;
    }
    if (topic[0] == '$' && (p[0] == '+' || p[0] == '#')) {
        return 0;
    }

    for (;;) {
        size_t n = strcspn(p, "/");

        if (n == 1 && p[0] == '#') {
            return 1;
        }
        if (!pattern_level_match(p, n, topic, topic_len, &pos, client_id, username)) {
            return 0;
        }
        p += n;
        if (*p == '\0') {
            return pos == topic_len;
        }
        if (pos == topic_len) {
            /* A trailing '#' also matches the parent level, as in MQTT filters. */
            return strcmp(p, "/#") == 0;
        }
        p++;
        pos++;
    }
}

struct expand_buf {
    char *out;
    size_t cap;
    size_t used;
};

/* Appends n bytes, always leaving room for the final NUL. */
static int buf_append(struct expand_buf *b, const char *s, size_t n)
{
    if (b->cap == 0 || n > b->cap - 1 - b->used) {
        return MZB_REPLY_E_TOO_LONG;
    }
    memcpy(b->out + b->used, s, n);
    b->used += n;
    return MZB_REPLY_OK;
}

struct expand_values {
    const char *client_id;
    const char *username;
    const char *topic;
    size_t topic_len;
};

static int append_placeholder(struct expand_buf *b, enum placeholder kind,
                              const struct expand_values *v)
{
    switch (kind) {
    case PH_CLIENT_ID:
        if (v->client_id == NULL) {
            return MZB_REPLY_E_INVALID;
        }
        return buf_append(b, v->client_id, strlen(v->client_id));
    case PH_USERNAME:
        if (v->username == NULL) {
            return MZB_REPLY_E_NO_USERNAME;
        }
        return buf_append(b, v->username, strlen(v->username));
    case PH_TOPIC:
        if (v->topic == NULL) {
            return MZB_REPLY_E_INVALID;
        }
        return buf_append(b, v->topic, v->topic_len);
    default:
        return MZB_REPLY_E_PLACEHOLDER;
    }
}

int mzb_reply_template_expand(const char *tmpl, const char *client_id, const char *username,
                              const char *topic, size_t topic_len, char *out, size_t cap,
                              size_t *out_len)
{
    struct expand_values v = {client_id, username, topic, topic_len};
    struct expand_buf b = {out, cap, 0};
    const char *s = tmpl;

    if (tmpl == NULL || out == NULL) {
        return MZB_REPLY_E_INVALID;
    }

    while (*s != '\0') {
        size_t run = strcspn(s, "{}");
        const char *close;
        int rc;

        rc = buf_append(&b, s, run);
        if (rc != MZB_REPLY_OK) {
            return rc;
        }
        s += run;
        if (*s == '\0') {
            break;
        }

        close = *s == '{' ? strchr(s + 1, '}') : NULL;
        if (close == NULL) {
            return MZB_REPLY_E_INVALID;
        }
        rc = append_placeholder(&b, placeholder_kind(s + 1, (size_t)(close - s - 1)), &v);
        if (rc != MZB_REPLY_OK) {
            return rc;
        }
        s = close + 1;
    }

    out[b.used] = '\0';
    if (out_len != NULL) {
        *out_len = b.used;
    }
    return MZB_REPLY_OK;
}

/* Checks the brace at tmpl[i] and returns the offset just past its placeholder. */
static int template_brace_check(const char *tmpl, size_t i, size_t *next, char *why, size_t why_cap)
{
    const char *close;
    size_t n;

    if (tmpl[i] == '}') {
        return set_why(MZB_REPLY_E_INVALID, why, why_cap,
                       "the reply topic template has a '}' at byte %zu with no '{' before it.", i);
    }
    close = strchr(tmpl + i + 1, '}');
    if (close == NULL) {
        return set_why(MZB_REPLY_E_INVALID, why, why_cap,
                       "the reply topic template has a '{' at byte %zu that is never closed.", i);
    }

    n = (size_t)(close - tmpl) - i - 1;
    if (placeholder_kind(tmpl + i + 1, n) == PH_UNKNOWN) {
        return set_why(MZB_REPLY_E_PLACEHOLDER, why, why_cap,
                       "the reply topic template names an unknown placeholder '{%.*s}' at byte "
                       "%zu; use {client_id}, {username} or {topic}.",
                       quote_len(n), tmpl + i + 1, i);
    }
    *next = (size_t)(close - tmpl) + 1;
    return MZB_REPLY_OK;
}

int mzb_reply_template_check(const char *tmpl, char *why, size_t why_cap)
{
    size_t len = tmpl == NULL ? 0 : strlen(tmpl);
    size_t i = 0;
    int rc = text_check("reply topic template", tmpl, len, why, why_cap);

    while (rc == MZB_REPLY_OK && i < len) {
        i += strcspn(tmpl + i, "{}+#");
        if (i == len) {
            break;
        }
        if (tmpl[i] == '+' || tmpl[i] == '#') {
            return set_why(MZB_REPLY_E_INVALID, why, why_cap,
                           "the reply topic template holds the wildcard '%c' at byte %zu, and a "
                           "reply topic may not.",
                           tmpl[i], i);
        }
        rc = template_brace_check(tmpl, i, &i, why, why_cap);
    }
    return rc;
}
