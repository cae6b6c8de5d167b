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
    free(svc->ready);
    free(svc);
}

static void free_taken(struct brg_registry *reg, struct brg_link *taken)
{
    struct brg_link *l;

    while ((l = brg_list_pop_front(taken)) != NULL) {
        brg_request_free(reg, brg_container_of(l, struct brg_request, link));
    }
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
        struct brg_link taken;

        brg_list_init(&taken);
        brg_handler_remove(r, h, &taken);
        free_taken(r, &taken);
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

/* The ready heap orders handlers by load, then by how long ago their load last changed. */
static int less_loaded(const struct brg_handler *a, const struct brg_handler *b)
{
    if (a->in_flight != b->in_flight) {
        return a->in_flight < b->in_flight;
    }
    return a->stamp < b->stamp;
}

static void ready_place(struct brg_service *svc, size_t i, struct brg_handler *h)
{
    svc->ready[i] = h;
    h->ready_index = i;
}

static void ready_sift_up(struct brg_service *svc, size_t i)
{
    struct brg_handler *h = svc->ready[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!less_loaded(h, svc->ready[parent])) {
            break;
        }
        ready_place(svc, i, svc->ready[parent]);
        i = parent;
    }
    ready_place(svc, i, h);
}

static void ready_sift_down(struct brg_service *svc, size_t i)
{
    struct brg_handler *h = svc->ready[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= svc->ready_count) {
            break;
        }
        if (child + 1 < svc->ready_count && less_loaded(svc->ready[child + 1], svc->ready[child])) {
            child++;
        }
        if (!less_loaded(svc->ready[child], h)) {
            break;
        }
        ready_place(svc, i, svc->ready[child]);
        i = child;
    }
    ready_place(svc, i, h);
}

/* Room was reserved when h was added, so this never allocates. */
static void ready_push(struct brg_service *svc, struct brg_handler *h)
{
    ready_place(svc, svc->ready_count++, h);
    ready_sift_up(svc, h->ready_index);
}

static void ready_remove(struct brg_service *svc, struct brg_handler *h)
{
    size_t i = h->ready_index;
    struct brg_handler *last = svc->ready[--svc->ready_count];

    h->ready_index = BRG_HEAP_NONE;
    if (last == h) {
        return;
    }
    ready_place(svc, i, last);
    ready_sift_up(svc, i);
    ready_sift_down(svc, last->ready_index);
}

/* h's load changed (or it wants to go behind its peers): restamp it and put it where it belongs. */
static void load_changed(struct brg_handler *h)
{
    struct brg_service *svc = h->service;
    int has_credit = h->in_flight < h->credit;

    h->stamp = ++svc->clock;
    if (h->ready_index == BRG_HEAP_NONE) {
        if (has_credit) {
            ready_push(svc, h);
        }
        return;
    }
    if (!has_credit) {
        ready_remove(svc, h);
        return;
    }
    ready_sift_up(svc, h->ready_index);
    ready_sift_down(svc, h->ready_index);
}

static int reserve_ready(struct brg_service *svc, size_t count)
{
    struct brg_handler **grown;
    size_t cap = svc->ready_cap ? svc->ready_cap : 4;

    if (count <= svc->ready_cap) {
        return 0;
    }
    while (cap < count) {
        cap *= 2;
    }
    grown = realloc(svc->ready, cap * sizeof(*grown));
    if (!grown) {
        return -1;
    }
    svc->ready = grown;
    svc->ready_cap = cap;
    return 0;
}

struct brg_handler *brg_handler_add(struct brg_registry *reg, struct brg_service *svc,
                                    const void *id, size_t len, size_t credit, uint64_t expiry_ms)
{
    struct brg_handler *h;

    if (reserve_ready(svc, svc->handler_count + 1) != 0) {
        return NULL;
    }
    h = calloc(1, sizeof(*h) + len);
    if (!h) {
        return NULL;
    }
    memcpy(h->id, id, len);
    h->id_len = len;
    h->service = svc;
    h->credit = credit > 0 ? credit : BRG_CREDIT_DEFAULT;
    h->expiry_ms = expiry_ms;
    if (brg_map_put(reg->handlers_by_id, h->id, len, h) != 0) {
        free(h);
        return NULL;
    }

    brg_list_push_back(&reg->handlers, &h->link);
    reg->handler_count++;
    brg_list_push_back(&svc->handlers, &h->service_link);
    brg_list_init(&h->held);
    svc->handler_count++;
    svc->idle_count++;
    svc->credit += h->credit;
    h->ready_index = BRG_HEAP_NONE;
    load_changed(h);
    return h;
}

/* r leaves h's hands; a request still INFLIGHT becomes DETACHED, a LATE one stays LATE. */
static void unhold(struct brg_handler *h, struct brg_request *r)
{
    brg_list_remove(&r->link);
    r->handler = NULL;
    if (r->state == BRG_REQ_INFLIGHT) {
        r->state = BRG_REQ_DETACHED;
    }
    h->in_flight--;
    h->service->in_flight--;
    if (h->in_flight == 0) {
        h->service->idle_count++;
    }
}

void brg_handler_remove(struct brg_registry *reg, struct brg_handler *h, struct brg_link *taken)
{
    struct brg_service *svc = h->service;
    struct brg_link *l;

    while ((l = h->held.next) != &h->held) {
        struct brg_request *r = brg_container_of(l, struct brg_request, link);

        unhold(h, r);
        brg_list_push_back(taken, &r->link);
    }
    if (h->ready_index != BRG_HEAP_NONE) {
        ready_remove(svc, h);
    }
    svc->idle_count--;
    svc->credit -= h->credit;
    brg_list_remove(&h->service_link);
    svc->handler_count--;
    brg_list_remove(&h->link);
    reg->handler_count--;
    brg_map_remove(reg->handlers_by_id, h->id, h->id_len);
    free(h);
}

struct brg_handler *brg_service_pick(const struct brg_service *svc)
{
    return svc->ready_count > 0 ? svc->ready[0] : NULL;
}

void brg_handler_touch(struct brg_handler *h)
{
    load_changed(h);
}

struct brg_request *brg_handler_find_request(const struct brg_handler *h, uint64_t key)
{
    for (const struct brg_link *l = h->held.next; l != &h->held; l = l->next) {
        struct brg_request *r = brg_container_of(l, struct brg_request, link);

        if (r->key == key) {
            return r;
        }
    }
    return NULL;
}

void brg_handler_refresh(struct brg_handler *h, uint64_t now_ms, uint64_t window_ms)
{
    h->expiry_ms = now_ms + window_ms;
}

int brg_handler_expired(const struct brg_handler *h, uint64_t now_ms)
{
    return h->in_flight == 0 && now_ms > h->expiry_ms;
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

static int init_payload(struct brg_request *r, zmq_msg_t *payload)
{
    size_t size = payload ? zmq_msg_size(payload) : 0;

    if (payload && size > BRG_PAYLOAD_COPY_MAX) {
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
        struct brg_handler *h = r->handler;

        unhold(h, r);
        load_changed(h);
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
    brg_list_push_back(&h->held, &r->link);
    r->handler = h;
    r->state = BRG_REQ_INFLIGHT;
    if (h->in_flight == 0) {
        h->service->idle_count--;
    }
    h->in_flight++;
    h->service->in_flight++;
    load_changed(h);
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
