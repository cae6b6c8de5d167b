/*
 * The example programs mzb-echo, mzb-enrich and mzb-store, run as processes
 * against the fake bridge: arguments, config errors, answers, storage and a
 * clean exit on SIGTERM and SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "example_common.h"
#include "fake_bridge.h"
#include "mzb_proto.h"

/* Programs built with sanitizers start slowly; these bounds only matter when a test fails. */
#define START_MS 10000
#define WAIT_MS 5000

struct fixture {
    struct fake_bridge fb;
    pid_t pid;
    char log_path[128]; /* the child's stdout and stderr */
    struct fb_msg ready;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx || fb_start(&fx->fb) != 0) {
        free(fx);
        return -1;
    }
    snprintf(fx->log_path, sizeof(fx->log_path), "%s/child.log", fx->fb.dir);
    *state = fx;
    return 0;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    int status;

    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t done = waitpid(pid, &status, WNOHANG);

        if (done == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(10000);
    }
    return -1;
}

static void remove_files(const char *dir)
{
    static const char *const names[] = {"child.log", "config.json", "store.db", "store.db-wal",
                                        "store.db-shm"};
    char path[160];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    if (fx->pid > 0) {
        kill(fx->pid, SIGKILL);
        wait_exit(fx->pid, WAIT_MS);
    }
    fb_msg_free(&fx->ready);
    remove_files(fx->fb.dir);
    fb_stop(&fx->fb);
    free(fx);
    return 0;
}

static void child_exec(const char *log_path, char *const argv[])
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
        _exit(126);
    }
    close(fd);
    execv(argv[0], argv);
    _exit(127);
}

/* Starts argv (NULL-terminated) with its output going to the fixture's log file. */
static void spawn(struct fixture *fx, char *const argv[])
{
    fx->pid = fork();
    assert_true(fx->pid >= 0);
    if (fx->pid == 0) {
        child_exec(fx->log_path, argv);
    }
}

/* Runs argv to its end and returns its exit code. */
static int run(struct fixture *fx, char *const argv[])
{
    int code;

    spawn(fx, argv);
    code = wait_exit(fx->pid, START_MS);
    fx->pid = 0;
    return code;
}

