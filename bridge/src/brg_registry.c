#include "brg_registry.h"

#include "brg_frames.h"
#include "mzb_topic.h"

#include <stdlib.h>
#include <string.h>

struct brg_registry *brg_registry_new(uint64_t first_key)
{
    struct brg_registry *reg = calloc(1, sizeof(*reg));

    if (!reg) {
        return NULL;
    }
    reg->services_by_name = brg_map_new();
    reg->handlers_by_id = brg_map_new();
    reg->requests_by_msg_id = brg_map_new();
    if (!reg->services_by_name || !reg->handlers_by_id || !reg->requests_by_msg_id) {
        brg_registry_destroy(&reg);
        return NULL;
    }
    brg_list_init(&reg->services);
    brg_list_init(&reg->handlers);
    brg_heap_init(&reg->deadlines);
    reg->next_key = first_key;
    return reg;
}

static void free_service(struct brg_registry *reg, struct brg_service *svc)
{
    brg_map_remove(reg->services_by_name, svc->name, svc->name_len);
    brg_list_remove(&svc->link);
    reg->service_count--;
    if (!svc->configured) {
        reg->unconfigured_count--;
    }
    free(svc);
}

void brg_registry_destroy(struct brg_registry **reg)
{
    struct brg_registry *r;

    if (!reg || !*reg) {
        return;
    }
    r = *reg;

    while (r->services_by_name && r->handlers_by_id && !brg_list_empty(&r->handlers)) {
        struct brg_handler *h = brg_container_of(r->handlers.next, struct brg_handler, link);

        brg_request_free(r, brg_handler_remove(r, h));
    }
    while (r->services_by_name && !brg_list_empty(&r->services)) {
        struct brg_service *svc = brg_container_of(r->services.next, struct brg_service, link);

        while (!brg_list_empty(&svc->queue)) {
            brg_request_free(r, brg_service_dequeue(svc));
        }
        free_service(r, svc);
    }

    brg_heap_clear(&r->deadlines);
    brg_map_destroy(&r->services_by_name);
    brg_map_destroy(&r->handlers_by_id);
    brg_map_destroy(&r->requests_by_msg_id);
    free(r);
    *reg = NULL;
}

int brg_service_name_ok(const void *name, size_t len)
{
    return len > 0 && len <= BRG_NAME_MAX && mzb_utf8_check(name, len) == MZB_TOPIC_OK;
}

struct brg_service *brg_service_find(const struct brg_registry *reg, const void *name, size_t len)
{
    return brg_map_get(reg->services_by_name, name, len);
}

struct brg_service *brg_service_get(struct brg_registry *reg, const void *name, size_t len)
{
    struct brg_service *svc = brg_service_find(reg, name, len);

    if (svc) {
        return svc;
    }
    if (!brg_service_name_ok(name, len)) {
        return NULL;
    }

    svc = calloc(1, sizeof(*svc) + 2 * (len + 1));
    if (!svc) {
        return NULL;
    }
    memcpy(svc->name, name, len);
    svc->name[len] = '\0';
    svc->name_len = len;
    svc->shown = brg_printable(name, len, svc->name + len + 1, len + 1);
    brg_list_init(&svc->queue);
    brg_list_init(&svc->idle);
    brg_list_init(&svc->handlers);
    if (brg_map_put(reg->services_by_name, svc->name, len, svc) != 0) {
        free(svc);
        return NULL;
    }
    brg_list_push_back(&reg->services, &svc->link);
    reg->service_count++;
    reg->unconfigured_count++;
    return svc;
}

int brg_service_open(struct brg_registry *reg, const void *name, size_t len,
                     size_t max_unconfigured, struct brg_service **out)
{
    struct brg_service *svc = brg_service_find(reg, name, len);

    if (!svc) {
        if (!brg_service_name_ok(name, len)) {
            return BRG_OPEN_BAD_NAME;
        }
        if (reg->unconfigured_count >= max_unconfigured) {
            return BRG_OPEN_LIMIT;
        }
        svc = brg_service_get(reg, name, len);
        if (!svc) {
            return BRG_OPEN_NO_MEMORY;
        }
    }
    *out = svc;
    return BRG_OPEN_OK;
}

