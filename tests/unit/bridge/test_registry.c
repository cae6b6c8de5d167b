/* The bridge's registry: services, handlers, queues, deadlines and resend detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brg_registry.h"

#define NOW 1000000u

struct frame {
    uint8_t buf[512];
    size_t len;
    struct mzb_meta meta;
};

static struct mzb_bytes str_of(const char *s)
{
    struct mzb_bytes b = {(const uint8_t *)s, strlen(s)};
    return b;
}

/* Encodes and decodes a metadata frame, the way the bridge receives one. */
static void make_frame(struct frame *f, int mode, int qos, uint64_t msg_id, uint32_t timeout_ms)
{
    struct mzb_meta m;

    memset(&m, 0, sizeof(m));
    m.mode = (uint8_t)mode;
    m.qos = (uint8_t)qos;
    m.protocol = 5;
    m.reply_qos = 1;
    m.msg_id = msg_id;
    m.timeout_ms = timeout_ms;
    m.topic = str_of("rpc/echo/a");
    m.client_id = str_of("c1");
    m.correlation = str_of("corr\x01");
    m.has_correlation = 1;
    m.reply_topic = str_of("reply/c1/a");
    m.has_reply_topic = 1;
    m.route = str_of("rpc/echo/#");
    assert_int_equal(mzb_meta_encode(&m, f->buf, sizeof(f->buf), &f->len), MZB_META_OK);
    assert_int_equal(mzb_meta_decode(f->buf, f->len, &f->meta), MZB_META_OK);
}

static struct brg_request *new_request(struct brg_registry *reg, struct brg_service *svc, int mode,
                                       int qos, uint64_t msg_id, uint32_t timeout_ms)
{
    struct frame f;
    struct brg_request_init init = {
        .origin = BRG_ORIGIN_PLUGIN,
        .service = svc,
        .peer = "plug",
        .peer_len = 4,
        .now_ms = NOW,
    };
    struct brg_request *r;

    make_frame(&f, mode, qos, msg_id, timeout_ms);
    init.meta_frame = f.buf;
    init.meta_len = f.len;
    init.meta = &f.meta;
    r = brg_request_new(reg, &init);
    assert_non_null(r);
    /* The request must not point into the caller's frame. */
    memset(f.buf, 0xee, sizeof(f.buf));
    return r;
}

static int setup(void **state)
{
    *state = brg_registry_new(1);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    struct brg_registry *reg = *state;

    brg_registry_destroy(&reg);
    return 0;
}

static void service_names(void **state)
{
    struct brg_registry *reg = *state;
    char long_name[BRG_NAME_MAX + 2];
    struct brg_service *svc;

    assert_false(brg_service_name_ok("", 0));
    assert_false(brg_service_name_ok("a\0b", 3));
    assert_false(brg_service_name_ok("\xff", 1));
    memset(long_name, 'x', sizeof(long_name));
    assert_true(brg_service_name_ok(long_name, BRG_NAME_MAX));
    assert_false(brg_service_name_ok(long_name, BRG_NAME_MAX + 1));
    assert_null(brg_service_get(reg, "", 0));

    svc = brg_service_get(reg, "echo", 4);
    assert_non_null(svc);
    assert_string_equal(svc->name, "echo");
    assert_ptr_equal(brg_service_get(reg, "echo", 4), svc);
    assert_ptr_equal(brg_service_find(reg, "echo", 4), svc);
    assert_null(brg_service_find(reg, "ech", 3));
    assert_int_equal(reg->service_count, 1);
}

/* Frees every request a removed handler gave back. */
static void free_all(struct brg_registry *reg, struct brg_link *taken)
{
    struct brg_link *l;

    while ((l = brg_list_pop_front(taken)) != NULL) {
        brg_request_free(reg, brg_container_of(l, struct brg_request, link));
    }
}

/* Takes svc's next request for the handler the registry picks; returns that handler. */
static struct brg_handler *dispatch_one(struct brg_service *svc)
{
    struct brg_handler *h = brg_service_pick(svc);
    struct brg_request *r;

    assert_non_null(h);
    r = brg_service_dequeue(svc);
    assert_non_null(r);
    brg_request_assign(r, h);
    return h;
}

