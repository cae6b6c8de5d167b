/*
 * Tests for mzb_config. Bad configs are data: cases/NAME.json must fail with
 * exactly the one line in cases/NAME.expect. Cases too large or too odd for a
 * file in the tree (a 65,536-byte filter, 2,100 levels of nesting, NUL bytes,
 * 100,000 routes) are built here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mzb_config.h"
#include "mzb_meta.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 2048
#define MIN_BAD_CASES 40

static const char minimal_bridge[] = "{\"bridge\": {\"plugin_endpoint\": \"tcp://127.0.0.1:5601\", "
                                     "\"handler_endpoint\": \"ipc:///tmp/mzb-handlers\"},\n";

static const char *source_dir(void)
{
    const char *dir = getenv("MZB_SOURCE_DIR");

    if (dir == NULL || dir[0] == '\0') {
        fail_msg("MZB_SOURCE_DIR is not set; run this test through ctest");
    }
    return dir;
}

static char *read_text(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (fp == NULL) {
        fail_msg("cannot open %s", path);
    }
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    size = ftell(fp);
    assert_true(size >= 0);
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    assert_int_equal(fclose(fp), 0);
    buf[size] = '\0';
    *len = (size_t)size;
    return buf;
}

/* Loads text that must fail, and returns the formatted error line in line. */
static int load_bad(const char *text, size_t len, const char *name, char *line, size_t cap)
{
    struct mzb_config *cfg = (struct mzb_config *)1;
    struct mzb_config_error err;
    int rc = mzb_config_load_string(text, len, name, &cfg, &err);

    assert_int_not_equal(rc, MZB_CONFIG_OK);
    assert_null(cfg);
    mzb_config_error_format(&err, line, cap);
    return rc;
}

static struct mzb_config *load_good(const char *text)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    char line[LINE_MAX_LEN];
    int rc = mzb_config_load_string(text, strlen(text), "good.json", &cfg, &err);

    if (rc != MZB_CONFIG_OK) {
        fail_msg("expected to load, got: %s", mzb_config_error_format(&err, line, sizeof(line)));
    }
    assert_non_null(cfg);
    return cfg;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void strip_newline(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
}

