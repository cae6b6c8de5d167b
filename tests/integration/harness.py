"""Starts real parts for the integration tests: a mosquitto broker with the plugin, the
bridge daemon and handlers, all on free 127.0.0.1 ports, and stops them by pid.

Paths to the programs come from the environment that CMake sets for each test
(MZB_PLUGIN, MZB_BRIDGE, MZB_ECHO, MZB_ENRICH, MZB_STORE, MZB_PYECHO). MZB_PRELOAD, when
set, is put in LD_PRELOAD of the broker so a sanitizer-built plugin can load.
"""
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import zmq

MOSQUITTO = os.environ.get("MZB_MOSQUITTO", "/usr/sbin/mosquitto")
_used_ports = set()


def lines(path):
    """The non-empty lines of a file a worker writes, stripped; [] before it exists."""
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip()]
    except OSError:
        return []


def free_port():
    """A port on 127.0.0.1 that nothing listens on now, from a range tests share with nobody."""
    for _ in range(200):
        port = random.randint(21000, 39000)
        if port in _used_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port on 127.0.0.1")


def wait_port(port, timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening" % proc.returncode)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


class Proc:
    """One started program, its log file, and a stop that is always by pid."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL; returns the exit code and how long the stop took."""
        start = time.time()
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode, time.time() - start

    def kill(self):
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def default_routes():
    reply = {"reply_pattern": "reply/{client_id}/#", "reply_topic": "reply/{client_id}/{topic}"}
    return [
        {"filter": "events/#", "service": "store", "mode": "event"},
        dict({"filter": "rpc/echo/#", "service": "echo", "mode": "request",
              "timeout_ms": 2000}, **reply),
        dict({"filter": "rpc/slow/#", "service": "slow", "mode": "request",
              "timeout_ms": 500}, **reply),
        dict({"filter": "rpc/none/#", "service": "nobody", "mode": "request",
              "timeout_ms": 1000}, **reply),
    ]


class Stack:
    """A broker with the plugin, optionally a bridge, and handlers started on demand."""

    def __init__(self, routes=None, bridge=True, plugin=None, bridge_opts=None, start=True):
        self.dir = tempfile.mkdtemp(prefix="mzb-it-")
        # Started as root, mosquitto drops to its own user, which must still read the config.
        os.chmod(self.dir, 0o755)
        self.mqtt_port = free_port()
        self.plugin_port = free_port()
        self.handler_port = free_port()
        self.procs = []
        self.bridge = None
        self.broker = None
        b = {
            "plugin_endpoint": "tcp://127.0.0.1:%d" % self.plugin_port,
            "handler_endpoint": "tcp://127.0.0.1:%d" % self.handler_port,
            "heartbeat_ms": 250,
            "liveness": 4,
            "mqtt": {"host": "127.0.0.1", "port": self.mqtt_port},
        }
        b.update(bridge_opts or {})
        self.config = {"bridge": b, "routes": routes if routes is not None else default_routes()}
        if plugin:
            self.config["plugin"] = plugin
        self.config_path = os.path.join(self.dir, "mzb.json")
        self.write_config(self.config)
        if start:
            self.start_broker()
            if bridge:
                self.start_bridge()

    @property
    def handler_endpoint(self):
        return self.config["bridge"]["handler_endpoint"]

    def write_config(self, config):
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)

    def broker_conf(self, config_path=None):
        path = os.path.join(self.dir, "mosquitto.conf")
        with open(path, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                    "log_dest stderr\nlog_type all\npersistence false\n"
                    "max_queued_messages 100000\n"
                    "plugin %s\nplugin_opt_config %s\n"
                    % (self.mqtt_port, os.environ["MZB_PLUGIN"],
                       config_path or self.config_path))
        return path

    def broker_env(self):
        env = dict(os.environ)
        if os.environ.get("MZB_PRELOAD"):
            env["LD_PRELOAD"] = os.environ["MZB_PRELOAD"]
            env["ASAN_OPTIONS"] = "detect_leaks=1"
            env["LSAN_OPTIONS"] = "suppressions=" + os.path.join(
                os.path.dirname(os.path.abspath(__file__)), "lsan-broker.supp")
        return env

    def start_broker(self):
        self.broker = self.add("mosquitto", [MOSQUITTO, "-c", self.broker_conf()],
                               env=self.broker_env())
        wait_port(self.mqtt_port, proc=self.broker.proc)
        return self.broker

    def start_bridge(self):
        self.bridge = self.add("bridge", [os.environ["MZB_BRIDGE"], "-c", self.config_path,
                                          "-v"])
        wait_port(self.handler_port, proc=self.bridge.proc)
        if self.broker is not None and self.broker.alive():
            # Until the plugin has heard the bridge, QoS 0 dispatches are dropped by design.
            if not wait_for(lambda: (self.stats() or {}).get("plugins"), 10):
                raise RuntimeError("the plugin never reached the bridge")
        return self.bridge

    def add(self, name, argv, env=None):
        count = sum(1 for p in self.procs if p.name.startswith(name))
        proc = Proc("%s-%d" % (name, count) if count else name, argv, self.dir, env)
        self.procs.append(proc)
        return proc

    def start_echo(self, service="echo"):
        proc = self.add("echo-" + service, [os.environ["MZB_ECHO"], "-c", self.config_path,
                                             "-s", service, "-v"])
        self.wait_handlers(service, 1)
        return proc

    def wait_handlers(self, service, count, timeout=10.0):
        ok = wait_for(lambda: self.handler_count(service) >= count, timeout)
        if not ok:
            raise AssertionError("service %s never had %d handlers; stats: %s"
                                 % (service, count, self.stats()))

    def mdp_request(self, service, body, timeout=3.0):
        """One MDP/0.1 client request to the bridge; returns the reply frames or None."""
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.handler_endpoint)
        try:
            frames = [b"", b"MDPC01", service.encode()] + list(body)
            s.send_multipart(frames)
            if s.poll(int(timeout * 1000)) == 0:
                return None
            reply = s.recv_multipart()
            return reply[3:]
        finally:
            s.close()

    def stats(self):
        reply = self.mdp_request("mmi.stats", [])
        if not reply:
            return None
        return json.loads(reply[0].decode())

    def handler_count(self, service):
        reply = self.mdp_request("mmi.service", [service.encode()], timeout=1.0)
        return 1 if reply and reply[0] == b"200" else 0

    def stop(self):
        results = {}
        for p in reversed(self.procs):
            results[p.name] = p.stop()
        return results

    def sanitizer_reports(self):
        """Lines in which ASan, LSan or UBSan reported a fault in any started program."""
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
        found = []
        for p in self.procs:
            found += ["%s: %s" % (p.name, l) for l in p.text().splitlines()
                      if any(m in l for m in marks)]
        return found

    def logs(self):
        return "\n".join("==== %s\n%s" % (p.name, p.text()[-4000:]) for p in self.procs)