/* Queues count events at svc. */
static void queue_events(struct brg_registry *reg, struct brg_service *svc, int count)
{
    for (int i = 0; i < count; i++) {
        brg_request_enqueue(new_request(reg, svc, MZB_MODE_EVENT, 1, 0, 0), 0);
    }
}

/* Frees the oldest request h holds, as a REPLY for it would. */
static void answer_oldest(struct brg_registry *reg, struct brg_handler *h)
{
    assert_false(brg_list_empty(&h->held));
    brg_request_free(reg, brg_container_of(h->held.next, struct brg_request, link));
}

static void plain_handlers_least_recently_used_first(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *h1 = brg_handler_add(reg, svc, "h1", 2, 1, NOW + 4000);
    struct brg_handler *h2 = brg_handler_add(reg, svc, "h2", 2, 1, NOW + 4000);
    struct brg_handler *h3 = brg_handler_add(reg, svc, "h3", 2, 1, NOW + 4000);
    struct brg_link taken;

    assert_non_null(h1);
    assert_non_null(h2);
    assert_non_null(h3);
    assert_int_equal(svc->handler_count, 3);
    assert_int_equal(svc->idle_count, 3);
    assert_int_equal(svc->ready_count, 3);
    assert_int_equal(svc->credit, 3);
    assert_ptr_equal(brg_handler_find(reg, "h2", 2), h2);

    queue_events(reg, svc, 4);
    assert_ptr_equal(dispatch_one(svc), h1);
    assert_ptr_equal(dispatch_one(svc), h2);
    answer_oldest(reg, h1); /* h1 is free again, after h3 */
    assert_int_equal(svc->idle_count, 2);
    assert_ptr_equal(dispatch_one(svc), h3);
    assert_ptr_equal(dispatch_one(svc), h1);
    assert_null(brg_service_pick(svc));
    assert_int_equal(svc->idle_count, 0);
    assert_int_equal(svc->ready_count, 0);
    assert_int_equal(svc->in_flight, 3);

    /* Removing a busy handler leaves the ready heap alone and hands back its request. */
    brg_list_init(&taken);
    brg_handler_remove(reg, h2, &taken);
    assert_int_equal(svc->handler_count, 2);
    assert_null(brg_handler_find(reg, "h2", 2));
    assert_int_equal(svc->in_flight, 2);
    assert_int_equal(svc->ready_count, 0);
    brg_request_free(reg, brg_container_of(brg_list_pop_front(&taken), struct brg_request, link));
    assert_true(brg_list_empty(&taken));
    answer_oldest(reg, h3);
    assert_ptr_equal(brg_service_pick(svc), h3);
    brg_handler_remove(reg, h3, &taken);
    assert_true(brg_list_empty(&taken));
    assert_int_equal(svc->ready_count, 0);
    assert_int_equal(svc->idle_count, 0);
    assert_int_equal(reg->handler_count, 1);
    assert_int_equal(svc->credit, 1);
}

static void credit_lets_a_handler_hold_several(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *h = brg_handler_add(reg, svc, "h", 1, 4, NOW + 4000);

    queue_events(reg, svc, 6);
    for (int i = 0; i < 4; i++) {
        assert_ptr_equal(dispatch_one(svc), h);
    }
    assert_int_equal(h->in_flight, 4);
    assert_null(brg_service_pick(svc));
    assert_int_equal(svc->queued, 2);
    assert_int_equal(svc->idle_count, 0);

    /* One answer frees one unit of credit. */
    answer_oldest(reg, h);
    assert_ptr_equal(dispatch_one(svc), h);
    assert_null(brg_service_pick(svc));
    while (!brg_list_empty(&h->held)) {
        answer_oldest(reg, h);
    }
    assert_int_equal(h->in_flight, 0);
    assert_int_equal(svc->in_flight, 0);
    assert_int_equal(svc->idle_count, 1);
    assert_ptr_equal(brg_service_pick(svc), h);
}

