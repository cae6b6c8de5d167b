/*
 * mzb_log: logging for the bridge and the handler library (the plugin logs
 * through the broker), and a rate limiter for anything that can repeat per
 * message.
 */
#ifndef MZB_LOG_H
#define MZB_LOG_H

#include <stdint.h>

enum mzb_log_level {
    MZB_LOG_ERROR = 0,
    MZB_LOG_WARNING = 1,
    MZB_LOG_NOTICE = 2,
    MZB_LOG_INFO = 3,
    MZB_LOG_DEBUG = 4,
};

/* Sets the program name shown on each line and the most verbose level printed. */
void mzb_log_init(const char *program, int max_level);

/* 1 when a line of this level would be written: lets a hot path skip building it. */
int mzb_log_enabled(int level);

/* Writes one line to stderr: time, program, level, text. Thread-safe (one write). */
void mzb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t mzb_now_ms(void);

/* The same clock in microseconds. */
uint64_t mzb_now_us(void);

/*
 * A rate limiter: allows one event per interval and counts the ones it
 * suppressed in between, so the next allowed line can say how many.
 */
struct mzb_ratelimit {
    uint64_t last_ms;
    uint64_t suppressed;
    int used;
};

/*
 * Returns 1 when an event at now_ms may be logged, and then sets *suppressed to
 * the number of events refused since the last allowed one; returns 0 and
 * counts the event otherwise. Not thread-safe: one limiter per thread.
 */
int mzb_ratelimit_allow(struct mzb_ratelimit *rl, uint64_t now_ms, uint64_t interval_ms,
                        uint64_t *suppressed);

#endif
