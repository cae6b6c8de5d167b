/* Topic names, filters and the route tree (MQTT 5.0 section 4.7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#include <cmocka.h>

#include "mzb_topic.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Records which routes a lookup reported, and how often. */
struct seen {
    uint32_t count[512];
    size_t calls;
    uint32_t last;
};

static void on_route(uint32_t route_index, void *arg)
{
    struct seen *s = arg;

    assert_true(route_index < 512);
    s->count[route_index]++;
    s->calls++;
    s->last = route_index;
}

static size_t lookup(struct mzb_route_tree *tree, const char *topic, struct seen *s)
{
    size_t n;

    memset(s, 0, sizeof(*s));
    n = mzb_route_tree_match(tree, topic, strlen(topic), on_route, s);
    assert_int_equal(n, s->calls);
    return n;
}

static int filter_str(const char *f)
{
    return mzb_filter_check(f, strlen(f));
}

static int topic_str(const char *t)
{
    return mzb_topic_check(t, strlen(t));
}

static void test_utf8_accepts_well_formed(void **state)
{
    static const char *const ok[] = {
        "plain ascii",      "caf\xC3\xA9", /* U+00E9 */
        "\xE2\x82\xAC",                    /* U+20AC */
        "\xED\x9F\xBF",                    /* U+D7FF, just below the surrogates */
        "\xEE\x80\x80",                    /* U+E000, just above them */
        "\xEF\xBF\xBF",                    /* U+FFFF */
        "\xF0\x9F\x98\x80",                /* U+1F600 */
        "\xF4\x8F\xBF\xBF",                /* U+10FFFF, the last code point */
        "\x01\x1F\x7F",                    /* controls: SHOULD NOT, accepted as mosquitto does */
        "\xC2\x80\xC2\x9F",                /* U+0080 and U+009F */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(mzb_utf8_check(ok[i], strlen(ok[i])), MZB_TOPIC_OK);
    }
}

static void test_utf8_refuses_malformed(void **state)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"a\0b", 3},             /* U+0000 */
        {"\xC0\x80", 2},         /* overlong U+0000 */
        {"\xC1\xBF", 2},         /* overlong U+007F */
        {"\xE0\x80\x80", 3},     /* overlong, three bytes */
        {"\xE0\x9F\xBF", 3},     /* overlong U+07FF */
        {"\xF0\x8F\xBF\xBF", 4}, /* overlong U+FFFF */
        {"\xED\xA0\x80", 3},     /* U+D800 */
        {"\xED\xBF\xBF", 3},     /* U+DFFF */
        {"\xF4\x90\x80\x80", 4}, /* U+110000 */
        {"\xF5\x80\x80\x80", 4}, /* lead byte past U+10FFFF */
        {"\xFF", 1},
        {"\x80", 1},           /* stray continuation byte */
        {"\xC3", 1},           /* truncated */
        {"\xE2\x82", 2},       /* truncated */
        {"\xF0\x9F\x98", 3},   /* truncated */
        {"\xE2\x28\xA1", 3},   /* bad continuation */
        {"ok\xC3\xA9\xC3", 5}, /* truncated at the end after good text */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mzb_utf8_check(bad[i].s, bad[i].len), MZB_TOPIC_E_UTF8);
    }
}

static void test_utf8_uses_length_not_nul(void **state)
{
    (void)state;
    /* The bad byte lies past len, so it must not be read as part of the text. */
    assert_int_equal(mzb_utf8_check("ab\xFF", 2), MZB_TOPIC_OK);
    assert_int_equal(mzb_utf8_check("\xC3\xA9", 1), MZB_TOPIC_E_UTF8);
}

static void test_filter_check_valid(void **state)
{
    static const char *const ok[] = {
        "#",  "+",    "sport/#", "+/+",      "+/#",    "sport/tennis/+", "/",
        "//", "a//b", "sport/",  "/finance", "$SYS/#", "foo/+/#",        "a/+/b/+/#",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(filter_str(ok[i]), MZB_TOPIC_OK);
    }
}