/* Runs one case both from memory and from its file; returns 1 when it passed. */
static int run_case(const char *dir, const char *base)
{
    char path[1024];
    char expect_path[1024];
    char got[LINE_MAX_LEN];
    char got_file[LINE_MAX_LEN];
    char want_file[LINE_MAX_LEN + 1024];
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    size_t len;
    size_t expect_len;
    char *text;
    char *want;
    int ok;

    if (snprintf(path, sizeof(path), "%s/%s.json", dir, base) >= (int)sizeof(path) ||
        snprintf(expect_path, sizeof(expect_path), "%s/%s.expect", dir, base) >=
            (int)sizeof(expect_path)) {
        fail_msg("the path of case %s is too long", base);
    }
    text = read_text(path, &len);
    want = read_text(expect_path, &expect_len);
    strip_newline(want);
    snprintf(got, sizeof(got), "%s.json", base);
    load_bad(text, len, got, got, sizeof(got));

    /* From a file the error names the path as given. */
    assert_int_not_equal(mzb_config_load_file(path, &cfg, &err), MZB_CONFIG_OK);
    assert_null(cfg);
    mzb_config_error_format(&err, got_file, sizeof(got_file));
    snprintf(want_file, sizeof(want_file), "%s/%s", dir, want);

    ok = strcmp(got, want) == 0 && strcmp(got_file, want_file) == 0;
    if (!ok) {
        print_error("case %s\n  expected: %s\n  got:      %s\n  from file: %s\n", base, want, got,
                    got_file);
    }
    free(text);
    free(want);
    return ok;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The base names of every NAME.json in dir, sorted; checks each has its .expect. */
static size_t list_cases(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    if (d == NULL) {
        fail_msg("cannot open the cases directory %s", dir);
    }
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".json") && !ends_with(e->d_name, ".expect")) {
            continue;
        }
        names = realloc(names, (n + 1) * sizeof(*names));
        assert_non_null(names);
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        *strrchr(names[n], '.') = '\0';
        n++;
    }
    assert_int_equal(closedir(d), 0);
    qsort(names, n, sizeof(*names), compare_names);

    /* Sorted, each case's two files appear as one name twice in a row. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(names[i], names[i + 1]) == 0) {
            names[kept++] = names[i];
            free(names[++i]);
        } else {
            fail_msg("case %s has a .json without an .expect or the other way round", names[i]);
        }
    }
    *out = names;
    return kept;
}

static void test_bad_cases(void **state)
{
    char dir[1024];
    char **names;
    size_t n;
    size_t failed = 0;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/tests/unit/config/cases", source_dir());
    n = list_cases(dir, &names);
    for (size_t i = 0; i < n; i++) {
        failed += !run_case(dir, names[i]);
        free(names[i]);
    }
    free(names);
    assert_true(n >= MIN_BAD_CASES);
    assert_int_equal(failed, 0);
}

static void test_example_config(void **state)
{
    char path[1024];
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    char line[LINE_MAX_LEN];
    const char *services[] = {"store", "echo", "enrich", "pyecho"};

    (void)state;
    snprintf(path, sizeof(path), "%s/config/example.json", source_dir());
    if (mzb_config_load_file(path, &cfg, &err) != MZB_CONFIG_OK) {
        fail_msg("%s", mzb_config_error_format(&err, line, sizeof(line)));
    }
    assert_string_equal(cfg->plugin_endpoint, "tcp://127.0.0.1:5601");
    assert_string_equal(cfg->handler_endpoint, "tcp://127.0.0.1:5602");
    assert_int_equal(cfg->mqtt.port, 1883);
    assert_int_equal(cfg->route_count, 4);
    assert_int_equal(cfg->service_count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(cfg->services[i], services[i]);
        assert_int_equal(cfg->routes[i].service_index, i);
        assert_int_equal(mzb_config_service_index(cfg, services[i]), (int)i);
    }
    assert_string_equal(cfg->routes[0].filter, "demo/events/#");
    assert_int_equal(cfg->routes[0].mode, MZB_MODE_EVENT);
    assert_null(cfg->routes[0].reply_pattern);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(cfg->routes[i].mode, MZB_MODE_REQUEST);
        assert_string_equal(cfg->routes[i].reply_pattern, "demo/reply/{client_id}/#");
        assert_string_equal(cfg->routes[i].reply_topic, "demo/reply/{client_id}/{topic}");
        assert_int_equal(cfg->routes[i].timeout_ms, 2000);
    }
    assert_string_equal(cfg->routes[3].filter, "demo/rpc/py/#");
    mzb_config_destroy(&cfg);
    assert_null(cfg);
}

static void test_defaults(void **state)
{
    char text[1024];
    struct mzb_config *cfg;

    (void)state;
    snprintf(text, sizeof(text),
             "%s\"routes\": [{\"filter\": \"a/#\", \"service\": \"s\", \"mode\": \"event\"},"
             " {\"filter\": \"b/+\", \"service\": \"s\", \"mode\": \"request\"}]}",
             minimal_bridge);
    cfg = load_good(text);
    assert_int_equal(cfg->heartbeat_ms, 1000);
    assert_int_equal(cfg->liveness, 4);
    assert_int_equal(cfg->max_queue, 10000);
    assert_int_equal(cfg->stats_interval_s, 60);
    assert_string_equal(cfg->mqtt.host, "127.0.0.1");
    assert_int_equal(cfg->mqtt.port, 1883);
    assert_string_equal(cfg->mqtt.client_id, "mzb-bridge");
    assert_null(cfg->mqtt.username);
    assert_null(cfg->mqtt.password);
    assert_int_equal(cfg->mqtt.keepalive, 30);
    assert_int_equal(cfg->queue_limit, 10000);
    assert_int_equal(cfg->max_unacked, 100000);
    assert_int_equal(cfg->qos2_dedup_ms, 5000);
    assert_int_equal(cfg->log_interval_s, 10);

    assert_int_equal(cfg->route_count, 2);
    assert_int_equal(cfg->service_count, 1);
    assert_null(cfg->routes[0].reply_pattern);
    assert_null(cfg->routes[0].reply_topic);
    assert_int_equal(cfg->routes[0].timeout_ms, 0);
    assert_int_equal(cfg->routes[0].qos, -1);
    assert_int_equal(cfg->routes[0].refuse_on_overload, 0);
    assert_string_equal(cfg->routes[1].reply_pattern, "reply/{client_id}/#");
    assert_null(cfg->routes[1].reply_topic);
    assert_int_equal(cfg->routes[1].timeout_ms, 5000);
    assert_int_equal(cfg->routes[1].qos, -1);
    assert_int_equal(cfg->routes[1].service_index, 0);
    mzb_config_destroy(&cfg);
}

static const char every_key[] =
    "{\"bridge\": {\"plugin_endpoint\": \"ipc:///run/mzb/plugin\",\n"
    " \"handler_endpoint\": \"tcp://[::1]:7000\", \"heartbeat_ms\": 100, \"liveness\": 100,\n"
    " \"max_queue\": 10000000, \"stats_interval_s\": 0,\n"
    " \"mqtt\": {\"host\": \"broker.local\", \"port\": 65535, \"client_id\": \"b1\",\n"
    "  \"username\": \"u\", \"password\": \"\", \"keepalive\": 5}},\n"
    " \"plugin\": {\"queue_limit\": 1, \"max_unacked\": 0, \"qos2_dedup_ms\": 3600000,\n"
    "  \"log_interval_s\": 3600},\n"
    " \"routes\": [{\"filter\": \"#\", \"service\": \"a.b:c/d-e_f\", \"mode\": \"request\",\n"
    "  \"reply_pattern\": \"r/{username}/+/#\", \"reply_topic\": \"r/{username}/{topic}\",\n"
    "  \"timeout_ms\": 3600000, \"qos\": 2, \"on_overload\": \"refuse\"},\n"
    "  {\"filter\": \"+\", \"service\": \"x\", \"mode\": \"event\", \"on_overload\": "
    "\"deliver\"}]}";

static void test_every_key(void **state)
{
    struct mzb_config *cfg;

    (void)state;
    cfg = load_good(every_key);
    assert_string_equal(cfg->plugin_endpoint, "ipc:///run/mzb/plugin");
    assert_string_equal(cfg->handler_endpoint, "tcp://[::1]:7000");
    assert_int_equal(cfg->heartbeat_ms, 100);
    assert_int_equal(cfg->liveness, 100);
    assert_int_equal(cfg->max_queue, 10000000);
    assert_int_equal(cfg->stats_interval_s, 0);
    assert_string_equal(cfg->mqtt.host, "broker.local");
    assert_int_equal(cfg->mqtt.port, 65535);
    assert_string_equal(cfg->mqtt.client_id, "b1");
    assert_string_equal(cfg->mqtt.username, "u");
    assert_string_equal(cfg->mqtt.password, "");
    assert_int_equal(cfg->mqtt.keepalive, 5);
    assert_int_equal(cfg->queue_limit, 1);
    assert_int_equal(cfg->max_unacked, 0);
    assert_int_equal(cfg->qos2_dedup_ms, 3600000);
    assert_int_equal(cfg->log_interval_s, 3600);
    assert_string_equal(cfg->routes[0].filter, "#");
    assert_string_equal(cfg->routes[0].service, "a.b:c/d-e_f");
    assert_int_equal(cfg->routes[0].mode, MZB_MODE_REQUEST);
    assert_string_equal(cfg->routes[0].reply_pattern, "r/{username}/+/#");
    assert_string_equal(cfg->routes[0].reply_topic, "r/{username}/{topic}");
    assert_int_equal(cfg->routes[0].timeout_ms, 3600000);
    assert_int_equal(cfg->routes[0].qos, 2);
    assert_int_equal(cfg->routes[0].refuse_on_overload, 1);
    assert_int_equal(cfg->routes[1].refuse_on_overload, 0);
    assert_int_equal(cfg->routes[1].service_index, 1);
    mzb_config_destroy(&cfg);
}

/* Keys written with escapes are the same keys; an empty routes array is allowed. */
static void test_escaped_keys_and_no_routes(void **state)
{
    struct mzb_config *cfg;

    (void)state;
    cfg = load_good("{\"\\u0062ridge\": {\"plugin_endpoint\": \"tcp://h:1\",\n"
                    "\"handler_endpoint\": \"tcp://h:2\", \"mq\\u0074t\": {\"port\": 2}},\n"
                    "\"routes\": []}\n\n");
    assert_int_equal(cfg->route_count, 0);
    assert_int_equal(cfg->service_count, 0);
    assert_int_equal(cfg->mqtt.port, 2);
    assert_int_equal(mzb_config_service_index(cfg, "x"), -1);
    mzb_config_destroy(&cfg);
}

