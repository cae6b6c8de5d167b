/*
 * Protocol constants shared by the plugin, the bridge and the handler library.
 * docs/protocol.md describes the frames these names stand for.
 */
#ifndef MZB_PROTO_H
#define MZB_PROTO_H

#define MZB_PROTO_ID "MZB01"

enum mzb_cmd {
    MZB_CMD_DISPATCH = 0x01,
    MZB_CMD_HEARTBEAT = 0x02,
    MZB_CMD_BATCH = 0x03,
    MZB_CMD_ACK = 0x11,
    MZB_CMD_BRIDGE_HEARTBEAT = 0x12,
    MZB_CMD_RETRY = 0x13,
};

#define MDP_WORKER_ID "MDPW01"
#define MDP_CLIENT_ID "MDPC01"

enum mdp_cmd {
    MDP_READY = 0x01,
    MDP_REQUEST = 0x02,
    MDP_REPLY = 0x03,
    MDP_HEARTBEAT = 0x04,
    MDP_DISCONNECT = 0x05,
};

/* User property that marks an error reply, and its values. */
#define MZB_ERROR_PROPERTY "mzb-error"
#define MZB_ERROR_TIMEOUT "timeout"
#define MZB_ERROR_NO_HANDLER "no-handler"
#define MZB_ERROR_OVERLOADED "overloaded"
#define MZB_ERROR_HANDLER_LOST "handler-lost"

#endif