static void fewest_in_flight_first_so_load_is_shared(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *fast = brg_handler_add(reg, svc, "f", 1, 8, NOW + 4000);
    struct brg_handler *slow = brg_handler_add(reg, svc, "s", 1, 8, NOW + 4000);
    int to_fast = 0;

    /* Two free handlers take turns. */
    queue_events(reg, svc, 40);
    assert_ptr_equal(dispatch_one(svc), fast);
    assert_ptr_equal(dispatch_one(svc), slow);
    assert_ptr_equal(dispatch_one(svc), fast);
    assert_ptr_equal(dispatch_one(svc), slow);

    /* One that answers gets the work; the one that sits on its requests gets no more. */
    for (int i = 0; i < 30; i++) {
        struct brg_handler *h;

        answer_oldest(reg, fast);
        h = dispatch_one(svc);
        to_fast += h == fast;
    }
    assert_int_equal(to_fast, 30);
    assert_int_equal(slow->in_flight, 2);
    assert_int_equal(fast->in_flight, 2);
}

static void held_requests_are_found_by_key_in_any_order(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *h = brg_handler_add(reg, svc, "h", 1, 3, NOW + 4000);
    struct brg_handler *other = brg_handler_add(reg, svc, "o", 1, 3, NOW + 4000);
    struct brg_request *r[3];
    uint64_t gone;

    for (int i = 0; i < 3; i++) {
        r[i] = new_request(reg, svc, MZB_MODE_EVENT, 1, 0, 0);
        brg_request_assign(r[i], h);
    }
    assert_ptr_equal(brg_handler_find_request(h, r[2]->key), r[2]);
    assert_ptr_equal(brg_handler_find_request(h, r[0]->key), r[0]);
    assert_null(brg_handler_find_request(other, r[1]->key));
    assert_null(brg_handler_find_request(h, r[2]->key + 100));

    gone = r[1]->key;
    brg_request_free(reg, r[1]);
    assert_null(brg_handler_find_request(h, gone));
    assert_ptr_equal(brg_handler_find_request(h, r[2]->key), r[2]);
    assert_int_equal(h->in_flight, 2);
    assert_ptr_equal(brg_service_pick(svc), other);
}

static void removed_handler_gives_back_every_request_oldest_first(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *h = brg_handler_add(reg, svc, "h", 1, 8, NOW + 4000);
    struct brg_request *r[5];
    struct brg_link taken;
    struct brg_link *l;
    int i = 0;

    for (int k = 0; k < 5; k++) {
        r[k] = new_request(reg, svc, MZB_MODE_REQUEST, 1, (uint64_t)k + 1, 2000);
        brg_request_assign(r[k], h);
    }
    brg_request_mark_late(reg, r[2]);
    assert_int_equal(svc->in_flight, 5);

    brg_list_init(&taken);
    brg_handler_remove(reg, h, &taken);
    assert_int_equal(svc->in_flight, 0);
    assert_int_equal(svc->handler_count, 0);
    assert_int_equal(svc->ready_count, 0);
    assert_int_equal(svc->idle_count, 0);
    assert_int_equal(svc->credit, 0);
    while ((l = brg_list_pop_front(&taken)) != NULL) {
        struct brg_request *got = brg_container_of(l, struct brg_request, link);

        assert_ptr_equal(got, r[i]);
        assert_null(got->handler);
        assert_int_equal(got->state, i == 2 ? BRG_REQ_LATE : BRG_REQ_DETACHED);
        brg_request_free(reg, got);
        i++;
    }
    assert_int_equal(i, 5);
    assert_int_equal(reg->request_count, 0);
}

/* The handler with the least (in_flight, stamp) that has free credit, found the slow way. */
static struct brg_handler *slow_pick(struct brg_service *svc)
{
    struct brg_handler *best = NULL;

    for (struct brg_link *l = svc->handlers.next; l != &svc->handlers; l = l->next) {
        struct brg_handler *h = brg_container_of(l, struct brg_handler, service_link);

        if (h->in_flight >= h->credit) {
            continue;
        }
        if (!best || h->in_flight < best->in_flight ||
            (h->in_flight == best->in_flight && h->stamp < best->stamp)) {
            best = h;
        }
    }
    return best;
}

