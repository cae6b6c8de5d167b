#!/usr/bin/python3
"""Asks a running mzb-bridge for its state over MDP/0.1 MMI (docs/protocol.md, section 3),
for bench/run.sh. Needs /usr/bin/python3 with python3-zmq.

  mzb_mmi.py stats ENDPOINT                      print mmi.stats as JSON
  mzb_mmi.py wait-ready ENDPOINT SERVICE N       until SERVICE has N handlers and a plugin
                                                 reports to the bridge (exit 1 on timeout)
  mzb_mmi.py settle ENDPOINT SERVICE EXPECTED    until SERVICE has served EXPECTED requests,
                                                 or the counts stop moving; prints key=value

Every wait is bounded by --timeout seconds (default 15).
"""
import argparse
import json
import sys
import time

import zmq

CLIENT = b"MDPC01"


def ask(ctx, endpoint, service, body=b"", timeout_ms=1000):
    """One MDP client request; a fresh REQ socket each time so a lost reply cannot wedge it."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
    try:
        sock.connect(endpoint)
        sock.send_multipart([CLIENT, service.encode(), body])
        frames = sock.recv_multipart()
    except zmq.Again:
        return None
    finally:
        sock.close()
    if len(frames) < 3 or frames[0] != CLIENT:
        return None
    return frames[2]


def stats(ctx, endpoint):
    raw = ask(ctx, endpoint, "mmi.stats")
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return None


def service_of(st, name):
    services = st.get("services") or {}
    return services.get(name) or {}


def plugin_of(st):
    plugins = st.get("plugins") or []
    return plugins[-1] if plugins else {}


def wait_ready(ctx, args):
    deadline = time.time() + args.timeout
    st = None
    while time.time() < deadline:
        st = stats(ctx, args.endpoint)
        if st is not None:
            svc = service_of(st, args.service)
            plugin = plugin_of(st)
            if svc.get("handlers", 0) >= args.count and plugin.get("bridge_alive", 0) == 1:
                return 0
        time.sleep(0.05)
    print("mzb_mmi: service %s did not get %d handlers and a live plugin within %.0f s "
          "(last answer: %s)" % (args.service, args.count, args.timeout,
                                 "none" if st is None else json.dumps(st)[:400]),
          file=sys.stderr)
    return 1


SETTLE_KEYS = [
    ("handler_served", lambda st, svc, pl: svc.get("served", 0)),
    ("handler_received", lambda st, svc, pl: svc.get("received", 0)),
    ("bridge_dispatches", lambda st, svc, pl: st.get("dispatches_received", 0)),
    ("bridge_drop_queue_full", lambda st, svc, pl: st.get("drop_event_queue_full", 0)),
    ("bridge_errors_overloaded", lambda st, svc, pl: st.get("error_overloaded", 0)),
    ("bridge_errors_timeout", lambda st, svc, pl: st.get("error_timeout", 0)),
    ("plugin_seen", lambda st, svc, pl: pl.get("messages_seen", 0)),
    ("plugin_routed", lambda st, svc, pl: pl.get("messages_routed", 0)),
    ("plugin_queue_full", lambda st, svc, pl: pl.get("queue_full", 0)),
    ("plugin_dropped_no_bridge", lambda st, svc, pl: pl.get("dropped_no_bridge", 0)),
    ("plugin_unacked_full_dropped", lambda st, svc, pl: pl.get("unacked_full_dropped", 0)),
    ("plugin_unacked", lambda st, svc, pl: pl.get("unacked", 0)),
    ("plugin_resent", lambda st, svc, pl: pl.get("resent", 0)),
]


def snapshot(st, service):
    svc = service_of(st, service)
    pl = plugin_of(st)
    return {k: int(f(st, svc, pl)) for k, f in SETTLE_KEYS}


def settle(ctx, args):
    """Waits until the handler count reaches the expectation, or nothing moves for 1.5 s
    (QoS 0 drops never arrive). The plugin's counters come with its 1 s heartbeat, so the
    last snapshot is taken at least 1.2 s after the handler count stopped."""
    start = time.time()
    deadline = start + args.timeout
    last = None
    last_change = start
    reached_at = None
    while time.time() < deadline:
        st = stats(ctx, args.endpoint)
        if st is not None:
            snap = snapshot(st, args.service)
            if snap != last:
                last_change = time.time()
                last = snap
            if reached_at is None and snap["handler_served"] >= args.count:
                reached_at = time.time()
            if reached_at is not None and time.time() - reached_at > 1.2:
                break
            if time.time() - last_change > 1.5:
                break
        time.sleep(0.05)
    if last is None:
        print("mzb_mmi: no answer from %s" % args.endpoint, file=sys.stderr)
        return 1
    last["handler_settle_s"] = round((reached_at or last_change) - start, 3)
    print(" ".join("%s=%s" % kv for kv in last.items()))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["stats", "wait-ready", "settle"])
    ap.add_argument("endpoint")
    ap.add_argument("service", nargs="?")
    ap.add_argument("count", nargs="?", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=15.0)
    args = ap.parse_args()
    if args.command != "stats" and not args.service:
        ap.error("%s needs a SERVICE" % args.command)

    ctx = zmq.Context()
    try:
        if args.command == "stats":
            st = stats(ctx, args.endpoint)
            if st is None:
                print("mzb_mmi: no answer from %s" % args.endpoint, file=sys.stderr)
                return 1
            print(json.dumps(st, indent=2))
            return 0
        if args.command == "wait-ready":
            return wait_ready(ctx, args)
        return settle(ctx, args)
    finally:
        ctx.term()


if __name__ == "__main__":
    sys.exit(main())
