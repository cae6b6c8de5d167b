/* Reply patterns and reply topic templates (docs/protocol.md, replies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mzb_reply.h"
#include "mzb_topic.h"

#define DEFAULT_PATTERN "reply/{client_id}/#"

static int match(const char *pattern, const char *topic, const char *client_id,
                 const char *username)
{
    return mzb_reply_pattern_match(pattern, topic, strlen(topic), client_id, username);
}

/* What the plugin does: the topic must match the pattern and be a valid reply topic. */
static int accepted(const char *pattern, const char *topic, const char *client_id)
{
    return match(pattern, topic, client_id, NULL) &&
           mzb_reply_topic_check(topic, strlen(topic)) == MZB_TOPIC_OK;
}

static void test_pattern_check_valid(void **state)
{
    static const char *const ok[] = {
        DEFAULT_PATTERN,
        "reply/{username}/+",
        "reply/#",
        "#",
        "+/{client_id}",
        "{client_id}",
        "a/{client_id}/{username}/b",
        "reply//{client_id}/",
        "caf\xC3\xA9/{client_id}",
    };
    char why[128];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        strcpy(why, "untouched");
        assert_int_equal(mzb_reply_pattern_check(ok[i], why, sizeof(why)), MZB_REPLY_OK);
        assert_string_equal(why, "untouched");
    }
}

static void expect_pattern_refused(const char *pattern, const char *reason_part)
{
    char why[256] = "";
    int rc = mzb_reply_pattern_check(pattern, why, sizeof(why));

    assert_int_equal(rc, MZB_REPLY_E_INVALID);
    if (strstr(why, reason_part) == NULL) {
        fail_msg("pattern \"%s\": reason \"%s\" lacks \"%s\"", pattern, why, reason_part);
    }
    assert_true(why[strlen(why) - 1] == '.');
}

static void test_pattern_check_invalid(void **state)
{
    (void)state;
    expect_pattern_refused("", "empty");
    expect_pattern_refused("reply/{client_id}x/#", "brace");
    expect_pattern_refused("reply/x{username}", "brace");
    expect_pattern_refused("reply/{topic}", "brace");
    expect_pattern_refused("reply/{clientid}", "brace");
    expect_pattern_refused("reply/{client_id", "brace");
    expect_pattern_refused("reply/#/x", "'#'");
    expect_pattern_refused("reply/x#", "'#'");
    expect_pattern_refused("reply/a+", "'+'");
    expect_pattern_refused("$SYS/{client_id}", "'$'");
    expect_pattern_refused("reply/\xC0\x80", "UTF-8");
    expect_pattern_refused("reply/\xED\xA0\x80", "UTF-8");

    assert_int_equal(mzb_reply_pattern_check(NULL, NULL, 0), MZB_REPLY_E_INVALID);
    assert_int_equal(mzb_reply_pattern_check("reply/#/x", NULL, 0), MZB_REPLY_E_INVALID);
}

static void test_pattern_check_truncates_reason(void **state)
{
    char why[8];

    (void)state;
    memset(why, 'z', sizeof(why));
    assert_int_equal(mzb_reply_pattern_check("reply/#/x", why, 5), MZB_REPLY_E_INVALID);
    assert_int_equal(strlen(why), 4);
    assert_int_equal(why[5], 'z');
}