static int log_contains(const struct fixture *fx, const char *needle)
{
    char text[8192];
    FILE *f = fopen(fx->log_path, "r");
    size_t n;

    if (!f) {
        return 0;
    }
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

static void stop_with(struct fixture *fx, int sig)
{
    struct fb_msg m;

    assert_int_equal(kill(fx->pid, sig), 0);
    assert_int_equal(wait_exit(fx->pid, WAIT_MS), 0);
    fx->pid = 0;
    assert_int_equal(fb_expect(&fx->fb, MDP_DISCONNECT, &m, WAIT_MS, NULL), 0);
    fb_msg_free(&m);
}

static void start_serving(struct fixture *fx, char *const argv[])
{
    spawn(fx, argv);
    assert_int_equal(fb_expect(&fx->fb, MDP_READY, &fx->ready, START_MS, NULL), 0);
}

/* Sends a request and returns the reply body as a NUL-terminated string to free. */
static char *ask(struct fixture *fx, uint64_t addr, const char *payload,
                 const struct mzb_meta *meta)
{
    struct fb_msg m;
    char *body;

    assert_int_equal(fb_send_request(&fx->fb, &fx->ready, addr, payload, meta), 0);
    assert_int_equal(fb_expect(&fx->fb, MDP_REPLY, &m, WAIT_MS, NULL), 0);
    assert_int_equal(m.count, 7);
    assert_true(mzb_get_u64(m.data[4]) == addr);
    body = strdup((const char *)m.data[6]);
    fb_msg_free(&m);
    return body;
}

static void test_bad_arguments_exit_2(void **state)
{
    struct fixture *fx = *state;
    char *none[] = {MZB_ECHO, NULL};
    char *both[] = {MZB_ECHO, "-c", "x.json", "-e", "tcp://127.0.0.1:19001", "-s", "a", NULL};
    char *unknown[] = {MZB_ECHO, "-x", NULL};
    char *no_value[] = {MZB_ECHO, "-e", "ipc:///tmp/x", "-s", NULL};
    char *no_service[] = {MZB_ECHO, "-e", "ipc:///tmp/x", NULL};
    char *extra[] = {MZB_ECHO, "-e", "ipc:///tmp/x", "-s", "a", "more", NULL};
    char *no_db[] = {MZB_STORE, "-e", "ipc:///tmp/x", "-s", "a", NULL};

    assert_int_equal(run(fx, none), 2);
    assert_true(log_contains(fx, "usage: mzb-echo"));
    assert_int_equal(run(fx, both), 2);
    assert_true(log_contains(fx, "either -c or -e"));
    assert_int_equal(run(fx, unknown), 2);
    assert_true(log_contains(fx, "unknown option -x"));
    assert_int_equal(run(fx, no_value), 2);
    assert_true(log_contains(fx, "option -s needs a value"));
    assert_int_equal(run(fx, no_service), 2);
    assert_int_equal(run(fx, extra), 2);
    assert_int_equal(run(fx, no_db), 2);
    assert_true(log_contains(fx, "database file (-d)"));
}

static void test_bad_credit_exits_2(void **state)
{
    struct fixture *fx = *state;
    char *credit_zero[] = {MZB_ECHO, "-e", "ipc:///tmp/x", "-s", "a", "--credit", "0", NULL};
    char *credit_big[] = {MZB_ECHO, "-e", "ipc:///tmp/x", "-s", "a", "--credit", "1001", NULL};
    char *credit_text[] = {MZB_ECHO, "-e", "ipc:///tmp/x", "-s", "a", "--credit=4x", NULL};
    char *credit_sign[] = {MZB_ECHO, "-e", "ipc:///tmp/x", "-s", "a", "--credit", "-3", NULL};
    char *credit_none[] = {MZB_ECHO, "-e", "ipc:///tmp/x", "-s", "a", "--credit", NULL};

    assert_int_equal(run(fx, credit_zero), 2);
    assert_true(log_contains(fx, "--credit needs a whole number from 1 to 1000, not \"0\""));
    assert_int_equal(run(fx, credit_big), 2);
    assert_true(log_contains(fx, "not \"1001\""));
    assert_int_equal(run(fx, credit_text), 2);
    assert_true(log_contains(fx, "not \"4x\""));
    assert_int_equal(run(fx, credit_sign), 2);
    assert_true(log_contains(fx, "not \"-3\""));
    assert_int_equal(run(fx, credit_none), 2);
    assert_true(log_contains(fx, "option --credit needs a value"));
}

static void test_credit_option_reaches_ready(void **state)
{
    struct fixture *fx = *state;
    char *argv[] = {MZB_ECHO, "-e", fx->fb.endpoint, "-s", "echo", "--credit", "4", NULL};

    start_serving(fx, argv);
    assert_int_equal(fx->ready.count, 6);
    assert_int_equal(fx->ready.len[5], strlen("credit=4"));
    assert_memory_equal(fx->ready.data[5], "credit=4", fx->ready.len[5]);
    stop_with(fx, SIGTERM);
}

static void test_help_exits_0(void **state)
{
    struct fixture *fx = *state;
    char *help[] = {MZB_ENRICH, "-h", NULL};

    assert_int_equal(run(fx, help), 0);
    assert_true(log_contains(fx, "usage: mzb-enrich"));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_bad_config_exits_1(void **state)
{
    struct fixture *fx = *state;
    char path[160];
    char *argv[] = {MZB_ECHO, "-c", path, "-s", "echo", NULL};

    snprintf(path, sizeof(path), "%s/config.json", fx->fb.dir);
    assert_int_equal(run(fx, argv), 1);
    assert_true(log_contains(fx, "config.json"));

    write_file(path, "{\"bridge\": {\"plugin_endpoint\": 5}}\n");
    assert_int_equal(run(fx, argv), 1);
    assert_true(log_contains(fx, "config.json:1:"));
}

static void test_echo_answers_and_stops_on_sigterm(void **state)
{
    struct fixture *fx = *state;
    char *argv[] = {MZB_ECHO, "-e", fx->fb.endpoint, "-s", "echo", "-v", NULL};
    struct mzb_meta meta;
    char *body;

    start_serving(fx, argv);
    assert_string_equal((const char *)fx->ready.data[4], "echo");

    fb_event_meta(&meta, "demo/rpc/echo/x", "c-1", 1, 1);
    body = ask(fx, 7, "hello", &meta);
    assert_string_equal(body, "hello");
    free(body);
    body = ask(fx, 8, "plain", NULL);
    assert_string_equal(body, "plain");
    free(body);

    stop_with(fx, SIGTERM);
    assert_true(log_contains(fx, "topic=demo/rpc/echo/x client=c-1 bytes=5"));
    assert_true(log_contains(fx, "topic=- client=- bytes=5"));
}

static void test_echo_reads_its_endpoint_from_the_config(void **state)
{
    struct fixture *fx = *state;
    char path[160], text[1024];
    char *argv[] = {MZB_ECHO, "-c", path, "-s", "echo", NULL};

    snprintf(path, sizeof(path), "%s/config.json", fx->fb.dir);
    snprintf(text, sizeof(text),
             "{\"bridge\": {\"plugin_endpoint\": \"ipc://%s/plugin.sock\","
             " \"handler_endpoint\": \"%s\"},"
             " \"routes\": [{\"filter\": \"a/#\", \"service\": \"echo\", \"mode\": \"event\"}]}",
             fx->fb.dir, fx->fb.endpoint);
    write_file(path, text);

    start_serving(fx, argv);
    stop_with(fx, SIGINT);
}

static json_t *ask_json(struct fixture *fx, uint64_t addr, const char *payload,
                        const struct mzb_meta *meta)
{
    char *body = ask(fx, addr, payload, meta);
    json_t *doc = json_loads(body, 0, NULL);

    free(body);
    assert_non_null(doc);
    return doc;
}

static void check_origin(json_t *doc)
{
    json_t *mzb = json_object_get(doc, "mzb");
    json_t *props = json_object_get(mzb, "user_properties");

    assert_int_equal(json_integer_value(json_object_get(doc, "temp")), 21);
    assert_string_equal(json_string_value(json_object_get(mzb, "topic")), "demo/rpc/enrich/1");
    assert_string_equal(json_string_value(json_object_get(mzb, "client_id")), "dev-9");
    assert_int_equal(json_integer_value(json_object_get(mzb, "qos")), 1);
    assert_int_equal(strlen(json_string_value(json_object_get(mzb, "received_at"))), 24);
    assert_int_equal(json_array_size(props), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(props, 0), "key")),
                        "site");
    assert_string_equal(json_string_value(json_object_get(json_array_get(props, 0), "value")),
                        "north");
}