class Client:
    """A paho MQTT client that records what it receives."""

    def __init__(self, port, client_id=None, v5=True, clean=True):
        self.messages = []
        self.cond = threading.Condition()
        self.v5 = v5
        protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        kwargs = {"client_id": client_id or "t-%d" % random.randint(0, 1 << 30),
                  "protocol": protocol}
        if not v5:
            kwargs["clean_session"] = clean
        self.client_id = kwargs["client_id"]
        self.c = mqtt.Client(**kwargs)
        self.c.on_message = self._on_message
        self.connected = threading.Event()
        self.c.on_connect = lambda *a: self.connected.set()
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(5):
            raise RuntimeError("MQTT connect to %d failed" % port)

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def subscribe(self, topic, qos=1):
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos)
        if not done.wait(5):
            raise RuntimeError("subscribe %s failed" % topic)

    def publish(self, topic, payload, qos=1, retain=False, props=None, wait=True):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if wait and qos > 0:
            info.wait_for_publish(5)
        return info

    def wait_count(self, n, timeout=10.0):
        deadline = time.time() + timeout
        with self.cond:
            while len(self.messages) < n and time.time() < deadline:
                self.cond.wait(0.05)
            return len(self.messages)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def request_props(response_topic, correlation=None, user=None):
    props = Properties(PacketTypes.PUBLISH)
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if correlation is not None:
        props.CorrelationData = correlation
    if user:
        props.UserProperty = list(user)
    return props


