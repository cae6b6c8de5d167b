#include "example_common.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mzb_config.h"
#include "mzb_log.h"

/* Longest field shown in a request log line; longer ones end in "...". */
#define LOG_FIELD_MAX 200

/* getopt_long's code for --credit, which has no short form. */
#define OPT_CREDIT 256

/* A signal handler can reach no other state; only this file touches these. */
static struct mzb_handler *serving;
static volatile sig_atomic_t stop_requested;

static void print_usage(const struct mzbx_program *prog, FILE *out)
{
    fprintf(out,
            "usage: %s (-c CONFIG.json | -e ENDPOINT) -s SERVICE%s [--credit N] [-v]\n"
            "%s\n"
            "  -c FILE      read the handler endpoint from the bridge's config file\n"
            "  -e ENDPOINT  connect to this endpoint instead, e.g. tcp://127.0.0.1:5556\n"
            "  -s SERVICE   the service to serve, as named in the config's routes\n"
            "  --credit N   requests the bridge may send before waiting for an answer,\n"
            "               1 to %d (default %d; 1 is plain MDP, one at a time)\n",
            prog->name, prog->wants_db ? " -d DB.sqlite" : "", prog->summary,
            MZB_HANDLER_MAX_CREDIT, MZB_HANDLER_DEFAULT_CREDIT);
    if (prog->wants_db) {
        fprintf(out, "  -d FILE      the SQLite database to store into (created if missing)\n");
    }
    fprintf(out, "  -v           log one line per request, and debug lines\n"
                 "  -h           print this help\n");
}

static int usage_error(const struct mzbx_program *prog, const char *what)
{
    fprintf(stderr, "%s: %s\n", prog->name, what);
    print_usage(prog, stderr);
    return MZBX_EXIT_USAGE;
}

static int check_args(const struct mzbx_program *prog, const struct mzbx_args *args)
{
    if (!args->config_path && !args->endpoint) {
        return usage_error(prog, "give the bridge's config file (-c) or an endpoint (-e)");
    }
    if (args->config_path && args->endpoint) {
        return usage_error(prog, "give either -c or -e, not both");
    }
    if (!args->service || !args->service[0]) {
        return usage_error(prog, "give the service to serve (-s)");
    }
    if (prog->wants_db && (!args->db_path || !args->db_path[0])) {
        return usage_error(prog, "give the database file (-d)");
    }
    return -1;
}

/* --credit's value: a whole number from 1 to MZB_HANDLER_MAX_CREDIT, nothing else. */
static int take_credit(const struct mzbx_program *prog, const char *value, struct mzbx_args *args)
{
    char text[160];
    char *end = NULL;
    unsigned long n;

    errno = 0;
    n = value[0] >= '0' && value[0] <= '9' ? strtoul(value, &end, 10) : 0;
    if (errno != 0 || !end || *end != '\0' || n < 1 || n > MZB_HANDLER_MAX_CREDIT) {
        snprintf(text, sizeof(text), "--credit needs a whole number from 1 to %d, not \"%.40s\"",
                 MZB_HANDLER_MAX_CREDIT, value);
        return usage_error(prog, text);
    }
    args->credit = (unsigned)n;
    return -1;
}

static int take_option(const struct mzbx_program *prog, int opt, struct mzbx_args *args)
{
    char text[64];

    switch (opt) {
    case 'c':
        args->config_path = optarg;
        return -1;
    case 'e':
        args->endpoint = optarg;
        return -1;
    case 's':
        args->service = optarg;
        return -1;
    case 'd':
        args->db_path = optarg;
        return -1;
    case 'v':
        args->verbose = 1;
        return -1;
    case OPT_CREDIT:
        return take_credit(prog, optarg, args);
    case 'h':
        print_usage(prog, stdout);
        return MZBX_EXIT_OK;
    case ':':
        if (optopt == OPT_CREDIT) {
            return usage_error(prog, "option --credit needs a value");
        }
        snprintf(text, sizeof(text), "option -%c needs a value", optopt);
        return usage_error(prog, text);
    default:
        if (optopt == 0) {
            return usage_error(prog, "unknown long option");
        }
        snprintf(text, sizeof(text), "unknown option -%c", optopt);
        return usage_error(prog, text);
    }
}

int mzbx_parse_args(const struct mzbx_program *prog, int argc, char **argv, struct mzbx_args *args)
{
    static const struct option long_options[] = {{"help", no_argument, NULL, 'h'},
                                                 {"credit", required_argument, NULL, OPT_CREDIT},
                                                 {NULL, 0, NULL, 0}};
    const char *optstring = prog->wants_db ? ":c:e:s:d:vh" : ":c:e:s:vh";
    int opt;
    int rc;

    memset(args, 0, sizeof(*args));
    opterr = 0;
    while ((opt = getopt_long(argc, argv, optstring, long_options, NULL)) != -1) {
        rc = take_option(prog, opt, args);
        if (rc >= 0) {
            return rc;
        }
    }

    if (optind < argc) {
        return usage_error(prog, "unexpected argument after the options");
    }
    rc = check_args(prog, args);
    if (rc < 0) {
        mzb_log_init(prog->name, args->verbose ? MZB_LOG_DEBUG : MZB_LOG_INFO);
    }
    return rc;
}