static void test_default_pattern(void **state)
{
    (void)state;
    assert_int_equal(match(DEFAULT_PATTERN, "reply/c1", "c1", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/c1/x", "c1", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/c1/x/y/z", "c1", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/c1/", "c1", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/c2/x", "c1", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/c1x/y", "c1", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/c", "c1", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply", "c1", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/", "c1", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "replyx/c1", "c1", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "other/c1/x", "c1", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/c1/x", NULL, NULL), 0);
}

/* A client id is text: '+' and '#' in it are never wildcards. */
static void test_client_id_with_wildcard_text(void **state)
{
    (void)state;
    assert_int_equal(match(DEFAULT_PATTERN, "reply/+/x", "+", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/other/x", "+", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/a", "+", NULL), 0);
    assert_int_equal(accepted(DEFAULT_PATTERN, "reply/+/x", "+"), 0);
    assert_int_equal(accepted(DEFAULT_PATTERN, "reply/other/x", "+"), 0);

    assert_int_equal(match(DEFAULT_PATTERN, "reply/#/x", "#", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/anything", "#", NULL), 0);
    assert_int_equal(accepted(DEFAULT_PATTERN, "reply/#/x", "#"), 0);

    assert_int_equal(accepted(DEFAULT_PATTERN, "reply/c1/x", "c1"), 1);
}

/* A '/' in a value spans levels, and must end on a level boundary. */
static void test_client_id_with_slash(void **state)
{
    (void)state;
    assert_int_equal(match(DEFAULT_PATTERN, "reply/a/b/x", "a/b", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/a/b", "a/b", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/a/x", "a/b", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/a/bc/x", "a/b", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/a", "a/b", NULL), 0);
    assert_int_equal(match("reply/{client_id}", "reply/a/b", "a/b", NULL), 1);
    assert_int_equal(match("reply/{client_id}", "reply/a/b/c", "a/b", NULL), 0);
    assert_int_equal(match("reply/{client_id}/+", "reply/a/b/c", "a/b", NULL), 1);
    assert_int_equal(match("reply/{client_id}/+", "reply/a/b", "a/b", NULL), 0);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/a//x", "a/", NULL), 1);
    assert_int_equal(match(DEFAULT_PATTERN, "reply/a/x", "a/", NULL), 0);
}

static void test_username_placeholder(void **state)
{
    const char *pattern = "reply/{username}/{client_id}/+";

    (void)state;
    assert_int_equal(match(pattern, "reply/u1/c1/x", "c1", "u1"), 1);
    assert_int_equal(match(pattern, "reply/u2/c1/x", "c1", "u1"), 0);
    assert_int_equal(match(pattern, "reply/u1/c2/x", "c1", "u1"), 0);
    assert_int_equal(match(pattern, "reply/u1/c1/x", "c1", NULL), 0);
    assert_int_equal(match(pattern, "reply//c1/x", "c1", NULL), 0);
    assert_int_equal(match(pattern, "reply//c1/x", "c1", ""), 1);
}

static void test_pattern_wildcards_and_dollar(void **state)
{
    (void)state;
    assert_int_equal(match("#", "$SYS/x", "c1", NULL), 0);
    assert_int_equal(match("+/x", "$SYS/x", "c1", NULL), 0);
    assert_int_equal(match("#", "any/thing", "c1", NULL), 1);
    assert_int_equal(match("+/{client_id}", "r/c1", "c1", NULL), 1);
    assert_int_equal(match("+/{client_id}", "r/c1/x", "c1", NULL), 0);
    assert_int_equal(match("reply/+", "reply/", "c1", NULL), 1);
    assert_int_equal(match("reply/+", "reply", "c1", NULL), 0);
    assert_int_equal(match("reply//x", "reply//x", "c1", NULL), 1);
    assert_int_equal(match("reply//x", "reply/x", "c1", NULL), 0);
    assert_int_equal(mzb_reply_pattern_match(DEFAULT_PATTERN, "reply/c1/x", 8, "c1", NULL), 1);
    assert_int_equal(mzb_reply_pattern_match(DEFAULT_PATTERN, "reply/c1x", 7, "c1", NULL), 0);
    assert_int_equal(mzb_reply_pattern_match(DEFAULT_PATTERN, "reply/c1x", 0, "c1", NULL), 0);
}

static int expand(const char *tmpl, const char *client_id, const char *username, const char *topic,
                  char *out, size_t cap, size_t *out_len)
{
    return mzb_reply_template_expand(tmpl, client_id, username, topic, strlen(topic), out, cap,
                                     out_len);
}

static void test_template_expand(void **state)
{
    char out[64];
    size_t len = 0;

    (void)state;
    assert_int_equal(
        expand("reply/{client_id}/{topic}", "c1", NULL, "rpc/echo", out, sizeof(out), &len),
        MZB_REPLY_OK);
    assert_string_equal(out, "reply/c1/rpc/echo");
    assert_int_equal(len, strlen("reply/c1/rpc/echo"));

    assert_int_equal(
        expand("r/{username}-{client_id}{topic}x", "c", "u", "t", out, sizeof(out), &len),
        MZB_REPLY_OK);
    assert_string_equal(out, "r/u-ctx");

    assert_int_equal(expand("static/reply", "c1", NULL, "t", out, sizeof(out), NULL), MZB_REPLY_OK);
    assert_string_equal(out, "static/reply");

    /* Values are copied, never expanded a second time. */
    assert_int_equal(expand("r/{client_id}", "{topic}", NULL, "t", out, sizeof(out), &len),
                     MZB_REPLY_OK);
    assert_string_equal(out, "r/{topic}");

    /* The topic is taken by length, not up to a NUL. */
    assert_int_equal(
        mzb_reply_template_expand("r/{topic}", "c", NULL, "ab/cd", 2, out, sizeof(out), &len),
        MZB_REPLY_OK);
    assert_string_equal(out, "r/ab");
    assert_int_equal(len, 4);
}

static void test_template_expand_errors(void **state)
{
    char out[64];
    size_t len = 99;

    (void)state;
    assert_int_equal(expand("r/{nope}", "c1", "u", "t", out, sizeof(out), &len),
                     MZB_REPLY_E_PLACEHOLDER);
    assert_int_equal(expand("r/{username}", "c1", NULL, "t", out, sizeof(out), &len),
                     MZB_REPLY_E_NO_USERNAME);
    assert_int_equal(expand("r/{client_id", "c1", "u", "t", out, sizeof(out), &len),
                     MZB_REPLY_E_INVALID);
    assert_int_equal(expand("r/}", "c1", "u", "t", out, sizeof(out), &len), MZB_REPLY_E_INVALID);
    assert_int_equal(expand("r/{client_id}", NULL, "u", "t", out, sizeof(out), &len),
                     MZB_REPLY_E_INVALID);
    assert_int_equal(len, 99);

    /* "reply/c1/t" is 10 bytes: it needs 11 with its NUL. */
    assert_int_equal(expand("reply/{client_id}/{topic}", "c1", NULL, "t", out, 10, &len),
                     MZB_REPLY_E_TOO_LONG);
    assert_int_equal(expand("reply/{client_id}/{topic}", "c1", NULL, "t", out, 11, &len),
                     MZB_REPLY_OK);
    assert_string_equal(out, "reply/c1/t");
    assert_int_equal(expand("reply", "c1", NULL, "t", out, 5, &len), MZB_REPLY_E_TOO_LONG);
    assert_int_equal(expand("reply", "c1", NULL, "t", out, 0, &len), MZB_REPLY_E_TOO_LONG);
}

static void test_template_check_valid(void **state)
{
    static const char *const ok[] = {
        "reply/{client_id}/{topic}", "reply/{username}", "{topic}/reply", "static/reply",
        "r/{client_id}{topic}",      "a$b/{topic}",
    };
    char why[128];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        strcpy(why, "untouched");
        assert_int_equal(mzb_reply_template_check(ok[i], why, sizeof(why)), MZB_REPLY_OK);
        assert_string_equal(why, "untouched");
    }
}

static void expect_template_refused(const char *tmpl, int rc, const char *reason_part)
{
    char why[256] = "";

    assert_int_equal(mzb_reply_template_check(tmpl, why, sizeof(why)), rc);
    if (strstr(why, reason_part) == NULL) {
        fail_msg("template \"%s\": reason \"%s\" lacks \"%s\"", tmpl, why, reason_part);
    }
}

static void test_template_check_invalid(void **state)
{
    (void)state;
    expect_template_refused("", MZB_REPLY_E_INVALID, "empty");
    expect_template_refused("reply/+", MZB_REPLY_E_INVALID, "'+' at byte 6");
    expect_template_refused("reply/#", MZB_REPLY_E_INVALID, "'#' at byte 6");
    expect_template_refused("$SYS/{topic}", MZB_REPLY_E_INVALID, "'$'");
    expect_template_refused("reply/{bad}", MZB_REPLY_E_PLACEHOLDER, "'{bad}' at byte 6");
    expect_template_refused("reply/{{topic}}", MZB_REPLY_E_PLACEHOLDER, "'{{topic}'");
    expect_template_refused("reply/{}", MZB_REPLY_E_PLACEHOLDER, "'{}'");
    expect_template_refused("reply/{topic", MZB_REPLY_E_INVALID, "never closed");
    expect_template_refused("reply/}x", MZB_REPLY_E_INVALID, "'}' at byte 6");
    expect_template_refused("reply/{topic}}", MZB_REPLY_E_INVALID, "'}' at byte 13");
    expect_template_refused("reply/\xFF", MZB_REPLY_E_INVALID, "UTF-8");
    assert_int_equal(mzb_reply_template_check(NULL, NULL, 0), MZB_REPLY_E_INVALID);
}

/* A template the checker accepts expands to a topic the publisher may use. */
static void test_template_check_then_expand(void **state)
{
    const char *tmpl = "reply/{client_id}/{topic}";
    char out[128];
    size_t len;

    (void)state;
    assert_int_equal(mzb_reply_template_check(tmpl, NULL, 0), MZB_REPLY_OK);
    assert_int_equal(expand(tmpl, "c1", NULL, "rpc/x", out, sizeof(out), &len), MZB_REPLY_OK);
    assert_int_equal(mzb_reply_topic_check(out, len), MZB_TOPIC_OK);
    assert_int_equal(match(DEFAULT_PATTERN, out, "c1", NULL), 1);

    /* A client id holding '+' expands, and the topic check then refuses it. */
    assert_int_equal(expand(tmpl, "c+", NULL, "rpc/x", out, sizeof(out), &len), MZB_REPLY_OK);
    assert_int_equal(mzb_reply_topic_check(out, len), MZB_TOPIC_E_WILDCARD);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = MZB_REPLY_OK; e <= MZB_REPLY_E_TOO_LONG; e++) {
        assert_true(strlen(mzb_reply_strerror(e)) > 0);
        for (int other = MZB_REPLY_OK; other < e; other++) {
            assert_string_not_equal(mzb_reply_strerror(e), mzb_reply_strerror(other));
        }
    }
    assert_string_equal(mzb_reply_strerror(42), "unknown reply error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_check_valid),
        cmocka_unit_test(test_pattern_check_invalid),
        cmocka_unit_test(test_pattern_check_truncates_reason),
        cmocka_unit_test(test_default_pattern),
        cmocka_unit_test(test_client_id_with_wildcard_text),
        cmocka_unit_test(test_client_id_with_slash),
        cmocka_unit_test(test_username_placeholder),
        cmocka_unit_test(test_pattern_wildcards_and_dollar),
        cmocka_unit_test(test_template_expand),
        cmocka_unit_test(test_template_expand_errors),
        cmocka_unit_test(test_template_check_valid),
        cmocka_unit_test(test_template_check_invalid),
        cmocka_unit_test(test_template_check_then_expand),
        cmocka_unit_test(test_strerror),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
