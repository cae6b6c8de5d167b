#!/usr/bin/python3
"""handlers/python: mzb_handler.py against a fake bridge, and pyecho.py as a process.

Run with /usr/bin/python3 (Debian's python3-zmq); ctest sets PYTHONPATH.
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import zmq

import mzb_handler

PYECHO = os.path.join(os.path.dirname(os.path.abspath(mzb_handler.__file__)), "pyecho.py")
WAIT_MS = 5000


def field(tag, value):
    return struct.pack(">BI", tag, len(value)) + value


def encode_meta(topic=b"t/1", client=b"c1", msg_id=1, mode=0, qos=1, retain=0, props=(),
                extra=b""):
    """The metadata frame as docs/protocol.md section 2 writes it, built independently."""
    out = struct.pack(">BBBBBBHQI", 1, mode, qos, retain, 5, qos, 0, msg_id, 0)
    out += field(1, topic) + field(2, client)
    for key, value in props:
        out += field(7, struct.pack(">H", len(key)) + key + value)
    out += field(9, b"#") + extra
    return out


class FakeBridge:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mzb-pyhandler-")
        self.endpoint = "ipc://%s/bridge.sock" % self.dir
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(self.endpoint)

    def close(self):
        self.router.close()
        self.ctx.term()
        shutil.rmtree(self.dir, ignore_errors=True)

    def expect(self, command, timeout_ms=WAIT_MS):
        """The next worker message with this command, skipping others; None on timeout."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left < 0 or not self.router.poll(left):
                return None
            frames = self.router.recv_multipart()
            if frames[1:4] == [b"", b"MDPW01", command]:
                return frames

    def count_heartbeats(self, timeout_ms):
        count = 0
        while self.router.poll(timeout_ms):
            frames = self.router.recv_multipart()
            count += frames[3] == mzb_handler.HEARTBEAT
        return count

    def send(self, ident, command, *frames):
        self.router.send_multipart([ident, b"", b"MDPW01", command] + list(frames))

    def request(self, ident, address, payload, meta=None):
        frames = [address, b"", payload] + ([meta] if meta is not None else [])
        self.send(ident, mzb_handler.REQUEST, *frames)


class MetadataTest(unittest.TestCase):
    def test_decodes_every_field(self):
        frame = encode_meta(topic="temp/ü".encode(), msg_id=0xabcdef0123456789, mode=1, qos=2,
                            retain=1, props=[(b"k", b"v1"), (b"k", b"")],
                            extra=field(6, b"\x00\xff") + field(3, b"alice") + field(99, b"?"))
        meta = mzb_handler.decode_metadata(frame)
        self.assertEqual(meta.topic, "temp/ü")
        self.assertEqual(meta.client_id, "c1")
        self.assertEqual(meta.username, "alice")
        self.assertEqual(meta.message_id, 0xabcdef0123456789)
        self.assertEqual((meta.mode, meta.qos, meta.retain, meta.protocol), (1, 2, True, 5))
        self.assertEqual(meta.correlation, b"\x00\xff")
        self.assertEqual(meta.user_properties, [("k", "v1"), ("k", "")])
        self.assertEqual(meta.route, "#")
        self.assertIsNone(meta.response_topic)

    def test_rejects_malformed_frames(self):
        good = encode_meta()
        bad = [good[:10], b"\x02" + good[1:], good[:2] + b"\x03" + good[3:],
               good + b"\x01\x00\x00\x01\x00", good[:20] + field(2, b"c"),
               good + field(7, b"\x00\x09ab")]
        for frame in bad:
            with self.assertRaises(mzb_handler.MetadataError, msg=frame):
                mzb_handler.decode_metadata(frame)


