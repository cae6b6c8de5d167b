/*
 * routes: the routing state the broker's thread uses per message, built from
 * a loaded configuration: the route tree, and per-service scratch arrays that
 * let a lookup pick one route per service without allocating.
 *
 * Built and swapped on the broker's thread (plugin init and RELOAD); a
 * lookup is safe on the broker's thread and not thread-safe.
 */
#ifndef MZBP_ROUTES_H
#define MZBP_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "mzb_config.h"

struct mzbp_routes {
    struct mzb_config *cfg; /* owned */
    struct mzb_route_tree *tree;

    /* Scratch for one lookup, indexed by service index. */
    uint32_t generation;
    uint32_t *stamp;  /* generation in which the service was last hit */
    uint32_t *chosen; /* the route picked for the service in that generation */

    /* The result of the last lookup: the services hit, ordered by their chosen route. */
    uint32_t *hits;
    size_t hit_count;
};

enum mzbp_routes_err {
    MZBP_ROUTES_OK = 0,
    MZBP_ROUTES_E_NOMEM = 1,
    MZBP_ROUTES_E_SERVICE = 2, /* a route names a service index the config does not have */
};

/*
 * Builds routing state for cfg. On MZBP_ROUTES_OK *out owns cfg; on failure
 * *out is NULL and the caller still owns cfg.
 */
int mzbp_routes_build(struct mzb_config *cfg, struct mzbp_routes **out);

/* Frees r, its config and its tree, and sets *r to NULL. Accepts NULL. */
void mzbp_routes_destroy(struct mzbp_routes **r);

/*
 * Finds every route whose filter matches topic and keeps one per service: the
 * lowest route index among that service's matches. Returns the number of
 * services hit; r->hits[0..n) then names them, ordered by their chosen route,
 * and r->chosen[service] names that route. Never allocates.
 */
size_t mzbp_routes_select(struct mzbp_routes *r, const char *topic, size_t len);

/* The route chosen for the i-th service hit by the last mzbp_routes_select. */
const struct mzb_route *mzbp_routes_hit(const struct mzbp_routes *r, size_t i);

#endif
