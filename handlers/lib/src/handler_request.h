/*
 * handler_request: the request object handed to the application, built from
 * the frames of an MDP REQUEST. The payload and metadata frames are moved in,
 * not copied, and the decoded metadata points into the metadata frame.
 */
#ifndef HANDLER_REQUEST_H
#define HANDLER_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "handler_wire.h"
#include "mzb_meta.h"

/* A ROUTER routing id is at most 255 bytes; the bridge's client addresses are 8. */
#define MZBH_MAX_ADDRESS 255

struct mzb_request {
    uint8_t address[MZBH_MAX_ADDRESS];
    size_t address_len;
    uint64_t generation; /* the connection it came on; see mzb_handler.c */
    zmq_msg_t payload;
    zmq_msg_t meta_frame; /* empty when the request has no metadata */
    int has_meta;
    struct mzb_meta meta;
};

enum mzbh_parse {
    MZBH_PARSE_OK = 0,
    MZBH_PARSE_ENVELOPE = 1, /* no usable client address: nothing can be answered */
    MZBH_PARSE_META = 2,     /* the metadata frame is malformed; the request can be answered */
    MZBH_PARSE_NOMEM = 3,
};

/*
 * Builds a request from a REQUEST message (command already checked), taking
 * its payload and metadata frames. Returns MZBH_PARSE_OK with *out set;
 * MZBH_PARSE_META with *out set to a request without metadata (to answer and
 * free); otherwise *out is NULL. *why gets a static sentence for the log.
 */
int mzbh_request_parse(struct mzbh_msg *m, uint64_t generation, struct mzb_request **out,
                       const char **why);

#endif
