/*
 * brg_registry: the bridge's bookkeeping, without any I/O. Services by name,
 * each with a FIFO of waiting requests, its handler list and a min-heap of
 * the handlers with free credit (fewest requests in flight first, then least
 * recently used); handlers by routing id, each with the requests it holds;
 * requests by message id (to drop resends) and by deadline.
 *
 * Nothing here sends or logs: the caller (brg_bridge) decides what a state
 * change means on the wire. Single-threaded.
 */
#ifndef BRG_REGISTRY_H
#define BRG_REGISTRY_H

#include "brg_heap.h"
#include "brg_list.h"
#include "brg_map.h"
#include "mzb_meta.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define BRG_NAME_MAX 255 /* longest service name accepted */
#define BRG_KEY_SIZE 8   /* the MDP client address the bridge makes per request */

/*
 * brg_request_new copies payloads up to this size and keeps larger frames as
 * they are: libzmq hands over small received frames as slices of its 8 KiB
 * receive buffer, and one such frame kept waiting in a queue would pin the
 * whole buffer.
 */
#define BRG_PAYLOAD_COPY_MAX 8192

/* Credit: how many requests a handler may hold at once (docs/protocol.md section 3). */
#define BRG_CREDIT_DEFAULT 1 /* a READY without a credit frame: plain MDP */
#define BRG_CREDIT_MAX 1000

/*
 * Services no route names exist only for MDP clients and workers; peers could
 * invent any number of them, so at most this many are kept at once.
 */
#define BRG_MAX_UNCONFIGURED 1000

enum brg_origin {
    BRG_ORIGIN_PLUGIN = 0, /* a DISPATCH from the broker plugin */
    BRG_ORIGIN_CLIENT = 1, /* an MDP client request on the handler socket */
};

enum brg_req_state {
    BRG_REQ_NEW = 0,      /* created, not queued yet */
    BRG_REQ_QUEUED = 1,   /* waiting in its service's queue */
    BRG_REQ_INFLIGHT = 2, /* sent to a handler */
    BRG_REQ_LATE = 3,     /* answered with a timeout while a handler still holds it */
    BRG_REQ_DETACHED = 4, /* taken back from a handler that was dropped */
};

/* What brg_service_open did. */
enum brg_open {
    BRG_OPEN_OK = 0,
    BRG_OPEN_BAD_NAME = 1, /* not 1..BRG_NAME_MAX bytes of UTF-8 without NUL */
    BRG_OPEN_LIMIT = 2,    /* a new unconfigured service would pass the limit */
    BRG_OPEN_NO_MEMORY = 3,
};

/* What becomes of a new request at its service (brg_service_admit). */
enum brg_admit {
    BRG_ADMIT_QUEUE = 0,       /* into the queue */
    BRG_ADMIT_NO_HANDLER = 1,  /* a plugin request with no live handler: error reply */
    BRG_ADMIT_OVERLOADED = 2,  /* a plugin request at a full queue: error reply */
    BRG_ADMIT_RETRY = 3,       /* a QoS 1/2 event at a full queue: RETRY, the plugin resends */
    BRG_ADMIT_DROP_EVENT = 4,  /* a QoS 0 event at a full queue: dropped */
    BRG_ADMIT_DROP_CLIENT = 5, /* an MDP client request at a full queue: dropped */
};

/* What to do with a request a dropped handler held (brg_request_lost_action). */
enum brg_lost {
    BRG_LOST_REQUEUE = 0,      /* back to the head of its service queue */
    BRG_LOST_TIMEOUT = 1,      /* past its deadline: answer with a timeout error */
    BRG_LOST_ERROR = 2,        /* QoS 0 request: answer with a handler-lost error */
    BRG_LOST_DROP = 3,         /* QoS 0 event: drop and count */
    BRG_LOST_ALREADY_DONE = 4, /* it was answered already (timed out): just free it */
};

struct brg_service {
    struct brg_link link;       /* in brg_registry.services */
    struct brg_link queue;      /* waiting requests, oldest first */
    struct brg_link handlers;   /* every handler of this service */
    struct brg_handler **ready; /* min-heap of handlers with free credit (brg_service_pick) */
    size_t ready_count;
    size_t ready_cap; /* at least handler_count, so the heap never grows on a reply */
    uint64_t clock;   /* stamps handlers when their load changes, for least recently used */
    size_t queued;
    size_t idle_count; /* handlers holding no request */
    size_t handler_count;
    size_t credit;     /* the credit of all its handlers together */
    size_t in_flight;  /* requests held by handlers, timed-out ones included */
    uint64_t received; /* requests accepted for this service */
    uint64_t served;   /* replies received in time */
    int configured;    /* named by a route: kept even when empty */
    const char *shown; /* the name for log lines: control characters shown as '?' */
    size_t name_len;
    char name[]; /* NUL-terminated, valid UTF-8; shown follows it */
};