/* Random assignments, answers, joins and leaves: the heap always agrees with a full scan. */
static void pick_agrees_with_a_full_scan(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *hs[40] = {0};
    unsigned seed = 12345;
    char id[8];

    for (int step = 0; step < 20000; step++) {
        int i;
        int op;

        seed = seed * 1103515245u + 12345u;
        i = (int)((seed >> 8) % 40);
        op = (int)((seed >> 20) % 10);
        if (!hs[i]) {
            snprintf(id, sizeof(id), "h%d", i);
            hs[i] = brg_handler_add(reg, svc, id, strlen(id), (size_t)(seed >> 4) % 5 + 1, NOW);
            assert_non_null(hs[i]);
        } else if (op == 0) {
            struct brg_link taken;

            brg_list_init(&taken);
            brg_handler_remove(reg, hs[i], &taken);
            free_all(reg, &taken);
            hs[i] = NULL;
        } else if (op < 5 && !brg_list_empty(&hs[i]->held)) {
            answer_oldest(reg, hs[i]);
        } else if (brg_service_pick(svc)) {
            brg_request_assign(new_request(reg, svc, MZB_MODE_EVENT, 0, 0, 0),
                               brg_service_pick(svc));
        }
        assert_ptr_equal(brg_service_pick(svc), slow_pick(svc));
    }
}

static void queue_is_fifo_and_bounded(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_request *a = new_request(reg, svc, MZB_MODE_EVENT, 1, 1, 0);
    struct brg_request *b = new_request(reg, svc, MZB_MODE_EVENT, 1, 2, 0);
    struct brg_request *c = new_request(reg, svc, MZB_MODE_EVENT, 1, 3, 0);

    assert_int_not_equal(a->key, b->key);
    assert_false(brg_service_full(svc, 2));
    brg_request_enqueue(a, 0);
    brg_request_enqueue(b, 0);
    assert_true(brg_service_full(svc, 2));
    assert_false(brg_service_full(svc, 3));
    brg_request_enqueue(c, 1); /* a request taken back goes first */
    assert_int_equal(svc->queued, 3);
    assert_int_equal(c->state, BRG_REQ_QUEUED);

    assert_ptr_equal(brg_service_dequeue(svc), c);
    assert_int_equal(c->state, BRG_REQ_DETACHED);
    assert_ptr_equal(brg_service_dequeue(svc), a);
    brg_request_free(reg, c);
    brg_request_free(reg, a);

    /* Freeing a waiting request takes it out of the queue. */
    brg_request_free(reg, b);
    assert_int_equal(svc->queued, 0);
    assert_null(brg_service_dequeue(svc));
    assert_int_equal(reg->request_count, 0);
    assert_int_equal(svc->received, 3);
}

static void request_keeps_its_own_copies(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_request *r = new_request(reg, svc, MZB_MODE_REQUEST, 2, 0xabcdef, 1500);
    uint8_t key[BRG_KEY_SIZE];

    assert_int_equal(r->mode, MZB_MODE_REQUEST);
    assert_int_equal(r->qos, 2);
    assert_int_equal(r->protocol, 5);
    assert_int_equal(r->reply_qos, 1);
    assert_int_equal(r->msg_id, 0xabcdef);
    assert_true(r->has_reply_topic);
    assert_memory_equal(r->reply_topic.ptr, "reply/c1/a", r->reply_topic.len);
    assert_true(r->has_correlation);
    assert_memory_equal(r->correlation.ptr, "corr\x01", 5);
    assert_memory_equal(r->peer, "plug", 4);
    assert_int_equal(zmq_msg_size(&r->payload), 0);
    assert_int_equal(r->deadline.when, NOW + 1500);

    brg_request_key_bytes(r, key);
    assert_int_equal(mzb_get_u64(key), r->key);
    assert_int_equal(brg_request_set_peer(r, "other-plugin", 12), 0);
    assert_memory_equal(r->peer, "other-plugin", 12);
    brg_request_free(reg, r);
}

/* Makes a client request whose payload is size bytes of 'p'; returns it. */
static struct brg_request *request_with_payload(struct brg_registry *reg, zmq_msg_t *payload,
                                                size_t size)
{
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct frame f;
    struct brg_request_init init = {
        .origin = BRG_ORIGIN_CLIENT, .service = svc, .peer = "c", .peer_len = 1, .now_ms = NOW};
    struct brg_request *r;

    make_frame(&f, MZB_MODE_EVENT, 0, 0, 0);
    init.meta_frame = f.buf;
    init.meta_len = f.len;
    init.meta = &f.meta;
    assert_int_equal(zmq_msg_init_size(payload, size), 0);
    memset(zmq_msg_data(payload), 'p', size);
    init.payload = payload;
    r = brg_request_new(reg, &init);
    assert_non_null(r);
    return r;
}

