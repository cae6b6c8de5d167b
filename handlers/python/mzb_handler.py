"""Handlers for mosquitto-zmq-bridge written in Python.

A handler connects to the bridge's handler endpoint and serves one service,
speaking the worker side of MDP/0.1 (docs/protocol.md, section 3). This module
sends heartbeats, notices a silent bridge and reconnects, decodes the metadata
frame (section 2) and answers at once an event it finished recently when the
bridge sends it again after a restart.

Needs pyzmq; on Debian run it with /usr/bin/python3 (package python3-zmq).

    worker = Worker("tcp://127.0.0.1:5602", "pyecho")
    try:
        while True:
            req = worker.recv()
            if req is not None:
                worker.reply(req, req.payload)
    finally:
        worker.close()

A Worker belongs to one thread. Heartbeats go out only inside recv(), so answer
each request within heartbeat_ms * liveness.

credit (64 by default, 1 to 1000) is how many requests the bridge may send before
it waits for an answer; recv() hands them out in order, reading those already
waiting without polling. credit=1 is plain MDP, one request at a time.
"""

import collections
import logging
import struct
import time

import zmq

__all__ = ["Metadata", "MetadataError", "Request", "Worker", "decode_metadata",
           "MODE_EVENT", "MODE_REQUEST"]

MDP_WORKER = b"MDPW01"
READY = b"\x01"
REQUEST = b"\x02"
REPLY = b"\x03"
HEARTBEAT = b"\x04"
DISCONNECT = b"\x05"

MODE_EVENT = 0
MODE_REQUEST = 1

DEFAULT_CREDIT = 64
MAX_CREDIT = 1000  # the most the bridge accepts

TAG_TOPIC = 1
TAG_CLIENT_ID = 2
TAG_USERNAME = 3
TAG_CONTENT_TYPE = 4
TAG_RESPONSE_TOPIC = 5
TAG_CORRELATION = 6
TAG_USER_PROPERTY = 7
TAG_REPLY_TOPIC = 8
TAG_ROUTE = 9

# version, mode, qos, flags, protocol, reply qos, reserved, message id, timeout
_HEADER = struct.Struct(">BBBBBBHQI")
_FIELD = struct.Struct(">BI")
_KEY_LEN = struct.Struct(">H")

_TEXT_TAGS = {
    TAG_TOPIC: "topic",
    TAG_CLIENT_ID: "client_id",
    TAG_USERNAME: "username",
    TAG_CONTENT_TYPE: "content_type",
    TAG_RESPONSE_TOPIC: "response_topic",
    TAG_REPLY_TOPIC: "reply_topic",
    TAG_ROUTE: "route",
}

_DROP_LOG_INTERVAL_S = 5.0

log = logging.getLogger("mzb_handler")


class MetadataError(ValueError):
    """The metadata frame breaks docs/protocol.md, section 2."""


class Metadata:
    """One publish as the plugin saw it. Text fields are str (None when absent)."""

    __slots__ = ("mode", "qos", "retain", "protocol", "reply_qos", "message_id",
                 "timeout_ms", "topic", "client_id", "username", "content_type",
                 "response_topic", "correlation", "user_properties", "reply_topic", "route")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, None)
        self.user_properties = []

    def __repr__(self):
        return "Metadata(topic=%r, client_id=%r, qos=%r, message_id=%#x)" % (
            self.topic, self.client_id, self.qos, self.message_id)


def _text(value):
    # MQTT strings are UTF-8; a bad byte must not stop the handler.
    return value.decode("utf-8", errors="replace")


def _decode_header(frame, meta):
    if len(frame) < _HEADER.size:
        raise MetadataError("metadata frame is shorter than its 20-byte header")
    version, mode, qos, flags, protocol, reply_qos, _, msg_id, timeout = \
        _HEADER.unpack_from(frame)
    if version != 1:
        raise MetadataError("metadata frame has format version %d, not 1" % version)
    if mode > MODE_REQUEST or qos > 2 or reply_qos > 2:
        raise MetadataError("metadata header holds a mode or QoS out of range")
    meta.mode, meta.qos, meta.retain = mode, qos, bool(flags & 1)
    meta.protocol, meta.reply_qos = protocol, reply_qos
    meta.message_id, meta.timeout_ms = msg_id, timeout


def _decode_user_property(value, meta):
    if len(value) < _KEY_LEN.size:
        raise MetadataError("a user property field is shorter than its key length")
    (key_len,) = _KEY_LEN.unpack_from(value)
    if key_len > len(value) - _KEY_LEN.size:
        raise MetadataError("a user property key runs past its field")
    key = value[_KEY_LEN.size:_KEY_LEN.size + key_len]
    meta.user_properties.append((_text(key), _text(value[_KEY_LEN.size + key_len:])))