struct brg_handler {
    struct brg_link link;         /* in brg_registry.handlers */
    struct brg_link service_link; /* in service->handlers */
    struct brg_link held;         /* the requests it holds, oldest first */
    struct brg_service *service;
    size_t in_flight;   /* requests in held */
    size_t credit;      /* the most it may hold: 1..BRG_CREDIT_MAX */
    size_t ready_index; /* position in service->ready, or BRG_HEAP_NONE when it has no credit */
    uint64_t stamp;     /* service->clock when its load last changed */
    uint64_t expiry_ms; /* dropped when silent past this time while it holds nothing */
    uint64_t served;
    size_t id_len;
    unsigned char id[]; /* ZeroMQ routing id */
};

struct brg_request {
    uint64_t key; /* unique among live requests; the MDP client address */
    int origin;   /* enum brg_origin */
    int state;    /* enum brg_req_state */
    struct brg_service *service;
    struct brg_handler *handler;   /* while INFLIGHT or LATE */
    struct brg_link link;          /* in service->queue while QUEUED, in handler->held while held */
    struct brg_heap_node deadline; /* request mode only */
    int has_deadline;
    int tracked; /* in the message-id table */
    uint64_t arrival_ms;
    uint8_t mode; /* enum mzb_mode */
    uint8_t qos;
    uint8_t protocol;
    uint8_t reply_qos;
    uint64_t msg_id;
    unsigned char *peer; /* routing id of the plugin or MDP client that sent it */
    size_t peer_len;
    zmq_msg_t payload;
    struct mzb_bytes reply_topic; /* point into meta[] */
    struct mzb_bytes correlation;
    int has_reply_topic;
    int has_correlation;
    size_t meta_len;
    uint8_t meta[]; /* the metadata frame, as received or as made for an MDP client */
};

/*
 * What brg_request_new needs. meta_frame is copied; the payload is copied when
 * small and moved out of *payload when large; the caller closes *payload either way.
 */
struct brg_request_init {
    int origin;
    struct brg_service *service;
    const uint8_t *meta_frame;
    size_t meta_len;
    const struct mzb_meta *meta; /* meta_frame decoded */
    zmq_msg_t *payload;          /* may be NULL: an empty payload */
    const void *peer;
    size_t peer_len;
    uint64_t now_ms;
};

struct brg_registry {
    struct brg_map *services_by_name;
    struct brg_link services; /* in order of creation */
    size_t service_count;
    size_t unconfigured_count; /* services no route names */
    struct brg_map *handlers_by_id;
    struct brg_link handlers;
    size_t handler_count;
    struct brg_map *requests_by_msg_id;
    struct brg_heap deadlines;
    size_t request_count;
    uint64_t next_key;
};

/* Returns a new empty registry whose request keys start at first_key, or NULL. */
struct brg_registry *brg_registry_new(uint64_t first_key);

/* Frees the registry with every service, handler and request. Accepts NULL / pointer to NULL. */
void brg_registry_destroy(struct brg_registry **reg);

/* 1 when name is acceptable as a service name: 1..BRG_NAME_MAX bytes of UTF-8 without NUL. */
int brg_service_name_ok(const void *name, size_t len);

struct brg_service *brg_service_find(const struct brg_registry *reg, const void *name, size_t len);

/*
 * Finds the service or creates it (empty, unconfigured), with no limit.
 * Returns NULL when out of memory or the name is bad.
 */
struct brg_service *brg_service_get(struct brg_registry *reg, const void *name, size_t len);

/*
 * Finds the service, or creates it (empty, unconfigured) when fewer than
 * max_unconfigured unconfigured services exist. Returns enum brg_open and
 * sets *out on BRG_OPEN_OK only.
 */
int brg_service_open(struct brg_registry *reg, const void *name, size_t len,
                     size_t max_unconfigured, struct brg_service **out);

/*
 * Makes exactly the services in names[0..count) configured (creating those
 * that do not exist) and every other one unconfigured. Returns 0, or -1 when
 * out of memory (the names not reached stay as they were).
 */
int brg_registry_configure(struct brg_registry *reg, char *const *names, size_t count);

/*
 * Decides what becomes of a new request of this origin, mode and QoS at svc
 * (enum brg_admit). Requests taken back from a dropped handler do not come
 * here: they go to the head of the queue whatever its length.
 */