static void test_enrich_adds_the_origin(void **state)
{
    struct fixture *fx = *state;
    char *argv[] = {MZB_ENRICH, "-e", fx->fb.endpoint, "-s", "enrich", NULL};
    struct mzb_meta meta;
    json_t *doc;

    start_serving(fx, argv);
    fb_event_meta(&meta, "demo/rpc/enrich/1", "dev-9", 1, 1);
    meta.mode = MZB_MODE_REQUEST;
    meta.user_prop_count = 1;
    meta.user_props[0].key = (struct mzb_bytes){(const uint8_t *)"site", 4};
    meta.user_props[0].value = (struct mzb_bytes){(const uint8_t *)"north", 5};

    doc = ask_json(fx, 1, "{\"temp\": 21, \"mzb\": \"overwritten\"}", &meta);
    check_origin(doc);
    json_decref(doc);

    doc = ask_json(fx, 2, "[1, 2]", &meta);
    assert_non_null(strstr(json_string_value(json_object_get(doc, "error")), "not an object"));
    json_decref(doc);
    doc = ask_json(fx, 3, "{\"temp\": ", &meta);
    assert_non_null(strstr(json_string_value(json_object_get(doc, "error")), "not JSON"));
    json_decref(doc);

    stop_with(fx, SIGTERM);
}