/* C03: each invalid filter is refused with the code naming its fault. */
static void test_c03_invalid_filters(void **state)
{
    char *big = malloc(MZB_TOPIC_MAX_LEN + 2);

    (void)state;
    assert_non_null(big);
    assert_int_equal(filter_str("sport/tennis#"), MZB_TOPIC_E_HASH_POSITION);
    assert_int_equal(filter_str("sport/#/x"), MZB_TOPIC_E_HASH_POSITION);
    assert_int_equal(filter_str("#/"), MZB_TOPIC_E_HASH_POSITION);
    assert_int_equal(filter_str("##"), MZB_TOPIC_E_HASH_POSITION);
    assert_int_equal(filter_str("+x/y"), MZB_TOPIC_E_PLUS_POSITION);
    assert_int_equal(filter_str("a/x+"), MZB_TOPIC_E_PLUS_POSITION);
    assert_int_equal(filter_str("++"), MZB_TOPIC_E_PLUS_POSITION);
    assert_int_equal(filter_str(""), MZB_TOPIC_E_EMPTY);
    assert_int_equal(mzb_filter_check(NULL, 0), MZB_TOPIC_E_EMPTY);
    assert_int_equal(mzb_filter_check("a/\0/b", 5), MZB_TOPIC_E_UTF8);
    assert_int_equal(mzb_filter_check("a/\xC0\x80", 4), MZB_TOPIC_E_UTF8);

    memset(big, 'a', MZB_TOPIC_MAX_LEN + 1);
    big[MZB_TOPIC_MAX_LEN + 1] = '\0';
    assert_int_equal(filter_str(big), MZB_TOPIC_E_TOO_LONG);
    big[MZB_TOPIC_MAX_LEN] = '\0';
    assert_int_equal(filter_str(big), MZB_TOPIC_OK);
    free(big);
}

static void test_topic_check(void **state)
{
    char *big = malloc(MZB_TOPIC_MAX_LEN + 2);

    (void)state;
    assert_non_null(big);
    assert_int_equal(topic_str("sport/tennis"), MZB_TOPIC_OK);
    assert_int_equal(topic_str("/"), MZB_TOPIC_OK);
    assert_int_equal(topic_str("$SYS/broker"), MZB_TOPIC_OK);
    assert_int_equal(topic_str(""), MZB_TOPIC_E_EMPTY);
    assert_int_equal(topic_str("a/+"), MZB_TOPIC_E_WILDCARD);
    assert_int_equal(topic_str("a/#"), MZB_TOPIC_E_WILDCARD);
    assert_int_equal(topic_str("a+b"), MZB_TOPIC_E_WILDCARD);
    assert_int_equal(mzb_topic_check("a\0", 2), MZB_TOPIC_E_UTF8);
    assert_int_equal(mzb_topic_check("\xED\xA0\x80", 3), MZB_TOPIC_E_UTF8);

    memset(big, '/', MZB_TOPIC_MAX_LEN + 1);
    assert_int_equal(mzb_topic_check(big, MZB_TOPIC_MAX_LEN), MZB_TOPIC_OK);
    assert_int_equal(mzb_topic_check(big, MZB_TOPIC_MAX_LEN + 1), MZB_TOPIC_E_TOO_LONG);
    free(big);
}

static void test_reply_topic_check(void **state)
{
    (void)state;
    assert_int_equal(mzb_reply_topic_check("reply/c1", 8), MZB_TOPIC_OK);
    assert_int_equal(mzb_reply_topic_check("a$b", 3), MZB_TOPIC_OK);
    assert_int_equal(mzb_reply_topic_check("$SYS/x", 6), MZB_TOPIC_E_DOLLAR);
    assert_int_equal(mzb_reply_topic_check("reply/+/x", 9), MZB_TOPIC_E_WILDCARD);
    assert_int_equal(mzb_reply_topic_check("", 0), MZB_TOPIC_E_EMPTY);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = MZB_TOPIC_OK; e <= MZB_TOPIC_E_NOMEM; e++) {
        const char *s = mzb_topic_strerror(e);

        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (int other = MZB_TOPIC_OK; other < e; other++) {
            assert_string_not_equal(s, mzb_topic_strerror(other));
        }
    }
    assert_string_equal(mzb_topic_strerror(-1), "unknown topic error");
    assert_string_equal(mzb_topic_strerror(99), "unknown topic error");
}

struct match_case {
    const char *filter;
    const char *topic;
    int match;
};