def _decode_field(tag, value, meta):
    if tag in _TEXT_TAGS:
        setattr(meta, _TEXT_TAGS[tag], _text(value))
    elif tag == TAG_CORRELATION:
        meta.correlation = bytes(value)
    elif tag == TAG_USER_PROPERTY:
        _decode_user_property(value, meta)
    # Other tags are skipped: fields may be added without a new version.


def decode_metadata(frame):
    """Decodes a metadata frame (bytes) into a Metadata, or raises MetadataError."""
    frame = bytes(frame)
    meta = Metadata()
    _decode_header(frame, meta)
    pos = _HEADER.size
    while pos < len(frame):
        if len(frame) - pos < _FIELD.size:
            raise MetadataError("a metadata field header runs past the end of the frame")
        tag, length = _FIELD.unpack_from(frame, pos)
        pos += _FIELD.size
        if length > len(frame) - pos:
            raise MetadataError("a metadata field runs past the end of the frame")
        _decode_field(tag, frame[pos:pos + length], meta)
        pos += length
    if meta.topic is None:
        raise MetadataError("metadata frame has no topic field")
    return meta


class Request:
    """A request from the bridge. metadata is None for a plain MDP client."""

    __slots__ = ("payload", "metadata", "address", "_generation")

    def __init__(self, payload, metadata, address, generation):
        self.payload = payload
        self.metadata = metadata
        self.address = address
        self._generation = generation

    @property
    def topic(self):
        return self.metadata.topic if self.metadata else None

    @property
    def client_id(self):
        return self.metadata.client_id if self.metadata else None

    @property
    def is_event(self):
        return self.metadata is not None and self.metadata.mode == MODE_EVENT


class _Finished:
    """The ids of the last `size` finished events, oldest forgotten first."""

    def __init__(self, size):
        self._order = collections.deque()
        self._ids = set()
        self._size = max(1, size)

    def __contains__(self, msg_id):
        return msg_id in self._ids

    def add(self, msg_id):
        if msg_id in self._ids:
            return
        if len(self._order) >= self._size:
            self._ids.discard(self._order.popleft())
        self._order.append(msg_id)
        self._ids.add(msg_id)


