#include "brg_bridge.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t offset;
} counter_fields[] = {
#define BRG_COUNTER_ENTRY(n) {#n, offsetof(struct brg_counters, n)},
    BRG_COUNTER_LIST(BRG_COUNTER_ENTRY)
#undef BRG_COUNTER_ENTRY
};

#define COUNTER_COUNT (sizeof(counter_fields) / sizeof(counter_fields[0]))

static uint64_t counter_value(const struct brg_counters *c, size_t i)
{
    uint64_t v;

    memcpy(&v, (const char *)c + counter_fields[i].offset, sizeof(v));
    return v;
}

/* Totals over every service, for the log line and the summary. */
struct totals {
    size_t queued;
    size_t in_flight;
};

static struct totals sum_services(const struct brg_registry *reg)
{
    struct totals t = {0, 0};

    for (const struct brg_link *l = reg->services.next; l != &reg->services; l = l->next) {
        const struct brg_service *svc = brg_container_of(l, struct brg_service, link);

        t.queued += svc->queued;
        t.in_flight += svc->in_flight;
    }
    return t;
}

/* json_object_set_new reports failure; a missing key only makes a poorer answer. */
static void put(json_t *obj, const char *key, json_t *value)
{
    (void)json_object_set_new(obj, key, value);
}

/* Every counter as a top-level key, and "malformed": all unparsable messages together. */
static void put_counters(json_t *obj, const struct brg_counters *c)
{
    uint64_t malformed =
        c->plugin_frames_malformed + c->dispatches_malformed + c->handler_frames_malformed;

    for (size_t i = 0; i < COUNTER_COUNT; i++) {
        put(obj, counter_fields[i].name, json_integer((json_int_t)counter_value(c, i)));
    }
    put(obj, "malformed", json_integer((json_int_t)malformed));
}

/* "idle": handlers holding nothing; "ready": handlers with free credit; "credit": their sum. */
static json_t *service_json(const struct brg_service *svc)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "queued", (json_int_t)svc->queued,
                     "in_flight", (json_int_t)svc->in_flight, "handlers",
                     (json_int_t)svc->handler_count, "idle", (json_int_t)svc->idle_count, "ready",
                     (json_int_t)svc->ready_count, "credit", (json_int_t)svc->credit, "received",
                     (json_int_t)svc->received, "served", (json_int_t)svc->served);
}

static json_t *services_json(const struct brg_registry *reg)
{
    json_t *obj = json_object();

    for (const struct brg_link *l = reg->services.next; obj && l != &reg->services; l = l->next) {
        const struct brg_service *svc = brg_container_of(l, struct brg_service, link);

        put(obj, svc->name, service_json(svc));
    }
    return obj;
}

/*
 * A plugin's entry is its own statistics object, so readers find the plugin's
 * counters at the top; the bridge adds what it knows where the plugin did not
 * use the key already.
 */
static json_t *plugin_json(const struct brg_plugin *pl, uint64_t now_ms)
{
    char id_hex[65];
    char inst_hex[17];
    json_t *obj = json_is_object(pl->stats) ? json_deep_copy(pl->stats) : json_object();
    json_t *own = json_object();

    if (!obj || !own) {
        json_decref(obj);
        json_decref(own);
        return NULL;
    }
    if (pl->stats && !json_is_object(pl->stats)) {
        put(obj, "stats", json_incref(pl->stats));
    }
    put(own, "routing_id", json_string(brg_hex(pl->id, pl->id_len, id_hex, sizeof(id_hex))));
    put(own, "instance",
        json_string(brg_hex(pl->instance, BRG_INSTANCE_SIZE, inst_hex, sizeof(inst_hex))));
    put(own, "last_seen_ms_ago", json_integer((json_int_t)(now_ms - pl->last_seen_ms)));
    put(own, "acks_waiting", json_integer((json_int_t)pl->acks.count));
    put(own, "retries_waiting", json_integer((json_int_t)pl->retries.count));
    (void)json_object_update_missing(obj, own);
    json_decref(own);
    return obj;
}

/* Plugins that have sent a HEARTBEAT, oldest first. */
static json_t *plugins_json(const struct brg_plugins *p, uint64_t now_ms)
{
    json_t *arr = json_array();

    for (const struct brg_link *l = p->all.next; arr && l != &p->all; l = l->next) {
        const struct brg_plugin *pl = brg_container_of(l, struct brg_plugin, link);

        if (pl->has_instance) {
            (void)json_array_append_new(arr, plugin_json(pl, now_ms));
        }
    }
    return arr;
}

static json_t *bridge_json(struct brg_bridge *b, uint64_t now_ms)
{
    char inst_hex[17];
    struct totals t = sum_services(b->reg);

    return json_pack(
        "{s:s,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "instance",
        brg_hex(b->instance, sizeof(b->instance), inst_hex, sizeof(inst_hex)), "uptime_s",
        (json_int_t)((now_ms - b->started_ms) / 1000u), "mqtt_connected",
        brg_mqtt_connected(b->mqtt), "replies_kept", (json_int_t)brg_mqtt_backlog(b->mqtt),
        "services", (json_int_t)b->reg->service_count, "handlers",
        (json_int_t)b->reg->handler_count, "requests", (json_int_t)b->reg->request_count, "queued",
        (json_int_t)t.queued, "in_flight", (json_int_t)t.in_flight, "heartbeat_ms",
        (json_int_t)b->limits.heartbeat_ms, "liveness", (json_int_t)b->limits.liveness, "max_queue",
        (json_int_t)b->limits.max_queue);
}

json_t *brg_stats_json(struct brg_bridge *b, uint64_t now_ms)
{
    json_t *root = json_object();

    if (!root) {
        return NULL;
    }
    put_counters(root, &b->counters);
    put(root, "bridge", bridge_json(b, now_ms));
    put(root, "services", services_json(b->reg));
    put(root, "plugins", plugins_json(&b->plugins, now_ms));
    return root;
}

void brg_stats_log(struct brg_bridge *b)
{
    char line[1800];
    size_t n = 0;
    struct totals t = sum_services(b->reg);

    n += (size_t)snprintf(line, sizeof(line),
                          "stats services=%zu handlers=%zu queued=%zu in_flight=%zu "
                          "replies_kept=%zu mqtt=%s",
                          b->reg->service_count, b->reg->handler_count, t.queued, t.in_flight,
                          brg_mqtt_backlog(b->mqtt), brg_mqtt_connected(b->mqtt) ? "up" : "down");
    for (size_t i = 0; i < COUNTER_COUNT && n < sizeof(line); i++) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%llu", counter_fields[i].name,
                              (unsigned long long)counter_value(&b->counters, i));
    }
    mzb_log(MZB_LOG_INFO, "%s", line);
}