/* Checks a case with both mzb_topic_matches and a one-route tree. */
static void check_case(const struct match_case *c)
{
    struct mzb_route_tree *tree = mzb_route_tree_new();
    struct seen s;

    assert_non_null(tree);
    assert_int_equal(filter_str(c->filter), MZB_TOPIC_OK);
    assert_int_equal(topic_str(c->topic), MZB_TOPIC_OK);
    if (mzb_topic_matches(c->filter, c->topic) != c->match) {
        fail_msg("mzb_topic_matches(\"%s\", \"%s\") != %d", c->filter, c->topic, c->match);
    }

    assert_int_equal(mzb_route_tree_add(tree, c->filter, 7), MZB_TOPIC_OK);
    if (lookup(tree, c->topic, &s) != (size_t)c->match || s.count[7] != (uint32_t)c->match) {
        fail_msg("tree: filter \"%s\" topic \"%s\" expected %d", c->filter, c->topic, c->match);
    }
    mzb_route_tree_destroy(&tree);
    assert_null(tree);
}

static void check_cases(const struct match_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        check_case(&cases[i]);
    }
}

/* C01: each topic matches its route, in one tree holding all three. */
static void test_c01_hash_matches_parent(void **state)
{
    static const struct match_case cases[] = {
        {"sport/#", "sport", 1},
        {"+/#", "sport/", 1},
        {"foo/+/#", "foo/bar", 1},
        {"sport/#", "sport/", 1},
        {"+/#", "foo/bar", 1},
        {"foo/+/#", "foo", 0},
        {"sport/#", "sports", 0},
        {"+/#", "sport", 1},
        {"foo/+/#", "foo/bar/baz", 1},
        {"#", "sport", 1},
        {"sport/tennis/#", "sport/tennis", 1},
    };
    struct mzb_route_tree *tree = mzb_route_tree_new();
    struct seen s;

    (void)state;
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));

    assert_non_null(tree);
    assert_int_equal(mzb_route_tree_add(tree, "sport/#", 0), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "+/#", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "foo/+/#", 2), MZB_TOPIC_OK);

    assert_int_equal(lookup(tree, "sport", &s), 2);
    assert_int_equal(s.count[0], 1);
    assert_int_equal(s.count[1], 1);
    assert_int_equal(lookup(tree, "sport/", &s), 2);
    assert_int_equal(s.count[0], 1);
    assert_int_equal(s.count[1], 1);
    assert_int_equal(lookup(tree, "foo/bar", &s), 2);
    assert_int_equal(s.count[1], 1);
    assert_int_equal(s.count[2], 1);
    assert_int_equal(lookup(tree, "foo", &s), 1);
    assert_int_equal(s.count[1], 1);
    mzb_route_tree_destroy(&tree);
}

/* C02: empty levels are real levels and topics are never normalised. */
static void test_c02_empty_levels(void **state)
{
    static const struct match_case cases[] = {
        {"+", "/finance", 0},
        {"/+", "/finance", 1},
        {"+/+", "/finance", 1},
        {"sport/+", "sport/", 1},
        {"sport/+", "sport", 0},
        {"a/+/b", "a//b", 1},
        {"a/b", "a//b", 0},
        {"a/b/#", "a/b/", 1},
        {"a//b", "a//b", 1},
        {"a/b/", "a/b", 0},
        {"a/b", "a/b/", 0},
        {"/", "/", 1},
        {"+/+", "/", 1},
        {"+", "/", 0},
        {"/finance", "finance", 0},
        {"#", "/", 1},
        {"/#", "/", 1},
        {"//#", "/", 1},
    };

    (void)state;
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_plain_matching(void **state)
{
    static const struct match_case cases[] = {
        {"sport/tennis/player1", "sport/tennis/player1", 1},
        {"sport/tennis/player1", "sport/tennis/player2", 0},
        {"sport/tennis/player1", "sport/tennis/player1/ranking", 0},
        {"sport/tennis/+", "sport/tennis/player1", 1},
        {"sport/tennis/+", "sport/tennis/player1/ranking", 0},
        {"sport/+/player1", "sport/tennis/player1", 1},
        {"+/+/+", "a/b/c", 1},
        {"+/+/+", "a/b", 0},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1},
        {"Sport", "sport", 0},
        {"caf\xC3\xA9/+", "caf\xC3\xA9/x", 1},
    };

    (void)state;
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* C03: topics starting with '$' are hidden from filters starting with a wildcard. */
static void test_c03_dollar_topics(void **state)
{
    static const struct match_case cases[] = {
        {"#", "$SYS/x", 0}, {"+/x", "$SYS/x", 0},    {"$SYS/#", "$SYS/x", 1}, {"+/#", "$SYS/x", 0},
        {"+", "$SYS", 0},   {"$SYS/+", "$SYS/x", 1}, {"$SYS/#", "$SYS", 1},   {"a/#", "a/$x", 1},
        {"a/+", "a/$x", 1}, {"#", "x$", 1},          {"$SYS", "$SYS", 1},
    };
    struct mzb_route_tree *tree = mzb_route_tree_new();
    struct seen s;

    (void)state;
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));

    assert_non_null(tree);
    assert_int_equal(mzb_route_tree_add(tree, "#", 0), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "+/x", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "$SYS/#", 2), MZB_TOPIC_OK);
    assert_int_equal(lookup(tree, "$SYS/x", &s), 1);
    assert_int_equal(s.count[2], 1);
    assert_int_equal(lookup(tree, "SYS/x", &s), 2);
    assert_int_equal(s.count[0], 1);
    assert_int_equal(s.count[1], 1);
    mzb_route_tree_destroy(&tree);
}