static void small_payload_is_copied_large_one_moved(void **state)
{
    struct brg_registry *reg = *state;
    zmq_msg_t small;
    zmq_msg_t large;
    struct brg_request *r = request_with_payload(reg, &small, 100);
    struct brg_request *s = request_with_payload(reg, &large, 100000);

    /* A small frame is copied out, so the receive buffer it came in is not pinned. */
    assert_int_equal(zmq_msg_size(&small), 100);
    assert_int_equal(zmq_msg_size(&r->payload), 100);
    assert_ptr_not_equal(zmq_msg_data(&r->payload), zmq_msg_data(&small));
    assert_int_equal(((const char *)zmq_msg_data(&r->payload))[99], 'p');

    assert_int_equal(zmq_msg_size(&large), 0);
    assert_int_equal(zmq_msg_size(&s->payload), 100000);
    assert_int_equal(((const char *)zmq_msg_data(&s->payload))[99999], 'p');
    assert_false(r->has_deadline); /* MDP client requests never time out */

    zmq_msg_close(&small);
    zmq_msg_close(&large);
    brg_request_free(reg, r);
    brg_request_free(reg, s);
}

static void assigned_request_comes_back_when_handler_is_removed(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *h = brg_handler_add(reg, svc, "h1", 2, 1, NOW + 4000);
    struct brg_request *r = new_request(reg, svc, MZB_MODE_REQUEST, 1, 7, 2000);
    struct brg_link taken;

    brg_request_enqueue(r, 0);
    assert_ptr_equal(brg_service_pick(svc), h);
    assert_ptr_equal(brg_service_dequeue(svc), r);
    brg_request_assign(r, h);
    assert_int_equal(r->state, BRG_REQ_INFLIGHT);
    assert_int_equal(svc->in_flight, 1);
    assert_int_equal(svc->idle_count, 0);
    assert_null(brg_service_pick(svc));

    brg_list_init(&taken);
    brg_handler_remove(reg, h, &taken);
    assert_ptr_equal(brg_list_pop_front(&taken), &r->link);
    assert_int_equal(r->state, BRG_REQ_DETACHED);
    assert_null(r->handler);
    assert_int_equal(svc->in_flight, 0);
    assert_int_equal(svc->handler_count, 0);
    brg_request_free(reg, r);
}

static void freeing_an_assigned_request_frees_its_handler(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *h = brg_handler_add(reg, svc, "h1", 2, 1, NOW + 4000);
    struct brg_request *r = new_request(reg, svc, MZB_MODE_EVENT, 1, 7, 0);

    assert_ptr_equal(brg_service_pick(svc), h);
    brg_request_assign(r, h);
    brg_request_free(reg, r);
    assert_true(brg_list_empty(&h->held));
    assert_int_equal(h->in_flight, 0);
    assert_int_equal(svc->in_flight, 0);
    assert_int_equal(svc->idle_count, 1);
    assert_ptr_equal(brg_service_pick(svc), h);
}

static void lost_actions(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_request *req1 = new_request(reg, svc, MZB_MODE_REQUEST, 1, 1, 2000);
    struct brg_request *req0 = new_request(reg, svc, MZB_MODE_REQUEST, 0, 2, 2000);
    struct brg_request *ev1 = new_request(reg, svc, MZB_MODE_EVENT, 2, 3, 0);
    struct brg_request *ev0 = new_request(reg, svc, MZB_MODE_EVENT, 0, 4, 0);

    assert_int_equal(brg_request_lost_action(req1, NOW + 1999), BRG_LOST_REQUEUE);
    assert_int_equal(brg_request_lost_action(req1, NOW + 2000), BRG_LOST_TIMEOUT);
    assert_int_equal(brg_request_lost_action(req0, NOW + 10), BRG_LOST_ERROR);
    assert_int_equal(brg_request_lost_action(req0, NOW + 5000), BRG_LOST_TIMEOUT);
    assert_int_equal(brg_request_lost_action(ev1, NOW + 99999), BRG_LOST_REQUEUE);
    assert_int_equal(brg_request_lost_action(ev0, NOW), BRG_LOST_DROP);

    brg_request_mark_late(reg, req1);
    assert_int_equal(brg_request_lost_action(req1, NOW), BRG_LOST_ALREADY_DONE);

    brg_request_free(reg, req1);
    brg_request_free(reg, req0);
    brg_request_free(reg, ev1);
    brg_request_free(reg, ev0);
}

