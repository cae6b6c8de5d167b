/*
 * The plugin's entry points (Mosquitto plugin API version 5): load the
 * configuration, start the I/O thread, register the callbacks; reload on
 * SIGHUP; stop cleanly.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "hash.h"
#include "mzb_config.h"
#include "plugin.h"

#define EXPORT __attribute__((visibility("default")))
#define CONFIG_OPTION "config"

static int on_reload(int event, void *event_data, void *userdata);

static const struct {
    int event;
    MOSQ_FUNC_generic_callback fn;
} callbacks[] = {
    {MOSQ_EVT_MESSAGE, mzbp_on_message},
    {MOSQ_EVT_TICK, mzbp_on_tick},
    {MOSQ_EVT_RELOAD, on_reload},
};

#define CALLBACK_COUNT (sizeof(callbacks) / sizeof(callbacks[0]))

/* Random bits for ids and the hash seed; the clock stands in if the kernel has none yet. */
static uint64_t random_u64(void)
{
    uint64_t v = 0;
    struct timespec ts;
    struct mzbp_hash h;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v)) {
        return v;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    mzbp_hash_init(&h, (uint64_t)ts.tv_nsec);
    mzbp_hash_u64(&h, (uint64_t)ts.tv_sec);
    mzbp_hash_u64(&h, (uint64_t)getpid());
    mzbp_hash_u64(&h, (uint64_t)(uintptr_t)&v);
    return mzbp_hash_final(&h);
}

static const char *find_option(const struct mosquitto_opt *options, int count, const char *key)
{
    for (int i = 0; i < count; i++) {
        if (options[i].key != NULL && strcmp(options[i].key, key) == 0) {
            return options[i].value;
        }
    }
    return NULL;
}

static void log_config_error(const struct mzb_config_error *err, const char *what)
{
    char line[1200];

    mzb_config_error_format(err, line, sizeof(line));
    mosquitto_log_printf(MOSQ_LOG_ERR, MZBP_LOG_PREFIX "%s%s", what, line);
}

/* Loads the file and builds its routing state; logs and returns NULL on failure. */
static struct mzbp_routes *load_routes(const char *path, const char *what)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    struct mzbp_routes *routes = NULL;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = mzb_config_load_file(path, &cfg, &err);
    if (rc != MZB_CONFIG_OK) {
        log_config_error(&err, what);
        return NULL;
    }
    rc = mzbp_routes_build(cfg, &routes);
    if (rc != MZBP_ROUTES_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             MZBP_LOG_PREFIX "%s%s: cannot build the route table (%s)", what, path,
                             rc == MZBP_ROUTES_E_NOMEM ? "out of memory" : "bad service");
        mzb_config_destroy(&cfg);
        return NULL;
    }
    return routes;
}

static void free_ctx(struct mzbp_ctx *ctx)
{
    mzbp_io_stop(&ctx->io);
    mzbp_routes_destroy(&ctx->routes);
    free(ctx->endpoint);
    free(ctx->config_path);
    free(ctx);
}

static int start_io(struct mzbp_ctx *ctx)
{
    const struct mzb_config *cfg = ctx->routes->cfg;
    struct mzbp_io_settings settings = {
        .endpoint = cfg->plugin_endpoint,
        .queue_limit = cfg->queue_limit,
        .max_unacked = cfg->max_unacked,
        .instance = ctx->instance,
    };
    struct mzbp_io_error err;

    ctx->endpoint = strdup(cfg->plugin_endpoint);
    ctx->queue_limit = cfg->queue_limit;
    ctx->max_unacked = cfg->max_unacked;
    if (ctx->endpoint == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, MZBP_LOG_PREFIX "out of memory");
        return -1;
    }
    if (mzbp_io_start(&settings, &ctx->stats, &ctx->io, &err) != 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, MZBP_LOG_PREFIX "%s: %s", ctx->config_path, err.text);
        return -1;
    }
    return 0;
}

static void unregister_callbacks(struct mzbp_ctx *ctx, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        (void)mosquitto_callback_unregister(ctx->pid, callbacks[i].event, callbacks[i].fn, NULL);
    }
}

static int register_callbacks(struct mzbp_ctx *ctx)
{
    for (size_t i = 0; i < CALLBACK_COUNT; i++) {
        int rc =
            mosquitto_callback_register(ctx->pid, callbacks[i].event, callbacks[i].fn, NULL, ctx);

        if (rc != MOSQ_ERR_SUCCESS) {
            mosquitto_log_printf(MOSQ_LOG_ERR,
                                 MZBP_LOG_PREFIX "cannot register callback for event %d "
                                                 "(error %d); is the plugin loaded twice "
                                                 "for one listener?",
                                 callbacks[i].event, rc);
            unregister_callbacks(ctx, i);
            return rc;
        }
    }
    return MOSQ_ERR_SUCCESS;
}