static void test_tree_reports_each_route_once(void **state)
{
    struct mzb_route_tree *tree = mzb_route_tree_new();
    struct seen s;

    (void)state;
    assert_non_null(tree);
    /* Route 1 has four filters that all match "a/b"; route 2 one filter, added twice. */
    assert_int_equal(mzb_route_tree_add(tree, "a/b", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "a/#", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "+/b", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "#", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "a/+", 2), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "a/+", 2), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "a/+", 3), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "c", 1), MZB_TOPIC_OK);

    assert_int_equal(lookup(tree, "a/b", &s), 3);
    assert_int_equal(s.count[1], 1);
    assert_int_equal(s.count[2], 1);
    assert_int_equal(s.count[3], 1);

    assert_int_equal(lookup(tree, "c", &s), 1);
    assert_int_equal(s.count[1], 1);
    assert_int_equal(lookup(tree, "a/c", &s), 3);
    assert_int_equal(lookup(tree, "$a/b", &s), 0);
    mzb_route_tree_destroy(&tree);
}

static void test_tree_uses_topic_length(void **state)
{
    struct mzb_route_tree *tree = mzb_route_tree_new();
    struct seen s;

    (void)state;
    assert_non_null(tree);
    assert_int_equal(mzb_route_tree_add(tree, "a/b", 0), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "a/bc", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "a/b/+", 2), MZB_TOPIC_OK);

    memset(&s, 0, sizeof(s));
    assert_int_equal(mzb_route_tree_match(tree, "a/bc/d", 3, on_route, &s), 1);
    assert_int_equal(s.count[0], 1);
    memset(&s, 0, sizeof(s));
    assert_int_equal(mzb_route_tree_match(tree, "a/bc/d", 4, on_route, &s), 1);
    assert_int_equal(s.count[1], 1);
    assert_int_equal(mzb_route_tree_match(tree, "a/b", 0, on_route, &s), 0);
    mzb_route_tree_destroy(&tree);
}