/* Appends to a growing buffer; the test aborts when out of memory. */
struct text_buf {
    char *s;
    size_t len;
    size_t cap;
};

static void buf_add(struct text_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
}

static void buf_init(struct text_buf *b)
{
    b->cap = 4096;
    b->len = 0;
    b->s = malloc(b->cap);
    assert_non_null(b->s);
    b->s[0] = '\0';
}

#define MANY_ROUTES 100000
#define MANY_SERVICES 997

static void test_many_routes(void **state)
{
    struct text_buf b;
    struct mzb_config *cfg;
    char name[32];

    (void)state;
    buf_init(&b);
    buf_add(&b, "%s\"routes\": [\n", minimal_bridge);
    for (int i = 0; i < MANY_ROUTES; i++) {
        buf_add(&b, "{\"filter\": \"t/%d/#\", \"service\": \"svc%d\", \"mode\": \"%s\"}%s\n", i,
                i % MANY_SERVICES, i % 2 ? "request" : "event", i + 1 < MANY_ROUTES ? "," : "");
    }
    buf_add(&b, "]}\n");
    cfg = load_good(b.s);
    assert_int_equal(cfg->route_count, MANY_ROUTES);
    assert_int_equal(cfg->service_count, MANY_SERVICES);
    for (int i = 0; i < MANY_SERVICES; i++) {
        snprintf(name, sizeof(name), "svc%d", i);
        assert_string_equal(cfg->services[i], name);
        assert_int_equal(mzb_config_service_index(cfg, name), i);
    }
    for (int i = 0; i < MANY_ROUTES; i++) {
        assert_int_equal(cfg->routes[i].service_index, i % MANY_SERVICES);
        assert_int_equal(cfg->routes[i].mode, i % 2 ? MZB_MODE_REQUEST : MZB_MODE_EVENT);
    }
    mzb_config_destroy(&cfg);
    free(b.s);
}

