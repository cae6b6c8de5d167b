#include "routes.h"

#include <stdlib.h>
#include <string.h>

#include "mzb_topic.h"

static int alloc_scratch(struct mzbp_routes *r, size_t services)
{
    size_t n = services > 0 ? services : 1;

    r->stamp = calloc(n, sizeof(*r->stamp));
    r->chosen = calloc(n, sizeof(*r->chosen));
    r->hits = calloc(n, sizeof(*r->hits));
    return r->stamp && r->chosen && r->hits ? 0 : -1;
}

static int fill_tree(struct mzbp_routes *r)
{
    const struct mzb_config *cfg = r->cfg;

    for (size_t i = 0; i < cfg->route_count; i++) {
        if (cfg->routes[i].service_index >= cfg->service_count) {
            return MZBP_ROUTES_E_SERVICE;
        }
        if (mzb_route_tree_add(r->tree, cfg->routes[i].filter, (uint32_t)i) != MZB_TOPIC_OK) {
            return MZBP_ROUTES_E_NOMEM;
        }
    }
    return MZBP_ROUTES_OK;
}

static void free_parts(struct mzbp_routes *r)
{
    mzb_route_tree_destroy(&r->tree);
    free(r->stamp);
    free(r->chosen);
    free(r->hits);
    free(r);
}

int mzbp_routes_build(struct mzb_config *cfg, struct mzbp_routes **out)
{
    struct mzbp_routes *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (r == NULL) {
        return MZBP_ROUTES_E_NOMEM;
    }
    r->cfg = cfg;
    r->tree = mzb_route_tree_new();
    if (r->tree == NULL || alloc_scratch(r, cfg->service_count) != 0) {
        free_parts(r);
        return MZBP_ROUTES_E_NOMEM;
    }

    rc = fill_tree(r);
    if (rc != MZBP_ROUTES_OK) {
        free_parts(r);
        return rc;
    }
    *out = r;
    return MZBP_ROUTES_OK;
}

void mzbp_routes_destroy(struct mzbp_routes **rp)
{
    struct mzbp_routes *r = rp ? *rp : NULL;

    if (r == NULL) {
        return;
    }
    mzb_config_destroy(&r->cfg);
    free_parts(r);
    *rp = NULL;
}

static void on_match(uint32_t route_index, void *arg)
{
    struct mzbp_routes *r = arg;
    uint32_t service = r->cfg->routes[route_index].service_index;

    if (r->stamp[service] != r->generation) {
        r->stamp[service] = r->generation;
        r->chosen[service] = route_index;
        r->hits[r->hit_count++] = service;
    } else if (route_index < r->chosen[service]) {
        r->chosen[service] = route_index;
    }
}

/* Insertion sort: a topic hits few services, and a stable route order keeps logs readable. */
static void sort_hits(struct mzbp_routes *r)
{
    for (size_t i = 1; i < r->hit_count; i++) {
        uint32_t s = r->hits[i];
        size_t j = i;

        while (j > 0 && r->chosen[r->hits[j - 1]] > r->chosen[s]) {
            r->hits[j] = r->hits[j - 1];
            j--;
        }
        r->hits[j] = s;
    }
}

static void next_generation(struct mzbp_routes *r)
{
    r->generation++;
    if (r->generation == 0) {
        /* After 2^32 lookups old stamps could look current again; start over. */
        memset(r->stamp, 0,
               (r->cfg->service_count ? r->cfg->service_count : 1) * sizeof(*r->stamp));
        r->generation = 1;
    }
}

size_t mzbp_routes_select(struct mzbp_routes *r, const char *topic, size_t len)
{
    next_generation(r);
    r->hit_count = 0;
    mzb_route_tree_match(r->tree, topic, len, on_match, r);
    sort_hits(r);
    return r->hit_count;
}

const struct mzb_route *mzbp_routes_hit(const struct mzbp_routes *r, size_t i)
{
    return &r->cfg->routes[r->chosen[r->hits[i]]];
}