static void test_tree_lifecycle(void **state)
{
    struct mzb_route_tree *tree = mzb_route_tree_new();
    struct mzb_route_tree *none = NULL;
    struct seen s;

    (void)state;
    assert_non_null(tree);
    assert_int_equal(mzb_route_tree_node_count(tree), 1);
    assert_int_equal(lookup(tree, "a", &s), 0);

    /* A filter that breaks the rules is refused with its reason, not half added. */
    assert_int_equal(mzb_route_tree_add(tree, "a/#/b", 0), MZB_TOPIC_E_HASH_POSITION);
    assert_int_equal(mzb_route_tree_add(tree, "", 0), MZB_TOPIC_E_EMPTY);
    assert_int_equal(mzb_route_tree_node_count(tree), 1);

    assert_int_equal(mzb_route_tree_add(tree, "a/b/c", 0), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_node_count(tree), 4);
    assert_int_equal(mzb_route_tree_add(tree, "a/+/#", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_node_count(tree), 6);
    assert_int_equal(mzb_route_tree_add(tree, "a/b/c", 2), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_node_count(tree), 6);

    mzb_route_tree_destroy(&tree);
    assert_null(tree);
    mzb_route_tree_destroy(&tree);
    mzb_route_tree_destroy(&none);
    mzb_route_tree_destroy(NULL);
    assert_int_equal(mzb_route_tree_node_count(NULL), 0);
}

/* A node with thousands of literal children must still find each one. */
static void test_tree_wide_node(void **state)
{
    struct mzb_route_tree *tree = mzb_route_tree_new();
    char name[32];
    struct seen s;

    (void)state;
    assert_non_null(tree);
    for (uint32_t i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "k%u", (unsigned)i);
        assert_int_equal(mzb_route_tree_add(tree, name, i % 500), MZB_TOPIC_OK);
    }
    assert_int_equal(mzb_route_tree_node_count(tree), 5001);
    for (uint32_t i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "k%u", (unsigned)i);
        assert_int_equal(lookup(tree, name, &s), 1);
        assert_int_equal(s.last, i % 500);
    }
    assert_int_equal(lookup(tree, "k5000", &s), 0);
    assert_int_equal(lookup(tree, "k", &s), 0);
    mzb_route_tree_destroy(&tree);
}

/*
 * The longest topic, all '/', has 65,536 empty levels. The lookup and the
 * teardown of a filter just as deep must not run out of stack.
 */
static void test_tree_deepest_topic(void **state)
{
    char *deep = malloc(MZB_TOPIC_MAX_LEN + 1);
    struct mzb_route_tree *tree = mzb_route_tree_new();
    struct seen s;

    (void)state;
    assert_non_null(deep);
    assert_non_null(tree);
    memset(deep, '/', MZB_TOPIC_MAX_LEN);
    deep[MZB_TOPIC_MAX_LEN] = '\0';
    assert_int_equal(mzb_topic_check(deep, MZB_TOPIC_MAX_LEN), MZB_TOPIC_OK);
    assert_int_equal(filter_str(deep), MZB_TOPIC_OK);

    assert_int_equal(mzb_route_tree_add(tree, "#", 0), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "/#", 1), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "+/+/#", 2), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "a/#", 3), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, "+/+", 4), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, deep, 5), MZB_TOPIC_OK);
    assert_int_equal(mzb_route_tree_add(tree, deep, 0), MZB_TOPIC_OK);
    /* 65,535 levels, the last one '+'. */
    deep[MZB_TOPIC_MAX_LEN - 1] = '+';
    assert_int_equal(mzb_route_tree_add(tree, deep, 6), MZB_TOPIC_OK);
    deep[MZB_TOPIC_MAX_LEN - 1] = '/';

    assert_int_equal(lookup(tree, deep, &s), 4);
    assert_int_equal(s.count[0], 1);
    assert_int_equal(s.count[1], 1);
    assert_int_equal(s.count[2], 1);
    assert_int_equal(s.count[5], 1);
    assert_int_equal(mzb_topic_matches(deep, deep), 1);

    /* One level fewer: the all-'/' filter no longer matches, the one ending in '+' does. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(mzb_route_tree_match(tree, deep, MZB_TOPIC_MAX_LEN - 1, on_route, &s), 4);
    assert_int_equal(s.count[0], 1);
    assert_int_equal(s.count[5], 0);
    assert_int_equal(s.count[6], 1);
    mzb_route_tree_destroy(&tree);
    free(deep);
}

/* Random filters and topics over a tiny alphabet, so that matches are common. */
static const char *const rand_levels[] = {"", "a", "b", "$x"};

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void random_levels(char *out, size_t cap, int wildcards)
{
    size_t levels = 1 + rng() % 4;
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < levels; i++) {
        uint32_t pick = rng() % (wildcards ? 6 : 4);
        const char *level = pick < 4 ? rand_levels[pick] : pick == 4 ? "+" : "#";

        if (level[0] == '#' && i + 1 < levels) {
            level = "+";
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i == 0 ? "" : "/", level);
    }
}