/* A bad route far down a big file is found, with its line and index. */
static void test_many_routes_one_bad(void **state)
{
    struct text_buf b;
    char line[LINE_MAX_LEN];

    (void)state;
    buf_init(&b);
    buf_add(&b, "%s\"routes\": [\n", minimal_bridge);
    for (int i = 0; i < MANY_ROUTES; i++) {
        buf_add(&b, "{\"filter\": \"%s\", \"service\": \"s\", \"mode\": \"event\"}%s\n",
                i == 76543 ? "x/#/y" : "x/y", i + 1 < MANY_ROUTES ? "," : "");
    }
    buf_add(&b, "]}\n");
    load_bad(b.s, b.len, "many.json", line, sizeof(line));
    assert_string_equal(line, "many.json:76546:12: routes[76543].filter: \"x/#/y\" is not a "
                              "valid topic filter: '#' must stand alone in the last level of "
                              "a filter");
    free(b.s);
}

static char *long_filter_config(size_t filter_len)
{
    struct text_buf b;

    buf_init(&b);
    buf_add(&b, "%s\"routes\": [\n{\"filter\": \"", minimal_bridge);
    for (size_t i = 0; i < filter_len; i++) {
        buf_add(&b, "a");
    }
    buf_add(&b, "\", \"service\": \"s\", \"mode\": \"event\"}]}");
    return b.s;
}

static void test_filter_length(void **state)
{
    char line[LINE_MAX_LEN];
    struct mzb_config *cfg;
    char *text;

    (void)state;
    text = long_filter_config(65535);
    cfg = load_good(text);
    assert_int_equal(strlen(cfg->routes[0].filter), 65535);
    mzb_config_destroy(&cfg);
    free(text);

    text = long_filter_config(65536);
    assert_int_equal(load_bad(text, strlen(text), "long.json", line, sizeof(line)),
                     MZB_CONFIG_E_INVALID);
    assert_string_equal(line, "long.json:3:12: routes[0].filter: "
                              "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" is not a "
                              "valid topic filter: the topic is longer than 65,535 bytes");
    free(text);
}

static void test_deep_nesting(void **state)
{
    char line[LINE_MAX_LEN];
    struct text_buf b;

    (void)state;
    buf_init(&b);
    buf_add(&b, "{\"bridge\": {},\n \"routes\": ");
    for (int i = 0; i < 2100; i++) {
        buf_add(&b, "[");
    }
    for (int i = 0; i < 2100; i++) {
        buf_add(&b, "]");
    }
    buf_add(&b, "}");
    assert_int_equal(load_bad(b.s, b.len, "deep.json", line, sizeof(line)), MZB_CONFIG_E_SYNTAX);
    assert_string_equal(line, "deep.json:2:2059: arrays and objects are nested more than 2048 "
                              "levels deep; the configuration needs 4 levels at most");
    free(b.s);
}

