#include "mzb_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "mzb";
static int log_max_level = MZB_LOG_INFO;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

void mzb_log_init(const char *program, int max_level)
{
    log_program = program;
    log_max_level = max_level;
}

int mzb_log_enabled(int level)
{
    return level >= 0 && level <= log_max_level;
}

void mzb_log(int level, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (!mzb_log_enabled(level)) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_program,
                 level_names[level]);

    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);

    /* One write per line keeps lines whole when several threads log. */
    if (n > (int)sizeof(line) - 2) {
        n = (int)sizeof(line) - 2;
    }
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        return;
    }
}

uint64_t mzb_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t mzb_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int mzb_ratelimit_allow(struct mzb_ratelimit *rl, uint64_t now_ms, uint64_t interval_ms,
                        uint64_t *suppressed)
{
    if (rl->used && now_ms - rl->last_ms < interval_ms) {
        rl->suppressed++;
        return 0;
    }

    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    rl->last_ms = now_ms;
    rl->used = 1;
    return 1;
}
