/*
 * fake_bridge: the bridge side of MDP/0.1, just enough to test handlers. A
 * ROUTER bound on an ipc:// endpoint in a fresh temporary folder. Every call
 * blocks at most for the timeout it is given.
 */
#ifndef FAKE_BRIDGE_H
#define FAKE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "mzb_meta.h"

#define FB_MAX_FRAMES 32

struct fake_bridge {
    void *ctx;
    void *router;
    char dir[64];
    char path[128];
    char endpoint[160];
};

/* One message the ROUTER received: frame 0 is the worker's routing id. Copies, freed by
 * fb_msg_free. */
struct fb_msg {
    size_t count;
    size_t len[FB_MAX_FRAMES];
    uint8_t *data[FB_MAX_FRAMES];
};

/* A frame to send. */
struct fb_frame {
    const void *data;
    size_t len;
};

int fb_start(struct fake_bridge *fb);
void fb_stop(struct fake_bridge *fb);

/* Receives one message within timeout_ms. Returns 0, or -1 on timeout or error. */
int fb_recv(struct fake_bridge *fb, struct fb_msg *m, int timeout_ms);
void fb_msg_free(struct fb_msg *m);

/* The MDP command of a worker message (frames id, "", "MDPW01", cmd, ...), or -1. */
int fb_command(const struct fb_msg *m);

/*
 * Waits for a worker message with command cmd, skipping others (heartbeats
 * above all) and counting skipped heartbeats into *heartbeats when not NULL.
 * Returns 0 with *m filled, or -1 after timeout_ms.
 */
int fb_expect(struct fake_bridge *fb, int cmd, struct fb_msg *m, int timeout_ms, int *heartbeats);

/* Sends the frames as one message; the first frame should be a routing id. */
int fb_send(struct fake_bridge *fb, const struct fb_frame *frames, size_t n);

/* Sends "", "MDPW01", cmd and the extra frames to the worker with routing id in (id, id_len). */
int fb_send_command(struct fake_bridge *fb, const uint8_t *id, size_t id_len, uint8_t cmd,
                    const struct fb_frame *extra, size_t n);

/*
 * Sends a REQUEST with client address addr (8 bytes), the payload and, when
 * meta is not NULL, the metadata frame it encodes to.
 */
int fb_send_request(struct fake_bridge *fb, const struct fb_msg *ready, uint64_t addr,
                    const char *payload, const struct mzb_meta *meta);

/* Fills meta with an event on topic from client, id msg_id, QoS qos. Borrows the strings. */
void fb_event_meta(struct mzb_meta *meta, const char *topic, const char *client, uint64_t msg_id,
                   int qos);

#endif
