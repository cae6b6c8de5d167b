#!/usr/bin/python3
"""Writes the JSON configuration (docs/config.md) for one benchmark run of bench/run.sh.

  gen_config.py OUT --mqtt-port P --plugin-port P --handler-port P
                [--event FILTER] [--request FILTER] [--service NAME] [--extra-routes N]

--event and --request add the route the traffic matches; --extra-routes adds N routes that
the benchmark traffic (under bench/) never matches, spread over three shapes so the topic tree
grows in width and in depth: "bench/gN/#" (siblings of the traffic's own level),
"+/gN/temp" (a wildcard level the matcher must also walk) and "site/N/+/status".
"""
import argparse
import json


def extra_route(i):
    shape = i % 3
    if shape == 0:
        flt = "bench/g%d/#" % i
    elif shape == 1:
        flt = "+/g%d/temp" % i
    else:
        flt = "site/%d/+/status" % i
    return {"filter": flt, "service": "unused", "mode": "event"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mqtt-port", type=int, required=True)
    ap.add_argument("--plugin-port", type=int, required=True)
    ap.add_argument("--handler-port", type=int, required=True)
    ap.add_argument("--event", action="append", default=[])
    ap.add_argument("--request", action="append", default=[])
    ap.add_argument("--service", default="sink")
    ap.add_argument("--extra-routes", type=int, default=0)
    args = ap.parse_args()

    routes = []
    for flt in args.event:
        routes.append({"filter": flt, "service": args.service, "mode": "event"})
    for flt in args.request:
        routes.append({"filter": flt, "service": args.service, "mode": "request",
                       "reply_pattern": "reply/{client_id}/#", "timeout_ms": 5000})
    routes.extend(extra_route(i) for i in range(args.extra_routes))

    cfg = {
        "bridge": {
            "plugin_endpoint": "tcp://127.0.0.1:%d" % args.plugin_port,
            "handler_endpoint": "tcp://127.0.0.1:%d" % args.handler_port,
            "stats_interval_s": 0,
            "mqtt": {"host": "127.0.0.1", "port": args.mqtt_port, "client_id": "mzb-bench-bridge"},
        },
        "routes": routes,
    }
    with open(args.out, "w") as f:
        json.dump(cfg, f, indent=1 if len(routes) < 100 else None)
        f.write("\n")


if __name__ == "__main__":
    main()
