/*
 * example_common: what the example handlers share. Command-line options,
 * reading the bridge's config, catching SIGINT and SIGTERM, the request loop
 * and a safe way to put request fields in a log line. Names carry the
 * prefix mzbx_.
 */
#ifndef EXAMPLE_COMMON_H
#define EXAMPLE_COMMON_H

#include <stddef.h>

#include "mzb_handler.h"

/* Exit codes of every example program. */
enum mzbx_exit {
    MZBX_EXIT_OK = 0,      /* stopped by SIGINT or SIGTERM */
    MZBX_EXIT_FAILURE = 1, /* a bad config file, or a failure while running */
    MZBX_EXIT_USAGE = 2,   /* bad command-line arguments */
};

/* What a program accepts beyond -c, -e, -s, --credit, -v and -h. */
struct mzbx_program {
    const char *name;    /* shown in usage and log lines */
    const char *summary; /* one line: what the program does */
    int wants_db;        /* 1: takes -d DB (required) */
};

struct mzbx_args {
    const char *config_path; /* -c FILE */
    const char *endpoint;    /* -e ENDPOINT */
    const char *service;     /* -s SERVICE */
    const char *db_path;     /* -d DB, when the program takes it */
    unsigned credit;         /* --credit N: 1 to MZB_HANDLER_MAX_CREDIT, 0 for the default */
    int verbose;             /* -v: debug lines too */
};

/*
 * Parses argv into *args and sets up logging. Returns -1 when the program should go on;
 * otherwise an exit code: MZBX_EXIT_OK after printing help (-h), or
 * MZBX_EXIT_USAGE after printing what is wrong and the usage to stderr.
 */
int mzbx_parse_args(const struct mzbx_program *prog, int argc, char **argv, struct mzbx_args *args);

/*
 * Reads the endpoint (and heartbeat settings) from the config
 * file or takes -e, and connects. Returns MZBX_EXIT_OK with *h set, or
 * MZBX_EXIT_FAILURE after printing why.
 */
int mzbx_start(const struct mzbx_program *prog, const struct mzbx_args *args,
               struct mzb_handler **h);

/*
 * Handles one request; must consume req (reply, done or free) whatever it
 * returns. Returns MZBX_EXIT_OK to go on, or an exit code to stop with.
 */
typedef int (*mzbx_serve_fn)(struct mzb_handler *h, struct mzb_request *req, void *arg);

/*
 * Catches SIGINT and SIGTERM and serves requests with fn until one of them
 * arrives (returns MZBX_EXIT_OK), fn returns an exit code, or the handler
 * fails (MZBX_EXIT_FAILURE). Blocks.
 */
int mzbx_serve(struct mzb_handler *h, mzbx_serve_fn fn, void *arg);

/*
 * The whole life of a handler that needs nothing of its own: parses argv,
 * connects, serves with fn until stopped, disconnects. Returns the exit code.
 */
int mzbx_run(const struct mzbx_program *prog, int argc, char **argv, mzbx_serve_fn fn, void *arg);

/* Logs "topic=... client=... bytes=N" at debug level (-v) for req, with prefix first. */
void mzbx_log_request(const char *prefix, const struct mzb_request *req);

/*
 * Writes the current UTC time as "2024-05-01T12:00:00.123Z" into buf (cap at
 * least 25 bytes). Returns buf.
 */
char *mzbx_iso_time(char *buf, size_t cap);

/*
 * Turns a TCP bind endpoint on every address (host "*", "0.0.0.0" or "[::]",
 * as in "tcp://0.0.0.0:5556") into one a handler can connect to on this host
 * ("tcp://127.0.0.1:5556", "tcp://[::1]:5556") and writes it to buf. Other endpoints are copied
 * unchanged. Returns 0, or -1 when buf is too small.
 */
int mzbx_connect_endpoint(const char *bind_endpoint, char *buf, size_t cap);

#endif
