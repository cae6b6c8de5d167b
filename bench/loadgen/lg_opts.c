#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg.h"

#define MAX_CLIENTS 10000
#define MAX_THREADS 64
#define MAX_SIZE (256 * 1024 * 1024)

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: mzb-loadgen MODE [options]\n"
            "MODE is one of:\n"
            "  pubsub       publishers and subscribers on the same topics: delivered rate and\n"
            "               latency (a timestamp travels in each payload)\n"
            "  rr           MQTT v5 request/reply with Response Topic and Correlation Data:\n"
            "               requests/s and round-trip times\n"
            "  echo-server  the baseline responder: answers each request on its Response Topic\n"
            "               with its Correlation Data, until SIGINT/SIGTERM or -d\n"
            "options:\n"
            "  -H, --host HOST        broker address (127.0.0.1)\n"
            "  -p, --port PORT        broker port (1883)\n"
            "  -t, --topic TOPIC      base topic; client i uses TOPIC/i (bench/t)\n"
            "  -q, --qos 0|1|2        QoS of publishes and subscriptions (0)\n"
            "  -s, --size BYTES       payload size, at least %d for pubsub (64)\n"
            "  -P, --publishers N     pubsub publishers (1)\n"
            "  -S, --subscribers M    pubsub subscribers, each on TOPIC/# (1)\n"
            "  -c, --clients N        rr or echo-server connections (1)\n"
            "  -k, --inflight K       rr requests in flight per client (1)\n"
            "  -r, --rate R           messages or requests per second in all; 0 saturates (0)\n"
            "  -d, --duration S       seconds to send for (10; echo-server: until signalled)\n"
            "  -n, --count N          send N messages or requests in all instead of -d\n"
            "  -w, --warmup S         seconds at the start left out of rates and latencies (0)\n"
            "  -D, --drain S          longest wait for deliveries after sending stops (5)\n"
            "  -W, --window N         pubsub: messages per publisher not yet received by every\n"
            "                         subscriber (100); bounds queues when saturating\n"
            "  -e, --reply-prefix P   rr: Response Topic is P/<client id>/r (reply)\n"
            "  -i, --id-prefix P      client id prefix (lg)\n"
            "  -g, --share GROUP      echo-server: subscribe as $share/GROUP/TOPIC/#\n"
            "  -V, --protocol 5|311   MQTT version (5; rr and echo-server need 5)\n"
            "  -T, --threads N        worker threads (1)\n"
            "      --timeout MS       rr: a request unanswered this long is counted (5000)\n"
            "  -h, --help             print this help\n"
            "Output: one line of key=value on stdout, the same in words on stderr.\n",
            LG_HEADER_SIZE);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mzb-loadgen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(mzb-loadgen --help lists the options)\n");
    return LG_EXIT_USAGE;
}

static int parse_long(const char *name, const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr,
                "mzb-loadgen: %s: \"%s\" is not a whole number from %ld to %ld\n"
                "(mzb-loadgen --help lists the options)\n",
                name, text, lo, hi);
        return LG_EXIT_USAGE;
    }
    *out = v;
    return -1;
}

static int parse_int(const char *name, const char *text, long lo, long hi, int *out)
{
    long v;
    int rc = parse_long(name, text, lo, hi, &v);

    if (rc < 0) {
        *out = (int)v;
    }
    return rc;
}

static int parse_double(const char *name, const char *text, double lo, double hi, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr,
                "mzb-loadgen: %s: \"%s\" is not a number from %g to %g\n"
                "(mzb-loadgen --help lists the options)\n",
                name, text, lo, hi);
        return LG_EXIT_USAGE;
    }
    *out = v;
    return -1;
}

static int parse_protocol(const char *text, int *out)
{
    if (strcmp(text, "5") == 0) {
        *out = MQTT_PROTOCOL_V5;
        return -1;
    }
    if (strcmp(text, "311") == 0 || strcmp(text, "4") == 0) {
        *out = MQTT_PROTOCOL_V311;
        return -1;
    }
    return usage_error("--protocol: \"%s\" is not an MQTT version; use 5 or 311", text);
}