static int count_rows(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int n = -1;

    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        n = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

static void store_three_events(struct fixture *fx, uint64_t first_addr)
{
    struct mzb_meta meta;
    char *body;

    for (uint64_t id = 1; id <= 3; id++) {
        /* Event 3 is event 1 sent again, as after a bridge restart. */
        fb_event_meta(&meta, "demo/events/t", "dev", id == 3 ? 1 : id, 2);
        meta.retain = 1;
        body = ask(fx, first_addr + id, id == 2 ? "" : "{\"v\":1}", &meta);
        assert_string_equal(body, "");
        free(body);
    }
}

static void test_store_keeps_each_event_once(void **state)
{
    struct fixture *fx = *state;
    char db[160];
    char *argv[] = {MZB_STORE, "-e", fx->fb.endpoint, "-s", "store", "-d", db, NULL};

    snprintf(db, sizeof(db), "%s/store.db", fx->fb.dir);
    start_serving(fx, argv);
    store_three_events(fx, 100);
    stop_with(fx, SIGTERM);

    /* A new process has an empty resend memory: the UNIQUE column must stop the repeat. */
    fb_msg_free(&fx->ready);
    start_serving(fx, argv);
    store_three_events(fx, 200);
    stop_with(fx, SIGTERM);

    assert_int_equal(count_rows(db, "SELECT count(*) FROM events"), 2);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM events WHERE topic = 'demo/events/t'"
                                    " AND client_id = 'dev' AND qos = 2 AND retain = 1"),
                     2);
    assert_int_equal(count_rows(db, "SELECT length(payload) FROM events WHERE message_id = 2"), 0);
    assert_int_equal(count_rows(db, "SELECT count(*) FROM pragma_journal_mode"
                                    " WHERE journal_mode = 'wal'"),
                     1);
    assert_true(log_contains(fx, "is stored already"));
}

static void test_store_fails_on_a_bad_database_path(void **state)
{
    struct fixture *fx = *state;
    char *argv[] = {MZB_STORE, "-e", fx->fb.endpoint,         "-s",
                    "store",   "-d", "/nonexistent-dir/x.db", NULL};

    assert_int_equal(run(fx, argv), 1);
    assert_true(log_contains(fx, "/nonexistent-dir/x.db"));
}

static void check_endpoint(const char *in, const char *want)
{
    char buf[64];

    assert_int_equal(mzbx_connect_endpoint(in, buf, sizeof(buf)), 0);
    assert_string_equal(buf, want);
}

static void test_bind_endpoints_become_local(void **state)
{
    char small[8];

    (void)state;
    check_endpoint("tcp://*:5602", "tcp://127.0.0.1:5602");
    check_endpoint("tcp://0.0.0.0:5602", "tcp://127.0.0.1:5602");
    check_endpoint("tcp://[::]:5602", "tcp://[::1]:5602");
    check_endpoint("tcp://10.0.0.2:5602", "tcp://10.0.0.2:5602");
    check_endpoint("ipc:///run/mzb.sock", "ipc:///run/mzb.sock");
    assert_int_equal(mzbx_connect_endpoint("tcp://*:5602", small, sizeof(small)), -1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bad_arguments_exit_2),
        T(test_bad_credit_exits_2),
        T(test_help_exits_0),
        T(test_credit_option_reaches_ready),
        T(test_bad_config_exits_1),
        T(test_echo_answers_and_stops_on_sigterm),
        T(test_echo_reads_its_endpoint_from_the_config),
        T(test_enrich_adds_the_origin),
        T(test_store_keeps_each_event_once),
        T(test_store_fails_on_a_bad_database_path),
        cmocka_unit_test(test_bind_endpoints_become_local),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