class WorkerTest(unittest.TestCase):
    def setUp(self):
        self.fb = FakeBridge()
        self.worker = None

    def tearDown(self):
        if self.worker:
            self.worker.close()
        self.fb.close()

    def connect(self, **kw):
        opts = dict(heartbeat_ms=50, liveness=100, reconnect_ms=10)
        opts.update(kw)
        self.worker = mzb_handler.Worker(self.fb.endpoint, "svc", **opts)
        ready = self.fb.expect(mzb_handler.READY)
        self.assertIsNotNone(ready)
        self.assertEqual(ready[4], b"svc")
        return ready[0]

    def test_request_and_reply(self):
        ident = self.connect()
        self.fb.request(ident, b"A" * 8, b"hello", encode_meta(topic=b"x/y", mode=1))
        req = self.worker.recv(WAIT_MS)
        self.assertEqual((req.payload, req.topic, req.client_id), (b"hello", "x/y", "c1"))
        self.worker.reply(req, "answer")
        reply = self.fb.expect(mzb_handler.REPLY)
        self.assertEqual(reply[4:], [b"A" * 8, b"", b"answer"])

    def test_plain_mdp_request(self):
        ident = self.connect()
        self.fb.request(ident, b"B" * 8, b"plain")
        req = self.worker.recv(WAIT_MS)
        self.assertIsNone(req.metadata)
        self.assertIsNone(req.topic)
        self.worker.done(req)
        self.assertEqual(self.fb.expect(mzb_handler.REPLY)[4:], [b"B" * 8, b"", b""])

    def test_heartbeats(self):
        self.connect()
        self.assertIsNone(self.worker.recv(400))
        self.assertGreaterEqual(self.fb.count_heartbeats(100), 4)

    def test_resent_event_is_answered_not_delivered(self):
        ident = self.connect()
        self.fb.request(ident, b"1" * 8, b"x", encode_meta(msg_id=7))
        self.worker.done(self.worker.recv(WAIT_MS))
        self.fb.expect(mzb_handler.REPLY)
        self.fb.request(ident, b"2" * 8, b"x", encode_meta(msg_id=7))
        self.assertIsNone(self.worker.recv(200))
        self.assertEqual(self.fb.expect(mzb_handler.REPLY)[4], b"2" * 8)

    def test_silent_bridge_causes_reconnect(self):
        first = self.connect(heartbeat_ms=30, liveness=3)
        self.assertIsNone(self.worker.recv(300))
        again = self.fb.expect(mzb_handler.READY)
        self.assertIsNotNone(again)
        self.assertNotEqual(again[0], first)

    def test_malformed_messages_are_dropped(self):
        ident = self.connect()
        self.fb.router.send_multipart([ident, b"junk"])
        self.fb.router.send_multipart([ident, b"", b"MDPC01", b"\x02"])
        self.fb.send(ident, b"\x7f")
        self.fb.send(ident, mzb_handler.REQUEST, b"")
        self.fb.request(ident, b"C" * 8, b"p", b"\x01\x00")
        self.fb.request(ident, b"D" * 8, b"good", encode_meta())
        req = self.worker.recv(WAIT_MS)
        self.assertEqual(req.payload, b"good")
        self.assertEqual(self.fb.expect(mzb_handler.REPLY)[4], b"C" * 8)

    def test_close_sends_disconnect(self):
        self.connect()
        self.worker.close()
        self.worker = None
        self.assertIsNotNone(self.fb.expect(mzb_handler.DISCONNECT))


class PyechoTest(unittest.TestCase):
    def setUp(self):
        self.fb = FakeBridge()

    def tearDown(self):
        self.fb.close()

    def test_answers_upper_case_and_stops_on_sigterm(self):
        proc = subprocess.Popen([sys.executable, PYECHO, "--endpoint", self.fb.endpoint,
                                 "--service", "pyecho"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            ready = self.fb.expect(mzb_handler.READY, 10000)
            self.assertIsNotNone(ready)
            self.fb.request(ready[0], b"E" * 8, b"hello", encode_meta(topic=b"demo/rpc/py"))
            self.assertEqual(self.fb.expect(mzb_handler.REPLY)[6], b"HELLO")
            self.fb.request(ready[0], b"F" * 8, b"\xff\x00")
            self.assertEqual(self.fb.expect(mzb_handler.REPLY)[6], b"\xff\x00")
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0)
        self.assertIn(b"topic=demo/rpc/py client=c1 bytes=5", out)

    def test_bad_arguments_exit_2(self):
        proc = subprocess.run([sys.executable, PYECHO, "--service", "x"], capture_output=True)
        self.assertEqual(proc.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