static void set_configured(struct brg_registry *reg, struct brg_service *svc, int configured)
{
    if (svc->configured == configured) {
        return;
    }
    svc->configured = configured;
    if (configured) {
        reg->unconfigured_count--;
    } else {
        reg->unconfigured_count++;
    }
}

int brg_registry_configure(struct brg_registry *reg, char *const *names, size_t count)
{
    struct brg_link *l;

    for (l = reg->services.next; l != &reg->services; l = l->next) {
        set_configured(reg, brg_container_of(l, struct brg_service, link), 0);
    }
    for (size_t i = 0; i < count; i++) {
        struct brg_service *svc = brg_service_get(reg, names[i], strlen(names[i]));

        if (!svc) {
            return -1;
        }
        set_configured(reg, svc, 1);
    }
    return 0;
}

/* The caller checked the queue is full. */
static int admit_full(int origin, int mode, int qos)
{
    if (origin == BRG_ORIGIN_CLIENT) {
        return BRG_ADMIT_DROP_CLIENT;
    }
    if (mode == MZB_MODE_REQUEST) {
        return BRG_ADMIT_OVERLOADED;
    }
    return qos >= 1 ? BRG_ADMIT_RETRY : BRG_ADMIT_DROP_EVENT;
}

int brg_service_admit(const struct brg_service *svc, int origin, int mode, int qos,
                      uint32_t max_queue)
{
    if (origin == BRG_ORIGIN_PLUGIN && mode == MZB_MODE_REQUEST && svc->handler_count == 0) {
        return BRG_ADMIT_NO_HANDLER;
    }
    if (brg_service_full(svc, max_queue)) {
        return admit_full(origin, mode, qos);
    }
    return BRG_ADMIT_QUEUE;
}

size_t brg_registry_collect(struct brg_registry *reg)
{
    struct brg_link *l = reg->services.next;
    size_t freed = 0;

    while (l != &reg->services) {
        struct brg_service *svc = brg_container_of(l, struct brg_service, link);

        l = l->next;
        if (!svc->configured && svc->handler_count == 0 && svc->queued == 0 &&
            svc->in_flight == 0) {
            free_service(reg, svc);
            freed++;
        }
    }
    return freed;
}

struct brg_handler *brg_handler_find(const struct brg_registry *reg, const void *id, size_t len)
{
    return brg_map_get(reg->handlers_by_id, id, len);
}

struct brg_handler *brg_handler_add(struct brg_registry *reg, struct brg_service *svc,
                                    const void *id, size_t len, uint64_t expiry_ms)
{
    struct brg_handler *h = calloc(1, sizeof(*h) + len);

    if (!h) {
        return NULL;
    }
    memcpy(h->id, id, len);
    h->id_len = len;
    h->service = svc;
    h->expiry_ms = expiry_ms;
    if (brg_map_put(reg->handlers_by_id, h->id, len, h) != 0) {
        free(h);
        return NULL;
    }

    brg_list_push_back(&reg->handlers, &h->link);
    reg->handler_count++;
    brg_list_push_back(&svc->handlers, &h->service_link);
    svc->handler_count++;
    brg_list_init(&h->idle_link);
    brg_handler_set_idle(h);
    return h;
}

struct brg_request *brg_handler_remove(struct brg_registry *reg, struct brg_handler *h)
{
    struct brg_service *svc = h->service;
    struct brg_request *r = brg_handler_release(h);

    if (brg_link_linked(&h->idle_link)) {
        brg_list_remove(&h->idle_link);
        svc->idle_count--;
    }
    brg_list_remove(&h->service_link);
    svc->handler_count--;
    brg_list_remove(&h->link);
    reg->handler_count--;
    brg_map_remove(reg->handlers_by_id, h->id, h->id_len);
    free(h);
    return r;
}

struct brg_handler *brg_service_next_idle(struct brg_service *svc)
{
    struct brg_link *l = brg_list_pop_front(&svc->idle);

    if (!l) {
        return NULL;
    }
    svc->idle_count--;
    return brg_container_of(l, struct brg_handler, idle_link);
}

void brg_handler_set_idle(struct brg_handler *h)
{
    if (brg_link_linked(&h->idle_link) || h->current) {
        return;
    }
    brg_list_push_back(&h->service->idle, &h->idle_link);
    h->service->idle_count++;
}