static int parse_text(const char *name, const char *text, const char **out)
{
    if (text[0] == '\0' || strlen(text) > LG_TOPIC_MAX / 2) {
        return usage_error("%s: \"%s\" must be 1 to 128 characters", name, text);
    }
    *out = text;
    return -1;
}

static int parse_count(const char *text, uint64_t *out)
{
    long v;
    int rc = parse_long("--count", text, 1, LONG_MAX, &v);

    if (rc < 0) {
        *out = (uint64_t)v;
    }
    return rc;
}

static int parse_size(const char *text, size_t *out)
{
    long v;
    int rc = parse_long("--size", text, 0, MAX_SIZE, &v);

    if (rc < 0) {
        *out = (size_t)v;
    }
    return rc;
}

static int take_numbers(int opt, const char *arg, struct lg_opts *o)
{
    switch (opt) {
    case 'p':
        return parse_int("--port", arg, 1, 65535, &o->port);
    case 'q':
        return parse_int("--qos", arg, 0, 2, &o->qos);
    case 's':
        return parse_size(arg, &o->size);
    case 'P':
        return parse_int("--publishers", arg, 1, MAX_CLIENTS, &o->pubs);
    case 'S':
        return parse_int("--subscribers", arg, 0, MAX_CLIENTS, &o->subs);
    case 'c':
        return parse_int("--clients", arg, 1, MAX_CLIENTS, &o->clients);
    case 'k':
        return parse_int("--inflight", arg, 1, 65535, &o->inflight);
    case 'r':
        return parse_double("--rate", arg, 0, 1e9, &o->rate);
    case 'd':
        return parse_double("--duration", arg, 0.001, 86400, &o->duration_s);
    case 'n':
        return parse_count(arg, &o->count);
    case 'w':
        return parse_double("--warmup", arg, 0, 3600, &o->warmup_s);
    case 'D':
        return parse_double("--drain", arg, 0, 3600, &o->drain_s);
    case 'W':
        return parse_int("--window", arg, 1, 1000000, &o->window);
    case 'T':
        return parse_int("--threads", arg, 1, MAX_THREADS, &o->threads);
    case 1000:
        return parse_int("--timeout", arg, 1, 3600000, &o->timeout_ms);
    default:
        return 0;
    }
}

static int take_option(int opt, const char *arg, struct lg_opts *o)
{
    int rc = take_numbers(opt, arg, o);

    if (rc != 0) {
        return rc;
    }
    switch (opt) {
    case 'H':
        return parse_text("--host", arg, &o->host);
    case 't':
        return parse_text("--topic", arg, &o->topic);
    case 'e':
        return parse_text("--reply-prefix", arg, &o->reply_prefix);
    case 'i':
        return parse_text("--id-prefix", arg, &o->id_prefix);
    case 'g':
        return parse_text("--share", arg, &o->share);
    case 'V':
        return parse_protocol(arg, &o->protocol);
    case 'h':
        print_usage(stdout);
        return LG_EXIT_OK;
    default:
        return usage_error("unknown option -%c", opt);
    }
}

static int parse_mode(const char *text, struct lg_opts *o)
{
    static const struct {
        const char *name;
        enum lg_mode mode;
    } modes[] = {{"pubsub", LG_MODE_PUBSUB}, {"rr", LG_MODE_RR}, {"echo-server", LG_MODE_ECHO}};

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(text, modes[i].name) == 0) {
            o->mode = modes[i].mode;
            return -1;
        }
    }
    return usage_error("unknown mode \"%s\"; use pubsub, rr or echo-server", text);
}

static int check_topic(const char *name, const char *topic)
{
    if (strpbrk(topic, "+#") != NULL || topic[strlen(topic) - 1] == '/') {
        return usage_error("%s: \"%s\" must be a topic without wildcards or a trailing /", name,
                           topic);
    }
    return -1;
}

