/*
 * mzb-bridge: command line. Loads the config, then hands over to brg_bridge.
 */
#include "brg_bridge.h"

#include <getopt.h>
#include <stdarg.h>
#include <mosquitto.h>
#include <stdio.h>
#include <string.h>

#ifndef MZB_VERSION
#define MZB_VERSION "unknown"
#endif

#define EXIT_USAGE 2

enum { OPT_CHECK = 256, OPT_HELP, OPT_VERSION };

static const char usage_text[] =
    "Usage: mzb-bridge -c FILE [-v|-q]\n"
    "       mzb-bridge --check FILE\n"
    "       mzb-bridge --help | --version\n"
    "\n"
    "Routes MQTT publishes that the mosquitto plugin forwards to ZeroMQ handlers\n"
    "(Majordomo workers) and publishes their replies back over MQTT.\n"
    "\n"
    "  -c, --config FILE  run with this JSON config\n"
    "  -v, --verbose      log debug lines too\n"
    "  -q, --quiet        log warnings and errors only\n"
    "      --check FILE   validate FILE, print \"FILE: ok\" or the first problem\n"
    "  -h, --help         show this help\n"
    "  -V, --version      show the version\n"
    "\n"
    "Signals: SIGINT/SIGTERM stop; SIGHUP re-reads FILE (limits apply at once,\n"
    "endpoint and MQTT changes need a restart).\n";

struct cli {
    const char *config;
    const char *check;
    int level;
    int verbose;
    int quiet;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("mzb-bridge: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'mzb-bridge --help'.\n", stderr);
    return EXIT_USAGE;
}

/* Returns -1 when the options fit together, or the usage exit code. */
static int check_combination(struct cli *cli)
{
    if (cli->verbose && cli->quiet) {
        return usage_error("-v and -q exclude each other");
    }
    if (cli->check && cli->config) {
        return usage_error("--check and -c exclude each other");
    }
    if (!cli->check && !cli->config) {
        return usage_error("no config file given: use -c FILE");
    }
    cli->level = cli->verbose ? MZB_LOG_DEBUG : cli->quiet ? MZB_LOG_WARNING : MZB_LOG_INFO;
    return -1;
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, struct cli *cli)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"check", required_argument, NULL, OPT_CHECK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:vqhV", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            cli->config = optarg;
            break;
        case 'v':
            cli->verbose = 1;
            break;
        case 'q':
            cli->quiet = 1;
            break;
        case OPT_CHECK:
            cli->check = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            printf("mzb-bridge %s\n", MZB_VERSION);
            return 0;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt > 0 && optopt < 256) {
                return usage_error("unknown option '-%c'", optopt);
            }
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }

    if (optind < argc) {
        return usage_error("unexpected argument '%s'", argv[optind]);
    }
    return check_combination(cli);
}

static struct mzb_config *load(const char *path)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    char line[1200];

    memset(&err, 0, sizeof(err));
    if (mzb_config_load_file(path, &cfg, &err) != MZB_CONFIG_OK) {
        fprintf(stderr, "%s\n", mzb_config_error_format(&err, line, sizeof(line)));
        return NULL;
    }
    return cfg;
}

static int check(const char *path)
{
    struct mzb_config *cfg = load(path);

    if (!cfg) {
        return 1;
    }
    printf("%s: ok\n", path);
    mzb_config_destroy(&cfg);
    return 0;
}

static int run(const struct cli *cli)
{
    struct mzb_config *cfg;
    struct brg_bridge *b;
    int rc;

    mzb_log_init("mzb-bridge", cli->level);
    if (brg_bridge_block_signals() != 0) {
        mzb_log(MZB_LOG_ERROR, "cannot block signals");
        return 1;
    }
    cfg = load(cli->config);
    if (!cfg) {
        return 1;
    }

    if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
        mzb_log(MZB_LOG_ERROR, "libmosquitto cannot be initialised");
        mzb_config_destroy(&cfg);
        return 1;
    }
    b = brg_bridge_new(cfg, cli->config);
    rc = b ? brg_bridge_run(b) : 1;
    brg_bridge_destroy(&b);
    mosquitto_lib_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    int rc = parse_args(argc, argv, &cli);

    if (rc >= 0) {
        return rc;
    }
    if (cli.check) {
        return check(cli.check);
    }
    return run(&cli);
}