class Worker:
    """The worker side of MDP/0.1 for one service."""

    def __init__(self, endpoint, service, heartbeat_ms=1000, liveness=4, reconnect_ms=1000,
                 dedup_size=4096, context=None, credit=DEFAULT_CREDIT):
        if not endpoint or not service:
            raise ValueError("a Worker needs an endpoint and a service name")
        if not isinstance(credit, int) or not 1 <= credit <= MAX_CREDIT:
            raise ValueError("credit must be a whole number from 1 to %d" % MAX_CREDIT)
        self.credit = credit
        self.endpoint = endpoint
        self.service = service.encode() if isinstance(service, str) else bytes(service)
        self.heartbeat_s = heartbeat_ms / 1000.0
        self.liveness = liveness
        self.reconnect_s = reconnect_ms / 1000.0
        self._ctx = context or zmq.Context.instance()
        self._sock = None
        self._generation = 0
        self._connected_at = 0.0
        self._reconnect_at = 0.0
        self._last_rx = 0.0
        self._next_heartbeat = 0.0
        self._silence_logged = False
        self._finished = _Finished(dedup_size)
        self._last_drop_log = None
        self._connect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, command, *frames):
        # NOBLOCK: a full queue means the bridge is gone, which the liveness check handles.
        try:
            self._sock.send_multipart([b"", MDP_WORKER, command] + list(frames), zmq.NOBLOCK)
        except zmq.Again:
            log.debug("service %s: queue to %s full, command %r dropped",
                      self.service.decode(errors="replace"), self.endpoint, command)

    def _connect(self):
        now = time.monotonic()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        if self.endpoint.startswith("tcp://["):
            self._sock.setsockopt(zmq.IPV6, 1)
        self._sock.connect(self.endpoint)
        self._connected_at = self._last_rx = now
        self._next_heartbeat = now + self.heartbeat_s
        if self.credit > 1:
            self._send(READY, self.service, b"credit=%d" % self.credit)
        else:
            self._send(READY, self.service)

    def _drop_connection(self):
        self._sock.close(linger=0)
        self._sock = None
        self._generation += 1
        self._reconnect_at = max(time.monotonic(), self._connected_at + self.reconnect_s)

    def close(self):
        """Says DISCONNECT and closes the socket. Safe to call twice."""
        if self._sock is None:
            return
        self._send(DISCONNECT)
        self._sock.close(linger=100)
        self._sock = None

    def _log_drop(self, why):
        now = time.monotonic()
        if self._last_drop_log is not None and now - self._last_drop_log < _DROP_LOG_INTERVAL_S:
            log.debug("dropped a message from %s: %s", self.endpoint, why)
            return
        self._last_drop_log = now
        log.warning("dropped a message from %s: %s; check that the peer there is an "
                    "mzb-bridge of this release", self.endpoint, why)

    def _keep_alive(self):
        now = time.monotonic()
        if self._sock is None:
            if now >= self._reconnect_at:
                self._connect()
            return
        silent = now - self._last_rx
        if silent >= self.heartbeat_s * self.liveness:
            level = logging.DEBUG if self._silence_logged else logging.WARNING
            log.log(level, "nothing from the bridge at %s for %.0f ms; reconnecting "
                    "(is mzb-bridge running there?)", self.endpoint, silent * 1000)
            self._silence_logged = True
            self._drop_connection()
        elif now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_s
            self._send(HEARTBEAT)

    def _next_duty(self):
        if self._sock is None:
            return self._reconnect_at
        return min(self._next_heartbeat, self._last_rx + self.heartbeat_s * self.liveness)

    def _note_traffic(self):
        self._last_rx = time.monotonic()
        if self._silence_logged:
            log.info("the bridge at %s answers again", self.endpoint)
            self._silence_logged = False

    def _on_request(self, frames):
        if len(frames) < 3 or not 1 <= len(frames[0]) <= 255 or frames[1]:
            self._log_drop("a REQUEST without a usable client address")
            return None
        address, payload = frames[0], frames[2]
        meta = None
        if len(frames) > 3:
            try:
                meta = decode_metadata(frames[3])
            except MetadataError as err:
                self._log_drop("a REQUEST with bad metadata: %s" % err)
                self._reply_frames(address, self._generation, b"")
                return None
        req = Request(payload, meta, address, self._generation)
        if req.is_event and meta.message_id in self._finished:
            log.debug("event %016x was handled already; answering its resend at once",
                      meta.message_id)
            self._reply_frames(address, self._generation, b"")
            return None
        return req

    def _dispatch(self, frames):
        if len(frames) < 3 or frames[0] or frames[1] != MDP_WORKER or len(frames[2]) != 1:
            self._log_drop("it does not start with an empty frame, MDPW01 and a command")
            return None
        self._note_traffic()
        command = frames[2]
        if command == REQUEST:
            return self._on_request(frames[3:])
        if command == DISCONNECT:
            log.info("the bridge at %s asked to disconnect; reconnecting", self.endpoint)
            self._drop_connection()
        elif command != HEARTBEAT:
            self._log_drop("its command %r is not one a bridge sends to a worker" % command)
        return None

    def _read_waiting(self):
        """The frames of a message already waiting, or None; never blocks."""
        if self._sock is None:
            return None
        try:
            return self._sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    def _wait(self, seconds):
        ms = max(0, int(seconds * 1000))
        if self._sock is None:
            time.sleep(ms / 1000.0)
            return False
        return bool(self._sock.poll(ms, zmq.POLLIN))

    def recv(self, timeout_ms=None):
        """Returns the next Request, or None after timeout_ms (None: wait without limit).

        Sends heartbeats and reconnects while it waits. Raises zmq.ZMQError when
        ZeroMQ fails and KeyboardInterrupt on SIGINT as usual.
        """
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        while True:
            self._keep_alive()
            frames = self._read_waiting()
            if frames is not None:
                req = self._dispatch(frames)
                if req is not None:
                    return req
                continue
            until = self._next_duty()
            if deadline is not None:
                until = min(until, deadline)
            if self._wait(until - time.monotonic()):
                req = self._dispatch(self._sock.recv_multipart())
                if req is not None:
                    return req
            elif deadline is not None and time.monotonic() >= deadline:
                return None

    def _reply_frames(self, address, generation, body):
        if self._sock is None or generation != self._generation:
            log.info("a request came before the last reconnect to %s; its answer is dropped "
                     "and the bridge gives the request to another handler", self.endpoint)
            return
        self._send(REPLY, address, b"", body)

    def reply(self, request, data=b""):
        """Answers request with data (bytes or str). On event routes the body is ignored."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._reply_frames(request.address, request._generation, bytes(data))
        # The work is done even if the reply got lost, so a resend must not repeat it.
        if request.is_event:
            self._finished.add(request.metadata.message_id)

    def done(self, request):
        """Says request is finished without an answer (an empty REPLY, as MDP requires)."""
        self.reply(request, b"")