int brg_service_admit(const struct brg_service *svc, int origin, int mode, int qos,
                      uint32_t max_queue);

/* Frees every service that is not configured and has no handler and no request. */
size_t brg_registry_collect(struct brg_registry *reg);

struct brg_handler *brg_handler_find(const struct brg_registry *reg, const void *id, size_t len);

/*
 * Registers a handler for svc that may hold up to credit requests at once
 * (1..BRG_CREDIT_MAX; the caller checked), holding none, the most recently
 * used of its service. NULL when out of memory.
 */
struct brg_handler *brg_handler_add(struct brg_registry *reg, struct brg_service *svc,
                                    const void *id, size_t len, size_t credit, uint64_t expiry_ms);

/*
 * Unregisters and frees h. Every request it held is appended to the list
 * taken (initialised by the caller), oldest first, linked by its link member:
 * DETACHED (or still LATE), without handler, still in the deadline heap and
 * message-id table. The caller takes each one out of taken before acting on it.
 */
void brg_handler_remove(struct brg_registry *reg, struct brg_handler *h, struct brg_link *taken);

/*
 * The handler that should get svc's next request: of those with free credit,
 * the one holding fewest requests, and of those the least recently used.
 * NULL when every handler is at its credit. O(1); it stays registered.
 */
struct brg_handler *brg_service_pick(const struct brg_service *svc);

/* Makes h the most recently used among handlers of its load (its send failed: others first). */
void brg_handler_touch(struct brg_handler *h);

/*
 * The request with this key that h holds, or NULL. Searched oldest first:
 * handlers mostly answer in order, so this is usually the first one.
 */
struct brg_request *brg_handler_find_request(const struct brg_handler *h, uint64_t key);

/* Restarts h's silence clock: it expires window_ms after now_ms unless heard from again. */
void brg_handler_refresh(struct brg_handler *h, uint64_t now_ms, uint64_t window_ms);

/*
 * 1 when h holds no request and is silent past its expiry. A handler holding
 * one never expires here: MDP workers send no heartbeats while they work, so
 * its connection (ZMTP heartbeats, EHOSTUNREACH) is what tells it is gone.
 */
int brg_handler_expired(const struct brg_handler *h, uint64_t now_ms);

/*
 * Creates a request (state NEW) with the next key; in request mode it enters
 * the deadline heap at arrival + timeout_ms. Returns NULL when out of memory.
 */
struct brg_request *brg_request_new(struct brg_registry *reg, const struct brg_request_init *init);

/* Takes r out of every structure (queue, handler, heap, table) and frees it. Accepts NULL. */
void brg_request_free(struct brg_registry *reg, struct brg_request *r);

/* Appends r (NEW or DETACHED) to its service queue, or puts it first when at_head. */
void brg_request_enqueue(struct brg_request *r, int at_head);

/* Takes the oldest waiting request out of svc's queue, or returns NULL. */
struct brg_request *brg_service_dequeue(struct brg_service *svc);

/* Hands r (taken from the queue) to h, which has free credit: r INFLIGHT, held by h. O(log n). */
void brg_request_assign(struct brg_request *r, struct brg_handler *h);

/* 1 when svc has max_queue or more requests waiting. */
int brg_service_full(const struct brg_service *svc, uint32_t max_queue);

/* Records r under its message id so a resend is recognised. Returns 0, or -1 out of memory. */
int brg_request_track(struct brg_registry *reg, struct brg_request *r);

/* The live tracked request with this message id, or NULL. */
struct brg_request *brg_request_find_msg(const struct brg_registry *reg, uint64_t msg_id);

/* Replaces the routing id answers for r go to (a resend came over a new connection). */
int brg_request_set_peer(struct brg_request *r, const void *peer, size_t len);

/*
 * Returns the earliest request whose deadline is at or before now_ms and
 * takes it out of the heap, or NULL when none is due.
 */
struct brg_request *brg_registry_expired(struct brg_registry *reg, uint64_t now_ms);

/* The earliest deadline in the heap, or UINT64_MAX. */
uint64_t brg_registry_next_deadline(const struct brg_registry *reg);

/* An in-flight request was answered with a timeout: it is finished but its handler holds it. */
void brg_request_mark_late(struct brg_registry *reg, struct brg_request *r);

/* Decides the fate of a request taken back from a dropped handler (enum brg_lost). */
int brg_request_lost_action(const struct brg_request *r, uint64_t now_ms);

/* The request's key as the 8-byte MDP client address. */
void brg_request_key_bytes(const struct brg_request *r, uint8_t out[BRG_KEY_SIZE]);

#endif