static void deadlines_come_due_in_order(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_request *slow = new_request(reg, svc, MZB_MODE_REQUEST, 1, 1, 3000);
    struct brg_request *fast = new_request(reg, svc, MZB_MODE_REQUEST, 1, 2, 1000);
    struct brg_request *event = new_request(reg, svc, MZB_MODE_EVENT, 1, 3, 1000);
    struct brg_request *gone = new_request(reg, svc, MZB_MODE_REQUEST, 1, 4, 500);

    assert_false(event->has_deadline);
    assert_int_equal(brg_registry_next_deadline(reg), NOW + 500);
    brg_request_free(reg, gone);
    assert_int_equal(brg_registry_next_deadline(reg), NOW + 1000);

    assert_null(brg_registry_expired(reg, NOW + 999));
    assert_ptr_equal(brg_registry_expired(reg, NOW + 5000), fast);
    assert_ptr_equal(brg_registry_expired(reg, NOW + 5000), slow);
    assert_null(brg_registry_expired(reg, NOW + 5000));
    assert_int_equal(brg_registry_next_deadline(reg), UINT64_MAX);

    /* Freeing after expiry is fine: it is no longer in the heap. */
    brg_request_free(reg, fast);
    brg_request_free(reg, slow);
    brg_request_free(reg, event);
}

static void resends_are_recognised_while_live(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_request *r = new_request(reg, svc, MZB_MODE_REQUEST, 1, 0x77, 1000);
    struct brg_request *s = new_request(reg, svc, MZB_MODE_EVENT, 2, 0x78, 0);

    assert_null(brg_request_find_msg(reg, 0x77));
    assert_int_equal(brg_request_track(reg, r), 0);
    assert_int_equal(brg_request_track(reg, s), 0);
    assert_ptr_equal(brg_request_find_msg(reg, 0x77), r);
    assert_ptr_equal(brg_request_find_msg(reg, 0x78), s);

    /* Answered with a timeout: a resend is a new message again. */
    brg_request_mark_late(reg, r);
    assert_null(brg_request_find_msg(reg, 0x77));
    assert_int_equal(brg_registry_next_deadline(reg), UINT64_MAX);

    brg_request_free(reg, s);
    assert_null(brg_request_find_msg(reg, 0x78));
    brg_request_free(reg, r);
}

static void collect_keeps_configured_and_busy_services(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *conf = brg_service_get(reg, "conf", 4);
    struct brg_service *empty = brg_service_get(reg, "empty", 5);
    struct brg_service *with_handler = brg_service_get(reg, "h", 1);
    struct brg_service *with_queue = brg_service_get(reg, "q", 1);
    struct brg_request *r = new_request(reg, with_queue, MZB_MODE_EVENT, 1, 1, 0);
    char *conf_names[] = {"conf"};

    assert_int_equal(reg->unconfigured_count, 4);
    assert_int_equal(brg_registry_configure(reg, conf_names, 1), 0);
    assert_true(conf->configured);
    assert_int_equal(reg->unconfigured_count, 3);
    (void)empty;
    assert_non_null(brg_handler_add(reg, with_handler, "x", 1, 1, NOW));
    brg_request_enqueue(r, 0);

    assert_int_equal(brg_registry_collect(reg), 1);
    assert_null(brg_service_find(reg, "empty", 5));
    assert_non_null(brg_service_find(reg, "conf", 4));
    assert_non_null(brg_service_find(reg, "h", 1));
    assert_non_null(brg_service_find(reg, "q", 1));
    assert_int_equal(reg->service_count, 3);
    assert_int_equal(reg->unconfigured_count, 2);
    /* Teardown frees the queued request and the handler with the registry. */
}

