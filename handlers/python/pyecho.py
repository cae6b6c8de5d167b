#!/usr/bin/python3
"""pyecho: a handler in Python that answers with the payload, upper-cased when it is text.

The upper-casing shows which handler answered in a demo. Run it with
/usr/bin/python3 (Debian's python3-zmq):

    pyecho.py --config /etc/mosquitto-zmq-bridge/config.json --service pyecho
    pyecho.py --endpoint tcp://127.0.0.1:5602 --service pyecho

Exit codes: 0 after SIGINT or SIGTERM, 1 for a bad config file, 2 for bad arguments.
"""

import argparse
import json
import logging
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mzb_handler  # noqa: E402  (found beside this script)
import zmq  # noqa: E402

_ANY_HOSTS = {"tcp://*:": "tcp://127.0.0.1:", "tcp://0.0.0.0:": "tcp://127.0.0.1:",
              "tcp://[::]:": "tcp://[::1]:"}


def connect_endpoint(bind_endpoint):
    """The endpoint a handler on this host connects to, for the bridge's bind endpoint."""
    for any_host, local in _ANY_HOSTS.items():
        if bind_endpoint.startswith(any_host):
            return local + bind_endpoint[len(any_host):]
    return bind_endpoint


def read_config(path):
    """Returns (endpoint, heartbeat_ms, liveness) from the bridge's config file."""
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        bridge = cfg["bridge"]
        endpoint = bridge["handler_endpoint"]
        if not isinstance(endpoint, str):
            raise TypeError("bridge.handler_endpoint is not a string")
        return (connect_endpoint(endpoint), int(bridge.get("heartbeat_ms", 1000)),
                int(bridge.get("liveness", 4)))
    except OSError as err:
        raise SystemExit("pyecho: %s: %s" % (path, err.strerror)) from None
    except ValueError as err:
        raise SystemExit("pyecho: %s: not valid JSON: %s" % (path, err)) from None
    except (KeyError, TypeError, AttributeError) as err:
        raise SystemExit("pyecho: %s: no usable bridge.handler_endpoint (%s)"
                         % (path, err)) from None


def answer(payload):
    """The payload upper-cased when it is UTF-8 text, else unchanged."""
    try:
        return payload.decode("utf-8").upper().encode("utf-8")
    except UnicodeDecodeError:
        return payload


def credit_value(text):
    """--credit's value: a whole number from 1 to mzb_handler.MAX_CREDIT."""
    if not text.isdigit() or not 1 <= int(text) <= mzb_handler.MAX_CREDIT:
        raise argparse.ArgumentTypeError("needs a whole number from 1 to %d, not %r"
                                          % (mzb_handler.MAX_CREDIT, text))
    return int(text)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="pyecho", description="Answers each request with its payload, upper-cased when "
        "it is text.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint", help="the bridge's handler endpoint, tcp://HOST:PORT")
    where.add_argument("--config", help="the bridge's config file, to read the endpoint from")
    parser.add_argument("--service", required=True, help="the service to serve")
    parser.add_argument("--credit", type=credit_value, default=mzb_handler.DEFAULT_CREDIT,
                        help="requests the bridge may send before waiting for an answer "
                        "(default %(default)s; 1 is plain MDP)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug lines too")
    return parser.parse_args(argv)


def on_stop(signum, frame):
    raise KeyboardInterrupt


def serve(worker):
    while True:
        req = worker.recv()
        if req is None:
            continue
        print("pyecho: topic=%s client=%s bytes=%d" % (req.topic or "-", req.client_id or "-",
                                                       len(req.payload)), flush=True)
        worker.reply(req, answer(req.payload))


def main(argv):
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s pyecho %(levelname)s: %(message)s")
    heartbeat_ms, liveness = 1000, 4
    endpoint = args.endpoint
    if args.config:
        endpoint, heartbeat_ms, liveness = read_config(args.config)

    signal.signal(signal.SIGTERM, on_stop)
    worker = None
    try:
        worker = mzb_handler.Worker(endpoint, args.service, heartbeat_ms=heartbeat_ms,
                                    liveness=liveness, credit=args.credit)
        print("pyecho: serving %s through the bridge at %s" % (args.service, endpoint),
              flush=True)
        serve(worker)
    except KeyboardInterrupt:
        print("pyecho: stopping on a signal", flush=True)
    except zmq.ZMQError as err:
        print("pyecho: %s: %s" % (endpoint, err), file=sys.stderr)
        return 1
    finally:
        if worker is not None:
            worker.close()
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