/* One empty level would be the empty string, which is no topic: draw again. */
static void random_name(char *out, size_t cap, int wildcards)
{
    do {
        random_levels(out, cap, wildcards);
    } while (out[0] == '\0');
}

/*
 * A third matcher, written level by level from the rules, to test
 * mzb_topic_matches itself before it serves as the oracle.
 */
static size_t split(const char *s, const char *levels[], size_t lens[], size_t max)
{
    size_t n = 0;

    for (;;) {
        size_t len = strcspn(s, "/");

        assert_true(n < max);
        levels[n] = s;
        lens[n++] = len;
        if (s[len] == '\0') {
            return n;
        }
        s += len + 1;
    }
}

static int reference_match(const char *filter, const char *topic)
{
    const char *fl[16], *tl[16];
    size_t fn[16], tn[16];
    size_t nf = split(filter, fl, fn, 16);
    size_t nt = split(topic, tl, tn, 16);

    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) {
        return 0;
    }
    for (size_t i = 0; i < nf; i++) {
        if (fn[i] == 1 && fl[i][0] == '#') {
            return nt >= i;
        }
        if (i >= nt) {
            return 0;
        }
        if (fn[i] == 1 && fl[i][0] == '+') {
            continue;
        }
        if (fn[i] != tn[i] || memcmp(fl[i], tl[i], fn[i]) != 0) {
            return 0;
        }
    }
    return nf == nt;
}

#define RAND_FILTERS 400
#define RAND_TOPICS 3000

struct random_set {
    char filters[RAND_FILTERS][24];
    char topics[RAND_TOPICS][24];
};

static struct random_set *random_set_new(void)
{
    struct random_set *r = malloc(sizeof(*r));

    assert_non_null(r);
    for (size_t i = 0; i < RAND_FILTERS; i++) {
        random_name(r->filters[i], sizeof(r->filters[i]), 1);
        assert_int_equal(filter_str(r->filters[i]), MZB_TOPIC_OK);
    }
    for (size_t i = 0; i < RAND_TOPICS; i++) {
        random_name(r->topics[i], sizeof(r->topics[i]), 0);
        assert_int_equal(topic_str(r->topics[i]), MZB_TOPIC_OK);
    }
    return r;
}

static void test_random_matches_reference(void **state)
{
    struct random_set *r = random_set_new();
    size_t matched = 0;

    (void)state;
    for (size_t t = 0; t < RAND_TOPICS; t++) {
        for (size_t f = 0; f < RAND_FILTERS; f++) {
            int got = mzb_topic_matches(r->filters[f], r->topics[t]);

            if (got != reference_match(r->filters[f], r->topics[t])) {
                fail_msg("filter \"%s\" topic \"%s\"", r->filters[f], r->topics[t]);
            }
            matched += (size_t)got;
        }
    }
    /* The alphabet is small so that both outcomes are well exercised. */
    assert_true(matched > RAND_TOPICS);
    assert_true(matched < (size_t)RAND_TOPICS * RAND_FILTERS / 2);
    free(r);
}

/* Route i holds filter i alone, so each route's result is one (filter, topic) pair. */
static void test_random_tree_equals_matches(void **state)
{
    struct random_set *r = random_set_new();
    struct mzb_route_tree *tree = mzb_route_tree_new();
    struct seen s;

    (void)state;
    assert_non_null(tree);
    for (uint32_t f = 0; f < RAND_FILTERS; f++) {
        assert_int_equal(mzb_route_tree_add(tree, r->filters[f], f), MZB_TOPIC_OK);
    }
    for (size_t t = 0; t < RAND_TOPICS; t++) {
        size_t expected = 0;

        lookup(tree, r->topics[t], &s);
        for (size_t f = 0; f < RAND_FILTERS; f++) {
            uint32_t want = (uint32_t)mzb_topic_matches(r->filters[f], r->topics[t]);

            if (s.count[f] != want) {
                fail_msg("route %zu filter \"%s\" topic \"%s\": tree %u, expected %u", f,
                         r->filters[f], r->topics[t], s.count[f], want);
            }
            expected += want;
        }
        assert_int_equal(s.calls, expected);
    }
    mzb_route_tree_destroy(&tree);
    free(r);
}

