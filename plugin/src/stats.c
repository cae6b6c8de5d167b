#include "stats.h"

#include <inttypes.h>
#include <stdio.h>

#define MZBP_STATS_ENTRY(name) {#name, offsetof(struct mzbp_stats, name)},

static const struct {
    const char *name;
    size_t offset;
} stat_fields[] = {MZBP_STATS_FIELDS(MZBP_STATS_ENTRY)};

#define FIELD_COUNT (sizeof(stat_fields) / sizeof(stat_fields[0]))

static atomic_uint_fast64_t *field_at(struct mzbp_stats *s, size_t i)
{
    return (atomic_uint_fast64_t *)((char *)s + stat_fields[i].offset);
}

void mzbp_stats_init(struct mzbp_stats *s)
{
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        atomic_init(field_at(s, i), 0);
    }
    atomic_init(&s->bridge_instance, 0);
    atomic_init(&s->last_requeue, 0);
}

size_t mzbp_stats_json(struct mzbp_stats *s, char *buf, size_t cap)
{
    size_t len = 0;

    for (size_t i = 0; i < FIELD_COUNT; i++) {
        int n = snprintf(buf + len, cap - len, "%s\"%s\":%" PRIu64, i == 0 ? "{" : ",",
                         stat_fields[i].name, (uint64_t)mzbp_stat_get(field_at(s, i)));

        if (n < 0 || (size_t)n >= cap - len) {
            return 0;
        }
        len += (size_t)n;
    }
    if (len + 2 > cap) {
        return 0;
    }
    buf[len++] = '}';
    buf[len] = '\0';
    return len;
}