static void unconfigured_services_are_capped(void **state)
{
    struct brg_registry *reg = *state;
    char *names[] = {"conf"};
    struct brg_service *svc = NULL;
    struct brg_service *a = NULL;

    assert_int_equal(brg_registry_configure(reg, names, 1), 0);
    assert_int_equal(reg->unconfigured_count, 0);

    assert_int_equal(brg_service_open(reg, "a", 1, 2, &a), BRG_OPEN_OK);
    assert_int_equal(brg_service_open(reg, "b", 1, 2, &svc), BRG_OPEN_OK);
    assert_int_equal(reg->unconfigured_count, 2);
    svc = NULL;
    assert_int_equal(brg_service_open(reg, "c", 1, 2, &svc), BRG_OPEN_LIMIT);
    assert_null(svc);
    assert_null(brg_service_find(reg, "c", 1));

    /* Services that exist, configured or not, stay reachable at the limit. */
    assert_int_equal(brg_service_open(reg, "a", 1, 2, &svc), BRG_OPEN_OK);
    assert_ptr_equal(svc, a);
    assert_int_equal(brg_service_open(reg, "conf", 4, 2, &svc), BRG_OPEN_OK);
    assert_true(svc->configured);
    assert_int_equal(brg_service_open(reg, "", 0, 2, &svc), BRG_OPEN_BAD_NAME);
    assert_int_equal(brg_service_open(reg, "\xc3", 1, 2, &svc), BRG_OPEN_BAD_NAME);

    /* Once the empty ones are collected there is room again. */
    assert_int_equal(brg_registry_collect(reg), 2);
    assert_int_equal(reg->unconfigured_count, 0);
    assert_int_equal(brg_service_open(reg, "c", 1, 2, &svc), BRG_OPEN_OK);
    assert_int_equal(reg->service_count, 2);
}

static void configure_names_exactly_the_routes_services(void **state)
{
    struct brg_registry *reg = *state;
    char *first[] = {"x", "y"};
    char *second[] = {"y", "z"};
    struct brg_service *peer = brg_service_get(reg, "z", 1);

    assert_non_null(peer);
    assert_int_equal(reg->unconfigured_count, 1);
    assert_int_equal(brg_registry_configure(reg, first, 2), 0);
    assert_true(brg_service_find(reg, "x", 1)->configured);
    assert_false(peer->configured);
    assert_int_equal(reg->unconfigured_count, 1);

    /* A reload: x is no longer named, z now is (the service a peer made is taken over). */
    assert_int_equal(brg_registry_configure(reg, second, 2), 0);
    assert_false(brg_service_find(reg, "x", 1)->configured);
    assert_true(brg_service_find(reg, "y", 1)->configured);
    assert_ptr_equal(brg_service_find(reg, "z", 1), peer);
    assert_true(peer->configured);
    assert_int_equal(reg->unconfigured_count, 1);
    assert_int_equal(reg->service_count, 3);

    assert_int_equal(brg_registry_collect(reg), 1);
    assert_null(brg_service_find(reg, "x", 1));
    assert_int_equal(reg->unconfigured_count, 0);
}

static void names_are_shown_without_control_characters(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "a\nb\x7f\xc3\xa9", 6);

    assert_non_null(svc);
    assert_memory_equal(svc->name, "a\nb\x7f\xc3\xa9", 7);
    assert_string_equal(svc->shown, "a?b?\xc3\xa9");
}

static void admission_by_origin_mode_and_qos(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_request *r = new_request(reg, svc, MZB_MODE_EVENT, 1, 1, 0);

    /* No handler: requests are refused at once, events and MDP client requests wait. */
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_REQUEST, 1, 1),
                     BRG_ADMIT_NO_HANDLER);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_EVENT, 1, 1),
                     BRG_ADMIT_QUEUE);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_CLIENT, MZB_MODE_EVENT, 0, 1),
                     BRG_ADMIT_QUEUE);

    brg_request_enqueue(r, 0);
    assert_non_null(brg_handler_add(reg, svc, "h1", 2, 1, NOW));
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_REQUEST, 1, 1),
                     BRG_ADMIT_OVERLOADED);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_REQUEST, 0, 1),
                     BRG_ADMIT_OVERLOADED);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_EVENT, 1, 1),
                     BRG_ADMIT_RETRY);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_EVENT, 2, 1),
                     BRG_ADMIT_RETRY);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_EVENT, 0, 1),
                     BRG_ADMIT_DROP_EVENT);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_CLIENT, MZB_MODE_EVENT, 0, 1),
                     BRG_ADMIT_DROP_CLIENT);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_EVENT, 1, 2),
                     BRG_ADMIT_QUEUE);
}