/* Routes share filters and hold several each: every matching route exactly once. */
static void test_random_tree_multi_filter_routes(void **state)
{
    struct random_set *r = random_set_new();
    struct mzb_route_tree *tree = mzb_route_tree_new();
    uint32_t route_of[RAND_FILTERS];
    struct seen s;

    (void)state;
    assert_non_null(tree);
    for (uint32_t f = 0; f < RAND_FILTERS; f++) {
        route_of[f] = rng() % 60;
        assert_int_equal(mzb_route_tree_add(tree, r->filters[f], route_of[f]), MZB_TOPIC_OK);
    }
    for (size_t t = 0; t < RAND_TOPICS; t++) {
        uint32_t want[60] = {0};

        lookup(tree, r->topics[t], &s);
        for (size_t f = 0; f < RAND_FILTERS; f++) {
            if (mzb_topic_matches(r->filters[f], r->topics[t])) {
                want[route_of[f]] = 1;
            }
        }
        for (uint32_t route = 0; route < 60; route++) {
            if (s.count[route] != want[route]) {
                fail_msg("route %u topic \"%s\": reported %u times, expected %u", route,
                         r->topics[t], s.count[route], want[route]);
            }
        }
    }
    mzb_route_tree_destroy(&tree);
    free(r);
}

static void count_route(uint32_t route_index, void *arg)
{
    uint32_t *last = arg;

    *last = route_index;
}

/* 100,000 routes like site/N/dev/+/temp: right answers and under 1 KiB each. */
static void test_tree_100k_routes(void **state)
{
    const uint32_t routes = 100000;
    struct mzb_route_tree *tree;
    char name[64];
    uint32_t last = UINT32_MAX;
    size_t before = mallinfo2().uordblks;
    size_t used;

    (void)state;
    tree = mzb_route_tree_new();
    assert_non_null(tree);
    for (uint32_t i = 0; i < routes; i++) {
        snprintf(name, sizeof(name), "site/%u/dev/+/temp", (unsigned)i);
        assert_int_equal(mzb_route_tree_add(tree, name, i), MZB_TOPIC_OK);
    }
    used = mallinfo2().uordblks - before;
    assert_int_equal(mzb_route_tree_node_count(tree), 2 + 4 * (size_t)routes);
#ifndef UNDER_ASAN
    print_message("route tree: %zu bytes for %u routes, %zu per route\n", used, routes,
                  used / routes);
    assert_true(used / routes < 1024);
#else
    (void)used;
#endif

    assert_int_equal(mzb_route_tree_match(tree, "site/77/dev/d9/temp", 19, count_route, &last), 1);
    assert_int_equal(last, 77);
    assert_int_equal(mzb_route_tree_match(tree, "site/99999/dev//temp", 20, count_route, &last), 1);
    assert_int_equal(last, 99999);
    assert_int_equal(mzb_route_tree_match(tree, "site/77/dev/d9", 14, count_route, &last), 0);
    assert_int_equal(mzb_route_tree_match(tree, "site/100000/dev/d/temp", 22, count_route, &last),
                     0);
    mzb_route_tree_destroy(&tree);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_accepts_well_formed),
        cmocka_unit_test(test_utf8_refuses_malformed),
        cmocka_unit_test(test_utf8_uses_length_not_nul),
        cmocka_unit_test(test_filter_check_valid),
        cmocka_unit_test(test_c03_invalid_filters),
        cmocka_unit_test(test_topic_check),
        cmocka_unit_test(test_reply_topic_check),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_c01_hash_matches_parent),
        cmocka_unit_test(test_c02_empty_levels),
        cmocka_unit_test(test_plain_matching),
        cmocka_unit_test(test_c03_dollar_topics),
        cmocka_unit_test(test_tree_reports_each_route_once),
        cmocka_unit_test(test_tree_uses_topic_length),
        cmocka_unit_test(test_tree_lifecycle),
        cmocka_unit_test(test_tree_wide_node),
        cmocka_unit_test(test_tree_deepest_topic),
        cmocka_unit_test(test_random_matches_reference),
        cmocka_unit_test(test_random_tree_equals_matches),
        cmocka_unit_test(test_random_tree_multi_filter_routes),
        cmocka_unit_test(test_tree_100k_routes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
