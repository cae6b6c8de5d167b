/*
 * mzb_config: the one JSON file that configures the plugin and the bridge.
 * Loading validates everything; the first problem found is returned as a
 * structured error (file, line, column, key path, sentence). docs/config.md
 * is the reference for every key.
 */
#ifndef MZB_CONFIG_H
#define MZB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum mzb_config_err {
    MZB_CONFIG_OK = 0,
    MZB_CONFIG_E_IO = 1,      /* the file cannot be read */
    MZB_CONFIG_E_SYNTAX = 2,  /* not JSON, invalid UTF-8, a BOM, too deep */
    MZB_CONFIG_E_INVALID = 3, /* JSON, but a key or value breaks the schema */
    MZB_CONFIG_E_NOMEM = 4,
};

struct mzb_config_error {
    char file[256];
    int line;       /* 1-based; 0 when unknown (I/O errors) */
    int column;     /* 1-based, in bytes; 0 when unknown */
    char path[256]; /* key path such as "routes[2].filter"; empty for the whole file */
    char text[512]; /* what is wrong, one sentence without a final period */
};

struct mzb_route {
    char *filter;
    char *service;
    uint32_t service_index; /* index into mzb_config.services */
    int mode;               /* enum mzb_mode (mzb_meta.h) */
    char *reply_pattern;    /* request mode: never NULL ("reply/{client_id}/#" by default) */
    char *reply_topic;      /* request mode: template, or NULL when not set */
    uint32_t timeout_ms;    /* request mode: default 5000 */
    int qos;                /* QoS of replies; -1 means the request's QoS (default) */
    int refuse_on_overload; /* on_overload "refuse": the publish is refused when it cannot be
                               forwarded; "deliver" (default) lets it reach subscribers */
};

struct mzb_mqtt_config {
    char *host;      /* default "127.0.0.1" */
    int port;        /* default 1883 */
    char *client_id; /* default "mzb-bridge"; the plugin never routes this client's publishes */
    char *username;  /* NULL when not set */
    char *password;  /* NULL when not set */
    int keepalive;   /* seconds, default 30 */
};

struct mzb_config {
    char *plugin_endpoint;       /* bridge.plugin_endpoint, required */
    char *handler_endpoint;      /* bridge.handler_endpoint, required */
    uint32_t heartbeat_ms;       /* bridge.heartbeat_ms, default 1000 */
    uint32_t liveness;           /* bridge.liveness, default 4 */
    uint32_t max_queue;          /* bridge.max_queue: requests waiting per service, default 10000 */
    uint32_t stats_interval_s;   /* bridge.stats_interval_s: 0 = never log counters; default 60 */
    struct mzb_mqtt_config mqtt; /* bridge.mqtt */

    uint32_t queue_limit;    /* plugin.queue_limit: messages between the broker's thread and the
                                plugin's I/O thread, default 10000 */
    uint32_t max_unacked;    /* plugin.max_unacked: QoS 1/2 messages kept until acknowledged,
                                default 100000 */
    uint32_t qos2_dedup_ms;  /* plugin.qos2_dedup_ms: window for dropping QoS 2 repeats, default
                                5000, 0 = off */
    uint32_t log_interval_s; /* plugin.log_interval_s: at most one drop line per cause per this
                                many seconds, default 10 */

    size_t route_count;
    struct mzb_route *routes;
    size_t service_count;
    char **services; /* distinct service names, in order of first use */
};

/*
 * Reads and validates the file at path. On success returns MZB_CONFIG_OK and
 * sets *out to a new config the caller frees with mzb_config_destroy. On
 * failure returns an error code, leaves *out NULL and fills *err (err may be
 * NULL). Blocks on file I/O only.
 */
int mzb_config_load_file(const char *path, struct mzb_config **out, struct mzb_config_error *err);

/* The same for text held in memory; name is used as the file name in errors. */
int mzb_config_load_string(const char *text, size_t len, const char *name, struct mzb_config **out,
                           struct mzb_config_error *err);

/* Frees cfg and sets *cfg to NULL. Accepts NULL and a pointer to NULL. */
void mzb_config_destroy(struct mzb_config **cfg);

/*
 * Writes err as one line: "FILE:LINE:COLUMN: PATH: TEXT" (parts that are
 * unknown are left out). Returns buf.
 */
char *mzb_config_error_format(const struct mzb_config_error *err, char *buf, size_t cap);

/* Looks a service up by name; returns its index or -1. */
int mzb_config_service_index(const struct mzb_config *cfg, const char *name);

#endif