def user_props(msg):
    props = getattr(msg, "properties", None)
    return dict(getattr(props, "UserProperty", []) or []) if props else {}


def decode_meta(frame):
    """Decodes a metadata frame (docs/protocol.md section 2) into a dict."""
    version, mode, qos, flags, proto, reply_qos, _, msg_id, timeout = struct.unpack(
        ">BBBBBBHQI", frame[:20])
    meta = {"mode": mode, "qos": qos, "retain": bool(flags & 1), "protocol": proto,
            "reply_qos": reply_qos, "msg_id": msg_id, "timeout_ms": timeout,
            "user_properties": []}
    names = {1: "topic", 2: "client_id", 3: "username", 4: "content_type",
             5: "response_topic", 6: "correlation", 8: "reply_topic", 9: "route"}
    pos = 20
    while pos < len(frame):
        tag, length = struct.unpack(">BI", frame[pos:pos + 5])
        value = frame[pos + 5:pos + 5 + length]
        if tag == 7:
            klen = struct.unpack(">H", value[:2])[0]
            meta["user_properties"].append((value[2:2 + klen], value[2 + klen:]))
        elif tag in names:
            meta[names[tag]] = value
        pos += 5 + length
    return meta


class MdpWorker(threading.Thread):
    """A minimal Majordomo worker written straight from 7/MDP, independent of our handler
    library: it proves that a plain MDP worker serves a route. `behaviour` decides each reply:
    a callable(payload, meta_frame) returning reply frames, or None to never answer."""

    def __init__(self, endpoint, service, behaviour, heartbeat=0.25):
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.service = service.encode()
        self.behaviour = behaviour
        self.heartbeat = heartbeat
        self.received = []
        self.stop_flag = threading.Event()

    def run(self):
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.endpoint)
        s.send_multipart([b"", b"MDPW01", b"\x01", self.service])
        next_hb = time.time() + self.heartbeat
        while not self.stop_flag.is_set():
            if s.poll(100):
                frames = s.recv_multipart()
                if len(frames) >= 3 and frames[2] == b"\x05":
                    # The broker forgot us (it restarted): register again, as MDP says.
                    s.send_multipart([b"", b"MDPW01", b"\x01", self.service])
                elif len(frames) >= 3 and frames[2] == b"\x02":
                    address, body = frames[3], frames[5:]
                    self.received.append(body)
                    reply = self.behaviour(body[0] if body else b"",
                                           body[1] if len(body) > 1 else b"")
                    if reply is not None:
                        s.send_multipart([b"", b"MDPW01", b"\x03", address, b""] + reply)
            if time.time() >= next_hb:
                s.send_multipart([b"", b"MDPW01", b"\x04"])
                next_hb = time.time() + self.heartbeat
        s.send_multipart([b"", b"MDPW01", b"\x05"])
        s.close()

    def stop(self):
        self.stop_flag.set()
        self.join(3)


class StackTest(unittest.TestCase):
    """Base class: every test gets self.stack and it is stopped afterwards, logs on failure."""

    stack_args = {}
    bridge_may_die = False

    def setUp(self):
        result = self._outcome.result
        self._problems_before = len(result.failures) + len(result.errors)
        self.stack = Stack(**self.stack_args)
        self.clients = []
        self.workers = []

    def tearDown(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        for w in self.workers:
            w.stop()
        stopped = self.stack.stop()
        reports = self.stack.sanitizer_reports()
        result = self._outcome.result
        failed = not self._outcome.success or \
            len(result.failures) + len(result.errors) > self._problems_before
        if failed or reports:
            sys.stderr.write(self.stack.logs())
        self.assertEqual(reports, [], "sanitizer reports")
        if self.stack.bridge is not None and not self.bridge_may_die:
            self.assertEqual(stopped[self.stack.bridge.name][0], 0, "mzb-bridge exit code")

    def client(self, **kw):
        c = Client(self.stack.mqtt_port, **kw)
        self.clients.append(c)
        return c

    def worker(self, service, behaviour, **kw):
        w = MdpWorker(self.stack.handler_endpoint, service, behaviour, **kw)
        w.start()
        self.workers.append(w)
        return w


def main():
    unittest.main(verbosity=2)
