/* The BATCH body: records laid end to end (docs/protocol.md, section 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mzb_batch.h"

struct rec_in {
    const char *service;
    const char *meta;
    const char *payload;
};

static const struct rec_in three[] = {
    {"store", "META-ONE", "hello"},
    {"s", "", ""},
    {"enrich", "M3", "{\"t\":1}"},
};

/* Writes the records into buf as the plugin does; returns the body length. */
static size_t build(uint8_t *buf, const struct rec_in *in, size_t n)
{
    uint8_t *p = buf;

    for (size_t i = 0; i < n; i++) {
        size_t ml = strlen(in[i].meta);
        uint8_t *meta = mzb_batch_put_service(p, in[i].service, strlen(in[i].service));

        memcpy(meta, in[i].meta, ml);
        p = mzb_batch_put_rest(meta, ml, in[i].payload, strlen(in[i].payload));
        assert_int_equal((size_t)(p - meta) + 1 + strlen(in[i].service) + 4,
                         mzb_batch_record_size(strlen(in[i].service), ml, strlen(in[i].payload)));
    }
    return (size_t)(p - buf);
}

static void assert_record(const struct mzb_batch_record *r, const struct rec_in *want)
{
    assert_int_equal(r->service_len, strlen(want->service));
    assert_memory_equal(r->service, want->service, r->service_len);
    assert_int_equal(r->meta_len, strlen(want->meta));
    assert_memory_equal(r->meta, want->meta, r->meta_len);
    assert_int_equal(r->payload_len, strlen(want->payload));
    assert_memory_equal(r->payload, want->payload, r->payload_len);
}

static void test_round_trip(void **state)
{
    uint8_t buf[256];
    size_t len = build(buf, three, 3);
    struct mzb_batch_record r;
    size_t off = 0;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mzb_batch_next(buf, len, &off, &r), MZB_BATCH_OK);
        assert_record(&r, &three[i]);
    }
    assert_int_equal(mzb_batch_next(buf, len, &off, &r), MZB_BATCH_END);
    assert_int_equal(off, len);
}

/* Cut anywhere, a body reads as whole records and then one error, never past its end. */
static void test_every_truncation(void **state)
{
    uint8_t buf[256];
    size_t len = build(buf, three, 3);

    (void)state;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut > 0 ? cut : 1);
        struct mzb_batch_record r;
        size_t off = 0;
        int rc;
        size_t whole = 0;

        memcpy(copy, buf, cut);
        while ((rc = mzb_batch_next(copy, cut, &off, &r)) == MZB_BATCH_OK) {
            assert_record(&r, &three[whole]);
            whole++;
        }
        assert_true(off <= cut);
        if (rc == MZB_BATCH_END) {
            assert_int_equal(off, cut); /* only at a record boundary */
        } else {
            assert_int_equal(rc, MZB_BATCH_E_TRUNCATED);
        }
        free(copy);
    }
}

static void test_empty_service_is_refused(void **state)
{
    const uint8_t body[] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    struct mzb_batch_record r;
    size_t off = 0;

    (void)state;
    assert_int_equal(mzb_batch_next(body, sizeof(body), &off, &r), MZB_BATCH_E_SERVICE);
    assert_int_equal(off, 0);
}

/* A length of 4 GiB - 1 in a short frame must not wrap any sum. */
static void test_huge_lengths(void **state)
{
    const uint8_t meta_huge[] = {1, 's', 0xff, 0xff, 0xff, 0xff, 'x'};
    const uint8_t payload_huge[] = {1, 's', 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    struct mzb_batch_record r;
    size_t off = 0;

    (void)state;
    assert_int_equal(mzb_batch_next(meta_huge, sizeof(meta_huge), &off, &r), MZB_BATCH_E_TRUNCATED);
    off = 0;
    assert_int_equal(mzb_batch_next(payload_huge, sizeof(payload_huge), &off, &r),
                     MZB_BATCH_E_TRUNCATED);
}

static void test_record_size_limits(void **state)
{
    (void)state;
    assert_int_equal(mzb_batch_record_size(0, 10, 10), 0);
    assert_int_equal(mzb_batch_record_size(256, 10, 10), 0);
    assert_int_equal(mzb_batch_record_size(255, 0, 0), 255 + MZB_BATCH_OVERHEAD);
    assert_int_equal(mzb_batch_record_size(1, 20, 64), 1 + 20 + 64 + MZB_BATCH_OVERHEAD);
    assert_string_equal(mzb_batch_strerror(MZB_BATCH_E_SERVICE),
                        "a record has an empty service name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_empty_service_is_refused),
        cmocka_unit_test(test_huge_lengths),
        cmocka_unit_test(test_record_size_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