int mzbx_connect_endpoint(const char *bind_endpoint, char *buf, size_t cap)
{
    static const struct {
        const char *any;
        const char *local;
    } hosts[] = {
        {"tcp://*:", "tcp://127.0.0.1:"},
        {"tcp://0.0.0.0:", "tcp://127.0.0.1:"},
        {"tcp://[::]:", "tcp://[::1]:"},
    };
    const char *rest = bind_endpoint;
    const char *prefix = "";
    int n;

    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        size_t len = strlen(hosts[i].any);

        if (strncmp(bind_endpoint, hosts[i].any, len) == 0) {
            prefix = hosts[i].local;
            rest = bind_endpoint + len;
            break;
        }
    }
    n = snprintf(buf, cap, "%s%s", prefix, rest);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

static int read_config(const struct mzbx_program *prog, const char *path,
                       struct mzb_handler_options *opts, char *endpoint, size_t cap)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    char text[1200];

    if (mzb_config_load_file(path, &cfg, &err) != MZB_CONFIG_OK) {
        fprintf(stderr, "%s: %s\n", prog->name, mzb_config_error_format(&err, text, sizeof(text)));
        return MZBX_EXIT_FAILURE;
    }

    if (mzbx_connect_endpoint(cfg->handler_endpoint, endpoint, cap) != 0) {
        fprintf(stderr, "%s: %s: bridge.handler_endpoint is too long\n", prog->name, path);
        mzb_config_destroy(&cfg);
        return MZBX_EXIT_FAILURE;
    }
    if (mzb_config_service_index(cfg, opts->service) < 0) {
        mzb_log(MZB_LOG_WARNING,
                "service %s: no route in %s names it, so the bridge will send it nothing; "
                "check -s against the routes' \"service\" keys",
                opts->service, path);
    }
    opts->heartbeat_ms = cfg->heartbeat_ms;
    opts->liveness = cfg->liveness;
    mzb_config_destroy(&cfg);
    return MZBX_EXIT_OK;
}

int mzbx_start(const struct mzbx_program *prog, const struct mzbx_args *args,
               struct mzb_handler **h)
{
    struct mzb_handler_options opts = {0};
    char endpoint[1024];
    int rc;

    opts.service = args->service;
    opts.credit = args->credit;
    if (args->config_path) {
        rc = read_config(prog, args->config_path, &opts, endpoint, sizeof(endpoint));
        if (rc != MZBX_EXIT_OK) {
            return rc;
        }
        opts.endpoint = endpoint;
    } else {
        opts.endpoint = args->endpoint;
    }

    *h = mzb_handler_new(&opts);
    if (!*h) {
        return MZBX_EXIT_FAILURE;
    }
    mzb_log(MZB_LOG_INFO, "serving %s through the bridge at %s with credit %u", opts.service,
            opts.endpoint, args->credit ? args->credit : MZB_HANDLER_DEFAULT_CREDIT);
    return MZBX_EXIT_OK;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    mzb_handler_interrupt(serving);
}

static int catch_signals(void)
{
    struct sigaction sa;

    /* No SA_RESTART: the signal must wake the handler's wait. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        mzb_log(MZB_LOG_ERROR, "cannot catch SIGINT and SIGTERM: %m");
        return -1;
    }
    return 0;
}

int mzbx_serve(struct mzb_handler *h, mzbx_serve_fn fn, void *arg)
{
    struct mzb_request *req;
    int rc;

    serving = h;
    if (catch_signals() != 0) {
        return MZBX_EXIT_FAILURE;
    }

    while (!stop_requested) {
        rc = mzb_handler_recv(h, &req, -1);
        if (rc == MZB_HANDLER_OK) {
            rc = fn(h, req, arg);
            if (rc != MZBX_EXIT_OK) {
                return rc;
            }
        } else if (rc != MZB_HANDLER_E_INTERRUPTED && rc != MZB_HANDLER_E_TIMEOUT) {
            return MZBX_EXIT_FAILURE;
        }
    }
    mzb_log(MZB_LOG_INFO, "stopping on a signal");
    return MZBX_EXIT_OK;
}

/* Copies a field for a log line with control bytes replaced, so a topic cannot forge lines. */
static const char *printable(const char *s, size_t len, char *buf, size_t cap)
{
    size_t n = 0;

    if (!s) {
        return "-";
    }
    for (size_t i = 0; i < len && n + 4 < cap && i < LOG_FIELD_MAX; i++) {
        unsigned char c = (unsigned char)s[i];

        buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (len > LOG_FIELD_MAX || n + 4 >= cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

void mzbx_log_request(const char *prefix, const struct mzb_request *req)
{
    char topic_buf[LOG_FIELD_MAX + 8];
    char client_buf[LOG_FIELD_MAX + 8];
    const char *topic, *client;
    size_t topic_len, client_len, payload_len;

    if (!mzb_log_enabled(MZB_LOG_DEBUG)) {
        return;
    }
    topic = mzb_request_topic(req, &topic_len);
    client = mzb_request_client_id(req, &client_len);
    mzb_request_payload(req, &payload_len);

    mzb_log(MZB_LOG_DEBUG, "%s topic=%s client=%s bytes=%zu", prefix,
            printable(topic, topic_len, topic_buf, sizeof(topic_buf)),
            printable(client, client_len, client_buf, sizeof(client_buf)), payload_len);
}

char *mzbx_iso_time(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    return buf;
}

int mzbx_run(const struct mzbx_program *prog, int argc, char **argv, mzbx_serve_fn fn, void *arg)
{
    struct mzbx_args args;
    struct mzb_handler *h = NULL;
    int rc;

    rc = mzbx_parse_args(prog, argc, argv, &args);
    if (rc >= 0) {
        return rc;
    }
    rc = mzbx_start(prog, &args, &h);
    if (rc != MZBX_EXIT_OK) {
        return rc;
    }

    rc = mzbx_serve(h, fn, arg);
    mzb_handler_destroy(&h);
    return rc;
}