void brg_handler_refresh(struct brg_handler *h, uint64_t now_ms, uint64_t window_ms)
{
    h->expiry_ms = now_ms + window_ms;
}

int brg_handler_expired(const struct brg_handler *h, uint64_t now_ms)
{
    return !h->current && now_ms > h->expiry_ms;
}

static void copy_meta_refs(struct brg_request *r, const struct brg_request_init *init)
{
    const struct mzb_meta *m = init->meta;

    r->mode = m->mode;
    r->qos = m->qos;
    r->protocol = m->protocol;
    r->reply_qos = m->reply_qos;
    r->msg_id = m->msg_id;

    /* The decoded fields point into the caller's frame; rebase them onto our copy. */
    if (m->has_reply_topic) {
        r->reply_topic.ptr = r->meta + (m->reply_topic.ptr - init->meta_frame);
        r->reply_topic.len = m->reply_topic.len;
        r->has_reply_topic = 1;
    }
    if (m->has_correlation) {
        r->correlation.ptr = r->meta + (m->correlation.ptr - init->meta_frame);
        r->correlation.len = m->correlation.len;
        r->has_correlation = 1;
    }
}

/*
 * libzmq hands over small received frames as slices of its 8 KiB receive
 * buffer; one such frame kept waiting in a queue pins the whole buffer. Small
 * payloads are therefore copied out, large ones (their own allocation) moved.
 */
#define PAYLOAD_COPY_MAX 8192

static int init_payload(struct brg_request *r, zmq_msg_t *payload)
{
    size_t size = payload ? zmq_msg_size(payload) : 0;

    if (payload && size > PAYLOAD_COPY_MAX) {
        if (zmq_msg_init(&r->payload) != 0) {
            return -1;
        }
        if (zmq_msg_move(&r->payload, payload) != 0) {
            zmq_msg_close(&r->payload);
            return -1;
        }
        return 0;
    }
    if (zmq_msg_init_size(&r->payload, size) != 0) {
        return -1;
    }
    if (size > 0) {
        memcpy(zmq_msg_data(&r->payload), zmq_msg_data(payload), size);
    }
    return 0;
}

struct brg_request *brg_request_new(struct brg_registry *reg, const struct brg_request_init *init)
{
    struct brg_request *r = calloc(1, sizeof(*r) + init->meta_len);

    if (!r) {
        return NULL;
    }
    r->peer = malloc(init->peer_len ? init->peer_len : 1);
    if (!r->peer || init_payload(r, init->payload) != 0) {
        free(r->peer);
        free(r);
        return NULL;
    }
    if (init->peer_len > 0) {
        memcpy(r->peer, init->peer, init->peer_len);
    }
    r->peer_len = init->peer_len;
    memcpy(r->meta, init->meta_frame, init->meta_len);
    r->meta_len = init->meta_len;
    copy_meta_refs(r, init);

    r->key = reg->next_key++;
    r->origin = init->origin;
    r->state = BRG_REQ_NEW;
    r->service = init->service;
    r->arrival_ms = init->now_ms;
    brg_list_init(&r->link);
    r->deadline.index = BRG_HEAP_NONE;
    reg->request_count++;
    if (r->mode == MZB_MODE_REQUEST && r->origin == BRG_ORIGIN_PLUGIN) {
        r->deadline.when = init->now_ms + init->meta->timeout_ms;
        r->has_deadline = 1;
        if (brg_heap_push(&reg->deadlines, &r->deadline) != 0) {
            brg_request_free(reg, r);
            return NULL;
        }
    }
    init->service->received++;
    return r;
}

void brg_request_free(struct brg_registry *reg, struct brg_request *r)
{
    if (!r) {
        return;
    }

    if (r->state == BRG_REQ_QUEUED) {
        brg_list_remove(&r->link);
        r->service->queued--;
    }
    if (r->handler) {
        brg_handler_release(r->handler);
    }
    brg_heap_remove(&reg->deadlines, &r->deadline);
    if (r->tracked) {
        brg_map_remove(reg->requests_by_msg_id, &r->msg_id, sizeof(r->msg_id));
    }
    reg->request_count--;

    zmq_msg_close(&r->payload);
    free(r->peer);
    free(r);
}