static void test_nul_bytes(void **state)
{
    static const char in_string[] = "{\"bridge\": {\"plugin_endpoint\": \"tcp://a\0:1\"}}";
    static const char after_error[] = "{\"bridge\": x, \"routes\": \0}";
    static const char at_end[] = "{\"bridge\": {}, \"routes\": []}\n\0";
    char line[LINE_MAX_LEN];

    (void)state;
    assert_int_equal(load_bad(in_string, sizeof(in_string) - 1, "nul.json", line, sizeof(line)),
                     MZB_CONFIG_E_SYNTAX);
    assert_string_equal(line, "nul.json:1:40: the file holds a NUL byte (0x00), which JSON "
                              "text may not contain");
    load_bad(at_end, sizeof(at_end) - 1, "nul.json", line, sizeof(line));
    assert_string_equal(line, "nul.json:2:1: the file holds a NUL byte (0x00), which JSON "
                              "text may not contain");

    /* The first problem in the file wins: here the syntax error comes first. */
    load_bad(after_error, sizeof(after_error) - 1, "nul.json", line, sizeof(line));
    assert_string_equal(line, "nul.json:1:12: not valid JSON: invalid token near 'x'");
}

static void test_error_format(void **state)
{
    struct mzb_config_error err;
    char line[64];

    (void)state;
    memset(&err, 0, sizeof(err));
    strcpy(err.file, "f.json");
    strcpy(err.text, "cannot open the file: No such file or directory");
    assert_string_equal(mzb_config_error_format(&err, line, sizeof(line)),
                        "f.json: cannot open the file: No such file or directory");
    err.line = 3;
    err.column = 9;
    strcpy(err.path, "bridge.mqtt.port");
    strcpy(err.text, "bad");
    assert_string_equal(mzb_config_error_format(&err, line, sizeof(line)),
                        "f.json:3:9: bridge.mqtt.port: bad");
    err.column = 0;
    err.path[0] = '\0';
    assert_string_equal(mzb_config_error_format(&err, line, sizeof(line)), "f.json:3: bad");

    /* A short buffer gets a cut but terminated line. */
    err.column = 9;
    assert_string_equal(mzb_config_error_format(&err, line, 8), "f.json:");
    assert_null(mzb_config_error_format(&err, NULL, 0));
}

static void test_io_errors(void **state)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    char line[LINE_MAX_LEN];
    char path[1024];

    (void)state;
    assert_int_equal(mzb_config_load_file("/nonexistent/mzb.json", &cfg, &err), MZB_CONFIG_E_IO);
    assert_null(cfg);
    assert_int_equal(err.line, 0);
    assert_string_equal(mzb_config_error_format(&err, line, sizeof(line)),
                        "/nonexistent/mzb.json: cannot open the file: No such file or directory");

    snprintf(path, sizeof(path), "%s/tests/unit/config/cases", source_dir());
    assert_int_equal(mzb_config_load_file(path, &cfg, NULL), MZB_CONFIG_E_IO);
    assert_int_equal(mzb_config_load_file(path, &cfg, &err), MZB_CONFIG_E_IO);
    assert_non_null(strstr(err.text, "cannot read the file: Is a directory"));
}

static void test_api_edges(void **state)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    char line[LINE_MAX_LEN];

    (void)state;
    mzb_config_destroy(NULL);
    mzb_config_destroy(&cfg);
    assert_int_equal(mzb_config_service_index(NULL, "x"), -1);

    /* No name gives a placeholder; no error struct is fine too. */
    assert_int_equal(mzb_config_load_string("[]", 2, NULL, &cfg, &err), MZB_CONFIG_E_INVALID);
    assert_string_equal(mzb_config_error_format(&err, line, sizeof(line)),
                        "<config>:1:1: found an array; expected an object with the keys "
                        "\"bridge\" and \"routes\" at the top level");
    assert_int_equal(mzb_config_load_string("{", 1, "x", &cfg, NULL), MZB_CONFIG_E_SYNTAX);
    assert_null(cfg);

    /* The text need not end in a NUL: only len bytes are read. */
    assert_int_equal(mzb_config_load_string("{}garbage", 2, "x", &cfg, &err), MZB_CONFIG_E_INVALID);
    assert_string_equal(mzb_config_error_format(&err, line, sizeof(line)),
                        "x:1:1: the required key \"bridge\" is missing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_cases),
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_escaped_keys_and_no_routes),
        cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_many_routes_one_bad),
        cmocka_unit_test(test_filter_length),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_api_edges),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