static void request_taken_back_goes_first_past_the_bound(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *h = brg_handler_add(reg, svc, "h1", 2, 1, NOW);
    struct brg_request *held = new_request(reg, svc, MZB_MODE_EVENT, 1, 1, 0);
    struct brg_request *waiting = new_request(reg, svc, MZB_MODE_EVENT, 1, 2, 0);
    struct brg_link taken;

    assert_ptr_equal(brg_service_pick(svc), h);
    brg_request_assign(held, h);
    brg_request_enqueue(waiting, 0);
    assert_int_equal(brg_service_admit(svc, BRG_ORIGIN_PLUGIN, MZB_MODE_EVENT, 1, 1),
                     BRG_ADMIT_RETRY);

    brg_list_init(&taken);
    brg_handler_remove(reg, h, &taken);
    assert_ptr_equal(brg_list_pop_front(&taken), &held->link);
    assert_int_equal(brg_request_lost_action(held, NOW), BRG_LOST_REQUEUE);
    brg_request_enqueue(held, 1);
    assert_int_equal(svc->queued, 2);
    assert_ptr_equal(brg_service_dequeue(svc), held);
    assert_ptr_equal(brg_service_dequeue(svc), waiting);
    brg_request_free(reg, held);
    brg_request_free(reg, waiting);
}

static void busy_handler_never_expires_by_silence(void **state)
{
    struct brg_registry *reg = *state;
    struct brg_service *svc = brg_service_get(reg, "echo", 4);
    struct brg_handler *h = brg_handler_add(reg, svc, "h1", 2, 4, NOW + 4000);
    struct brg_request *r = new_request(reg, svc, MZB_MODE_EVENT, 1, 1, 0);
    struct brg_request *s = new_request(reg, svc, MZB_MODE_EVENT, 1, 2, 0);

    assert_false(brg_handler_expired(h, NOW + 4000));
    assert_true(brg_handler_expired(h, NOW + 4001));

    /* Given a job just before its expiry, it may stay silent as long as the job takes. */
    brg_handler_refresh(h, NOW, 4000);
    assert_ptr_equal(brg_service_pick(svc), h);
    brg_request_assign(r, h);
    brg_request_assign(s, h);
    assert_false(brg_handler_expired(h, NOW + 4001));
    assert_false(brg_handler_expired(h, NOW + 600000));

    /* While it holds any request, silence is allowed; once it holds none, its clock restarts. */
    brg_request_free(reg, r);
    assert_false(brg_handler_expired(h, NOW + 600000));
    brg_request_free(reg, s);
    brg_handler_refresh(h, NOW + 600000, 4000);
    assert_false(brg_handler_expired(h, NOW + 604000));
    assert_true(brg_handler_expired(h, NOW + 604001));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(service_names, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_handlers_least_recently_used_first, setup, teardown),
        cmocka_unit_test_setup_teardown(credit_lets_a_handler_hold_several, setup, teardown),
        cmocka_unit_test_setup_teardown(fewest_in_flight_first_so_load_is_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(held_requests_are_found_by_key_in_any_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(removed_handler_gives_back_every_request_oldest_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(pick_agrees_with_a_full_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_is_fifo_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(request_keeps_its_own_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(small_payload_is_copied_large_one_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(assigned_request_comes_back_when_handler_is_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(freeing_an_assigned_request_frees_its_handler, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lost_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(deadlines_come_due_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(resends_are_recognised_while_live, setup, teardown),
        cmocka_unit_test_setup_teardown(collect_keeps_configured_and_busy_services, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unconfigured_services_are_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(configure_names_exactly_the_routes_services, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(names_are_shown_without_control_characters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(admission_by_origin_mode_and_qos, setup, teardown),
        cmocka_unit_test_setup_teardown(request_taken_back_goes_first_past_the_bound, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(busy_handler_never_expires_by_silence, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
