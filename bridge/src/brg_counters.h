/*
 * brg_counters: every counter the bridge keeps. One list drives the struct,
 * the periodic log line and the mmi.stats JSON, so they never disagree.
 */
#ifndef BRG_COUNTERS_H
#define BRG_COUNTERS_H

#include <stdint.h>

#define BRG_COUNTER_LIST(X)                                                                        \
    X(dispatches_received)      /* DISPATCH messages from plugins */                               \
    X(dispatches_malformed)     /* bad frame count, service name or metadata */                    \
    X(dispatch_unknown_service) /* DISPATCH for a service no route names: ACKed, dropped */        \
    X(duplicates_dropped)       /* resends of a message already queued or in flight */             \
    X(plugin_frames_malformed)  /* plugin messages with a bad header or command */                 \
    X(handler_frames_malformed) /* MDP messages the bridge could not parse */                      \
    X(client_requests)          /* MDP client requests for handler services */                     \
    X(mmi_requests)             /* MDP client requests answered by the bridge */                   \
    X(requests_dispatched)      /* REQUESTs sent to handlers */                                    \
    X(requests_requeued)        /* returned to a queue after their handler was dropped */          \
    X(replies_received)         /* REPLYs that finished a request in time */                       \
    X(late_replies)             /* REPLYs for requests answered with a timeout already */          \
    X(unexpected_replies)       /* REPLYs for no request the handler holds */                      \
    X(replies_published)        /* MQTT publishes handed to the client library */                  \
    X(reply_undeliverable)      /* answers with no or an unusable reply topic */                   \
    X(error_timeout)            /* error replies by kind */                                        \
    X(error_no_handler)                                                                            \
    X(error_overloaded)                                                                            \
    X(error_handler_lost)                                                                          \
    X(deferred_queue_full)     /* QoS 1/2 events handed back (RETRY) by a full service queue */    \
    X(drop_event_queue_full)   /* QoS 0 events refused by a full service queue */                  \
    X(drop_event_handler_lost) /* QoS 0 events lost with their handler */                          \
    X(drop_client_queue_full)  /* MDP client requests refused by a full queue */                   \
    X(drop_reply_backlog_full) /* replies dropped while MQTT was down */                           \
    X(drop_out_of_memory)      /* requests refused for want of memory */                           \
    X(client_service_limit)    /* MDP client requests refused: too many unconfigured services */   \
    X(ready_service_limit)     /* READYs refused: too many unconfigured services */                \
    X(handlers_registered)                                                                         \
    X(handlers_dropped_silent)      /* idle, and silent for heartbeat_ms * liveness */             \
    X(handlers_dropped_unreachable) /* connection gone (EHOSTUNREACH) */                           \
    X(handlers_dropped_disconnect)  /* sent DISCONNECT */                                          \
    X(handlers_dropped_protocol)    /* broke the protocol and were sent DISCONNECT */              \
    X(acks_sent)                    /* message ids acknowledged to plugins */                      \
    X(retries_sent)                 /* message ids handed back to plugins with RETRY */            \
    X(mqtt_disconnects)

struct brg_counters {
#define BRG_COUNTER_FIELD(name) uint64_t name;
    BRG_COUNTER_LIST(BRG_COUNTER_FIELD)
#undef BRG_COUNTER_FIELD
};

#endif