void brg_request_enqueue(struct brg_request *r, int at_head)
{
    if (at_head) {
        brg_list_push_front(&r->service->queue, &r->link);
    } else {
        brg_list_push_back(&r->service->queue, &r->link);
    }
    r->service->queued++;
    r->state = BRG_REQ_QUEUED;
}

struct brg_request *brg_service_dequeue(struct brg_service *svc)
{
    struct brg_link *l = brg_list_pop_front(&svc->queue);
    struct brg_request *r;

    if (!l) {
        return NULL;
    }
    svc->queued--;
    r = brg_container_of(l, struct brg_request, link);
    r->state = BRG_REQ_DETACHED;
    return r;
}

void brg_request_assign(struct brg_request *r, struct brg_handler *h)
{
    r->handler = h;
    r->state = BRG_REQ_INFLIGHT;
    h->current = r;
    h->service->in_flight++;
}

struct brg_request *brg_handler_release(struct brg_handler *h)
{
    struct brg_request *r = h->current;

    if (!r) {
        return NULL;
    }
    h->current = NULL;
    h->service->in_flight--;
    r->handler = NULL;
    if (r->state == BRG_REQ_INFLIGHT) {
        r->state = BRG_REQ_DETACHED;
    }
    return r;
}

int brg_service_full(const struct brg_service *svc, uint32_t max_queue)
{
    return svc->queued >= max_queue;
}

int brg_request_track(struct brg_registry *reg, struct brg_request *r)
{
    if (brg_map_put(reg->requests_by_msg_id, &r->msg_id, sizeof(r->msg_id), r) != 0) {
        return -1;
    }
    r->tracked = 1;
    return 0;
}

struct brg_request *brg_request_find_msg(const struct brg_registry *reg, uint64_t msg_id)
{
    return brg_map_get(reg->requests_by_msg_id, &msg_id, sizeof(msg_id));
}

int brg_request_set_peer(struct brg_request *r, const void *peer, size_t len)
{
    unsigned char *copy;

    if (len == r->peer_len && memcmp(peer, r->peer, len) == 0) {
        return 0;
    }
    copy = malloc(len ? len : 1);
    if (!copy) {
        return -1;
    }
    if (len > 0) {
        memcpy(copy, peer, len);
    }
    free(r->peer);
    r->peer = copy;
    r->peer_len = len;
    return 0;
}

struct brg_request *brg_registry_expired(struct brg_registry *reg, uint64_t now_ms)
{
    struct brg_heap_node *top = brg_heap_top(&reg->deadlines);

    if (!top || top->when > now_ms) {
        return NULL;
    }
    brg_heap_remove(&reg->deadlines, top);
    return brg_container_of(top, struct brg_request, deadline);
}

uint64_t brg_registry_next_deadline(const struct brg_registry *reg)
{
    const struct brg_heap_node *top = brg_heap_top(&reg->deadlines);

    return top ? top->when : UINT64_MAX;
}

void brg_request_mark_late(struct brg_registry *reg, struct brg_request *r)
{
    brg_heap_remove(&reg->deadlines, &r->deadline);
    if (r->tracked) {
        brg_map_remove(reg->requests_by_msg_id, &r->msg_id, sizeof(r->msg_id));
        r->tracked = 0;
    }
    r->state = BRG_REQ_LATE;
}

int brg_request_lost_action(const struct brg_request *r, uint64_t now_ms)
{
    if (r->state == BRG_REQ_LATE) {
        return BRG_LOST_ALREADY_DONE;
    }
    if (r->origin == BRG_ORIGIN_CLIENT) {
        return BRG_LOST_REQUEUE;
    }
    if (r->mode == MZB_MODE_REQUEST) {
        if (r->has_deadline && now_ms >= r->deadline.when) {
            return BRG_LOST_TIMEOUT;
        }
        return r->qos >= 1 ? BRG_LOST_REQUEUE : BRG_LOST_ERROR;
    }
    return r->qos >= 1 ? BRG_LOST_REQUEUE : BRG_LOST_DROP;
}

void brg_request_key_bytes(const struct brg_request *r, uint8_t out[BRG_KEY_SIZE])
{
    mzb_put_u64(out, r->key);
}