static struct mzbp_ctx *new_ctx(mosquitto_plugin_id_t *pid, const char *path)
{
    struct mzbp_ctx *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL) {
        return NULL;
    }
    ctx->pid = pid;
    ctx->config_path = strdup(path);
    if (ctx->config_path == NULL) {
        free(ctx);
        return NULL;
    }
    mzbp_stats_init(&ctx->stats);
    mzbp_dedup_clear(&ctx->dedup);
    ctx->hash_seed = random_u64();
    ctx->instance = random_u64();
    ctx->id_prefix = random_u64() & (UINT64_C(0xffffff) << 40);
    return ctx;
}

static void log_started(const struct mzbp_ctx *ctx)
{
    const struct mzb_config *cfg = ctx->routes->cfg;

    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         MZBP_LOG_PREFIX "%zu routes for %zu services from %s; dispatching to "
                                         "%s (plugin instance %016" PRIx64 ")",
                         cfg->route_count, cfg->service_count, ctx->config_path, ctx->endpoint,
                         ctx->instance);
}

EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == MOSQ_PLUGIN_VERSION) {
            return MOSQ_PLUGIN_VERSION;
        }
    }
    return -1;
}

EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                                 struct mosquitto_opt *options, int option_count)
{
    const char *path = find_option(options, option_count, CONFIG_OPTION);
    struct mzbp_ctx *ctx;
    int rc;

    if (path == NULL || path[0] == '\0') {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             MZBP_LOG_PREFIX "plugin_opt_config is not set: add "
                                             "\"plugin_opt_config /path/to/config.json\" after "
                                             "the plugin line in mosquitto.conf");
        return MOSQ_ERR_INVAL;
    }
    ctx = new_ctx(identifier, path);
    if (ctx == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, MZBP_LOG_PREFIX "out of memory");
        return MOSQ_ERR_NOMEM;
    }

    ctx->routes = load_routes(path, "");
    if (ctx->routes == NULL || start_io(ctx) != 0) {
        free_ctx(ctx);
        return MOSQ_ERR_INVAL;
    }
    mzbp_tick_init(ctx, mzb_now_ms());
    rc = register_callbacks(ctx);
    if (rc != MOSQ_ERR_SUCCESS) {
        free_ctx(ctx);
        return rc;
    }

    log_started(ctx);
    *userdata = ctx;
    return MOSQ_ERR_SUCCESS;
}

EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    struct mzbp_ctx *ctx = userdata;
    uint64_t held;

    (void)options;
    (void)option_count;
    if (ctx == NULL) {
        return MOSQ_ERR_SUCCESS;
    }
    unregister_callbacks(ctx, CALLBACK_COUNT);
    mzbp_io_stop(&ctx->io);
    held = mzbp_stat_get(&ctx->stats.unacked);
    if (held > 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             MZBP_LOG_PREFIX "stopping with %" PRIu64 " messages the bridge at "
                                             "%s has not acknowledged; they are dropped",
                             held, ctx->endpoint);
    }
    free_ctx(ctx);
    return MOSQ_ERR_SUCCESS;
}

/* Settings the running I/O thread was started with cannot change without a restart. */
static void warn_fixed_settings(const struct mzbp_ctx *ctx, const struct mzb_config *cfg)
{
    if (strcmp(cfg->plugin_endpoint, ctx->endpoint) != 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             MZBP_LOG_PREFIX "%s: bridge.plugin_endpoint changed to \"%s\"; the "
                                             "plugin keeps using \"%s\" until mosquitto "
                                             "restarts",
                             ctx->config_path, cfg->plugin_endpoint, ctx->endpoint);
    }
    if (cfg->queue_limit != ctx->queue_limit || cfg->max_unacked != ctx->max_unacked) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             MZBP_LOG_PREFIX "%s: plugin.queue_limit and plugin.max_unacked "
                                             "take effect when mosquitto restarts; %u and %u "
                                             "stay in force",
                             ctx->config_path, ctx->queue_limit, ctx->max_unacked);
    }
}

/*
 * SIGHUP. Returns MOSQ_ERR_PLUGIN_DEFER in every case: Mosquitto 2.0 stops
 * calling later plugins' reload handlers, and skips re-initialising older
 * auth plugins it has just cleaned up, as soon as one handler returns
 * anything else.
 */
static int on_reload(int event, void *event_data, void *userdata)
{
    struct mzbp_ctx *ctx = userdata;
    struct mzbp_routes *fresh;

    (void)event;
    (void)event_data;
    fresh = load_routes(ctx->config_path, "reload failed, the previous routes stay in force: ");
    if (fresh == NULL) {
        return MOSQ_ERR_PLUGIN_DEFER;
    }
    warn_fixed_settings(ctx, fresh->cfg);
    mzbp_routes_destroy(&ctx->routes);
    ctx->routes = fresh;
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         MZBP_LOG_PREFIX "reloaded %s: %zu routes for %zu services",
                         ctx->config_path, fresh->cfg->route_count, fresh->cfg->service_count);
    return MOSQ_ERR_PLUGIN_DEFER;
}