static int check_consistency(const struct lg_opts *o)
{
    int rc;

    if (o->mode == LG_MODE_PUBSUB && o->size < LG_HEADER_SIZE) {
        return usage_error("--size: pubsub payloads carry a %d-byte header; use -s %d or more",
                           LG_HEADER_SIZE, LG_HEADER_SIZE);
    }
    if (o->mode != LG_MODE_PUBSUB && o->protocol != MQTT_PROTOCOL_V5) {
        return usage_error("--protocol: rr and echo-server need MQTT v5 (Response Topic, "
                           "Correlation Data)");
    }
    if (o->share && o->mode != LG_MODE_ECHO) {
        return usage_error("--share: only echo-server uses a shared subscription");
    }
    if (o->mode == LG_MODE_PUBSUB && o->subs == 0 && o->rate == 0 && o->count == 0) {
        return usage_error("--subscribers 0 needs --rate or --count (nothing else bounds the "
                           "run)");
    }
    rc = check_topic("--topic", o->topic);
    if (rc >= 0) {
        return rc;
    }
    return check_topic("--reply-prefix", o->reply_prefix);
}

static void set_defaults(struct lg_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 1883;
    o->topic = "bench/t";
    o->reply_prefix = "reply";
    o->id_prefix = "lg";
    o->protocol = MQTT_PROTOCOL_V5;
    o->size = 64;
    o->pubs = 1;
    o->subs = 1;
    o->clients = 1;
    o->inflight = 1;
    o->threads = 1;
    o->duration_s = -1; /* not given: see resolve_duration */
    o->drain_s = 5;
    o->window = 100;
    o->timeout_ms = 5000;
    o->keepalive = 60;
}

/* pubsub and rr run 10 s by default; echo-server runs until signalled (0) unless given -d. */
static void resolve_duration(struct lg_opts *o)
{
    if (o->duration_s < 0) {
        o->duration_s = o->mode == LG_MODE_ECHO ? 0 : 10;
    }
    if (o->count > 0 && o->mode != LG_MODE_ECHO) {
        o->duration_s = 0;
    }
}

int lg_opts_parse(int argc, char **argv, struct lg_opts *o)
{
    static const struct option longopts[] = {{"host", required_argument, NULL, 'H'},
                                             {"port", required_argument, NULL, 'p'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"qos", required_argument, NULL, 'q'},
                                             {"size", required_argument, NULL, 's'},
                                             {"publishers", required_argument, NULL, 'P'},
                                             {"subscribers", required_argument, NULL, 'S'},
                                             {"clients", required_argument, NULL, 'c'},
                                             {"inflight", required_argument, NULL, 'k'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {"count", required_argument, NULL, 'n'},
                                             {"warmup", required_argument, NULL, 'w'},
                                             {"drain", required_argument, NULL, 'D'},
                                             {"window", required_argument, NULL, 'W'},
                                             {"reply-prefix", required_argument, NULL, 'e'},
                                             {"id-prefix", required_argument, NULL, 'i'},
                                             {"share", required_argument, NULL, 'g'},
                                             {"protocol", required_argument, NULL, 'V'},
                                             {"threads", required_argument, NULL, 'T'},
                                             {"timeout", required_argument, NULL, 1000},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    int rc;

    set_defaults(o);
    if (argc < 2) {
        print_usage(stderr);
        return LG_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        print_usage(stdout);
        return LG_EXIT_OK;
    }
    rc = parse_mode(argv[1], o);
    if (rc >= 0) {
        return rc;
    }

    opterr = 0;
    optind = 2;
    while ((opt = getopt_long(argc, argv, ":H:p:t:q:s:P:S:c:k:r:d:n:w:D:W:e:i:g:V:T:h", longopts,
                              NULL)) != -1) {
        if (opt == ':' || opt == '?') {
            return usage_error("%s: %s",
                               opt == ':' ? "this option needs a value" : "unknown option",
                               argv[optind - 1]);
        }
        rc = take_option(opt, optarg, o);
        if (rc >= 0) {
            return rc;
        }
    }
    if (optind < argc) {
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    }
    resolve_duration(o);
    return check_consistency(o);
}
