"""C06: a QoS 2 PUBLISH resent with DUP=1 before PUBREL reaches the plugin twice in 2.0.11,
while the broker delivers it once. The service must see it once."""
import socket
import struct
import time

from harness import StackTest, wait_for, main


def remaining_length(n):
    out = b""
    while True:
        byte = n % 128
        n //= 128
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def packet(first, body):
    return bytes([first]) + remaining_length(len(body)) + body


def mqtt_str(s):
    return struct.pack(">H", len(s)) + s


def connect(client_id):
    body = mqtt_str(b"MQTT") + b"\x04\x02" + struct.pack(">H", 30) + mqtt_str(client_id)
    return packet(0x10, body)


def publish_qos2(topic, mid, payload, dup):
    return packet(0x34 | (0x08 if dup else 0), mqtt_str(topic) + struct.pack(">H", mid) + payload)


def pubrel(mid):
    return packet(0x62, struct.pack(">H", mid))


class Qos2Repeat(StackTest):
    stack_args = {"routes": [{"filter": "events/#", "service": "store", "mode": "event"}]}

    def raw_client(self, client_id):
        s = socket.create_connection(("127.0.0.1", self.stack.mqtt_port), timeout=5)
        s.sendall(connect(client_id))
        self.assertEqual(s.recv(4)[:1], b"\x20")  # CONNACK
        return s

    def test_dup_publish_before_pubrel_is_dispatched_once(self):
        w = self.worker("store", lambda p, m: [p])
        self.stack.wait_handlers("store", 1)
        sub = self.client()
        sub.subscribe("events/#", qos=2)
        s = self.raw_client(b"raw-q2")
        s.sendall(publish_qos2(b"events/q2", 7, b"once", dup=False))
        s.sendall(publish_qos2(b"events/q2", 7, b"once", dup=True))
        time.sleep(0.3)
        s.sendall(pubrel(7))
        self.assertEqual(sub.wait_count(1), 1)
        time.sleep(0.5)
        self.assertEqual(len(sub.messages), 1)
        self.assertEqual([r[0] for r in w.received], [b"once"])
        s.close()

    def test_qos2_without_pubrel_still_reaches_service_once(self):
        w = self.worker("store", lambda p, m: [p])
        self.stack.wait_handlers("store", 1)
        s = self.raw_client(b"raw-q2b")
        s.sendall(publish_qos2(b"events/q2b", 9, b"unreleased", dup=False))
        self.assertTrue(wait_for(lambda: len(w.received) == 1))
        s.sendall(publish_qos2(b"events/q2b", 9, b"unreleased", dup=True))
        time.sleep(0.5)
        self.assertEqual(len(w.received), 1)
        s.close()


if __name__ == "__main__":
    main()
