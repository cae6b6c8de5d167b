/* Picking one route per service for a topic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mzb_config.h"
#include "routes.h"

static const char config_text[] =
    "{\"bridge\": {\"plugin_endpoint\": \"tcp://127.0.0.1:18890\","
    "              \"handler_endpoint\": \"tcp://127.0.0.1:18891\"},"
    " \"routes\": ["
    "  {\"filter\": \"a/#\", \"service\": \"one\", \"mode\": \"event\"},"   /* 0 */
    "  {\"filter\": \"a/b\", \"service\": \"two\", \"mode\": \"event\"},"   /* 1 */
    "  {\"filter\": \"a/+\", \"service\": \"one\", \"mode\": \"event\"},"   /* 2 */
    "  {\"filter\": \"+/b\", \"service\": \"three\", \"mode\": \"event\"}," /* 3 */
    "  {\"filter\": \"x/y\", \"service\": \"two\", \"mode\": \"event\"},"   /* 4 */
    "  {\"filter\": \"x/#\", \"service\": \"two\", \"mode\": \"event\"}"    /* 5 */
    " ]}";

static struct mzbp_routes *build(void)
{
    struct mzb_config *cfg = NULL;
    struct mzb_config_error err;
    struct mzbp_routes *r = NULL;

    assert_int_equal(
        mzb_config_load_string(config_text, strlen(config_text), "test.json", &cfg, &err),
        MZB_CONFIG_OK);
    assert_int_equal(mzbp_routes_build(cfg, &r), MZBP_ROUTES_OK);
    return r;
}

static size_t select_topic(struct mzbp_routes *r, const char *topic)
{
    return mzbp_routes_select(r, topic, strlen(topic));
}

static size_t hit_route(const struct mzbp_routes *r, size_t i)
{
    return (size_t)(mzbp_routes_hit(r, i) - r->cfg->routes);
}

static void test_one_route_per_service_lowest_index_wins(void **state)
{
    struct mzbp_routes *r = build();

    (void)state;
    /* a/b matches routes 0 and 2 (one), 1 (two) and 3 (three). */
    assert_int_equal(select_topic(r, "a/b"), 3);
    assert_int_equal(hit_route(r, 0), 0);
    assert_int_equal(hit_route(r, 1), 1);
    assert_int_equal(hit_route(r, 2), 3);

    /* x/y matches routes 4 and 5, both of service two. */
    assert_int_equal(select_topic(r, "x/y"), 1);
    assert_int_equal(hit_route(r, 0), 4);
    assert_string_equal(mzbp_routes_hit(r, 0)->service, "two");

    assert_int_equal(select_topic(r, "nothing/here"), 0);
    assert_int_equal(select_topic(r, "a"), 1); /* a/# also matches its parent level */
    assert_int_equal(hit_route(r, 0), 0);
    mzbp_routes_destroy(&r);
    assert_null(r);
}

/* Many lookups in a row must not leak one lookup's hits into the next. */
static void test_lookups_are_independent(void **state)
{
    struct mzbp_routes *r = build();

    (void)state;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(select_topic(r, i % 2 ? "a/b" : "x/y"), i % 2 ? 3 : 1);
    }
    mzbp_routes_destroy(&r);
}

static void test_generation_wrap_clears_stamps(void **state)
{
    struct mzbp_routes *r = build();

    (void)state;
    r->generation = UINT32_MAX - 1;
    assert_int_equal(select_topic(r, "a/b"), 3); /* generation UINT32_MAX */
    assert_int_equal(select_topic(r, "a/b"), 3); /* wraps: stamps cleared, generation 1 */
    assert_int_equal(r->generation, 1);
    assert_int_equal(select_topic(r, "x/y"), 1);
    mzbp_routes_destroy(&r);
}

static void test_dollar_topics_skip_wildcard_filters(void **state)
{
    struct mzbp_routes *r = build();

    (void)state;
    assert_int_equal(select_topic(r, "$SYS/b"), 0);
    mzbp_routes_destroy(&r);
}

static void test_destroy_accepts_null(void **state)
{
    struct mzbp_routes *r = NULL;

    (void)state;
    mzbp_routes_destroy(NULL);
    mzbp_routes_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_route_per_service_lowest_index_wins),
        cmocka_unit_test(test_lookups_are_independent),
        cmocka_unit_test(test_generation_wrap_clears_stamps),
        cmocka_unit_test(test_dollar_topics_skip_wildcard_filters),
        cmocka_unit_test(test_destroy_accepts_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
