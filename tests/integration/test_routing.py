"""Routing on a real broker: what reaches a handler, what does not, and that normal MQTT
delivery is untouched."""
import os
import sqlite3
import time

from harness import StackTest, decode_meta, request_props, wait_for, main


def echo(payload, meta):
    return [payload]


class Routing(StackTest):
    stack_args = {"routes": [
        {"filter": "events/#", "service": "store", "mode": "event"},
        {"filter": "sport/#", "service": "svc_a", "mode": "event"},
        {"filter": "+/#", "service": "svc_a", "mode": "event"},
        {"filter": "sport/+", "service": "svc_b", "mode": "event"},
        {"filter": "foo/+/#", "service": "svc_c", "mode": "event"},
        {"filter": "/+", "service": "svc_d", "mode": "event"},
    ]}

    def test_event_reaches_handler_and_subscribers_still_receive(self):
        w = self.worker("store", echo)
        self.stack.wait_handlers("store", 1)
        sub = self.client()
        sub.subscribe("events/#")
        pub = self.client()
        pub.publish("events/kitchen/temp", b"21.5", qos=1)
        self.assertEqual(sub.wait_count(1), 1)
        self.assertEqual(sub.messages[0].payload, b"21.5")
        self.assertTrue(wait_for(lambda: len(w.received) == 1))
        payload, meta = w.received[0][0], decode_meta(w.received[0][1])
        self.assertEqual(payload, b"21.5")
        self.assertEqual(meta["topic"], b"events/kitchen/temp")
        self.assertEqual(meta["qos"], 1)
        self.assertEqual(meta["client_id"], pub.client_id.encode())
        self.assertEqual(meta["route"], b"events/#")
        self.assertEqual(meta["mode"], 0)

    def test_unrouted_topic_is_not_dispatched(self):
        w = self.worker("store", echo)
        self.stack.wait_handlers("store", 1)
        pub = self.client()
        pub.publish("other", b"x", qos=1)  # "other" has one level: only "+/#" could match
        pub.publish("events/x", b"y", qos=1)
        self.assertTrue(wait_for(lambda: len(w.received) == 1))
        time.sleep(0.3)
        self.assertEqual([r[0] for r in w.received], [b"y"])

    def test_one_dispatch_per_service_and_parent_level_match(self):
        a = self.worker("svc_a", echo)
        b = self.worker("svc_b", echo)
        c = self.worker("svc_c", echo)
        d = self.worker("svc_d", echo)
        for s in ("svc_a", "svc_b", "svc_c", "svc_d"):
            self.stack.wait_handlers(s, 1)
        pub = self.client()
        # "sport" matches sport/# (parent level) and +/# for svc_a: one dispatch only.
        pub.publish("sport", b"1", qos=1)
        # "sport/" matches sport/+ (empty level) for svc_b, and svc_a once more.
        pub.publish("sport/", b"2", qos=1)
        # "foo/bar" matches foo/+/# by the parent rule.
        pub.publish("foo/bar", b"3", qos=1)
        # "/finance" has an empty first level: /+ matches, svc_a's +/# matches too.
        pub.publish("/finance", b"4", qos=1)
        self.assertTrue(wait_for(lambda: len(a.received) >= 4 and len(b.received) >= 1
                                 and len(c.received) >= 1 and len(d.received) >= 1))
        time.sleep(0.3)
        self.assertEqual(sorted(r[0] for r in a.received), [b"1", b"2", b"3", b"4"])
        self.assertEqual([r[0] for r in b.received], [b"2"])
        self.assertEqual([r[0] for r in c.received], [b"3"])
        self.assertEqual([r[0] for r in d.received], [b"4"])

    def test_sys_topics_are_not_routed_by_wildcards(self):
        a = self.worker("svc_a", echo)
        self.stack.wait_handlers("svc_a", 1)
        pub = self.client()
        pub.publish("$fake/x", b"dollar", qos=1)
        pub.publish("plain/x", b"plain", qos=1)
        self.assertTrue(wait_for(lambda: len(a.received) >= 1))
        time.sleep(0.3)
        self.assertEqual([r[0] for r in a.received], [b"plain"])

    def test_v5_metadata_travels_byte_for_byte(self):
        w = self.worker("store", echo)
        self.stack.wait_handlers("store", 1)
        pub = self.client()
        corr = bytes(range(256))
        props = request_props("some/topic", corr, [("k1", "v1"), ("k1", "v2"), ("ü", "ß")])
        props.ContentType = "application/octet-stream"
        pub.publish("events/meta", b"\x00\x01\x02", qos=2, props=props)
        self.assertTrue(wait_for(lambda: len(w.received) == 1))
        payload, meta = w.received[0][0], decode_meta(w.received[0][1])
        self.assertEqual(payload, b"\x00\x01\x02")
        self.assertEqual(meta["correlation"], corr)
        self.assertEqual(meta["content_type"], b"application/octet-stream")
        self.assertEqual(meta["response_topic"], b"some/topic")
        self.assertEqual(meta["user_properties"],
                         [(b"k1", b"v1"), (b"k1", b"v2"), ("ü".encode(), "ß".encode())])
        self.assertEqual(meta["protocol"], 5)
        self.assertEqual(meta["qos"], 2)

    def test_empty_retained_payload_is_forwarded(self):
        """C11: a retained-clear reaches the plugin with a NULL payload."""
        w = self.worker("store", echo)
        self.stack.wait_handlers("store", 1)
        pub = self.client()
        pub.publish("events/retained", b"set", qos=1, retain=True)
        pub.publish("events/retained", b"", qos=1, retain=True)
        self.assertTrue(wait_for(lambda: len(w.received) == 2))
        first, second = decode_meta(w.received[0][1]), decode_meta(w.received[1][1])
        self.assertEqual(w.received[1][0], b"")
        self.assertTrue(first["retain"])
        self.assertTrue(second["retain"])
        self.assertEqual(second["qos"], 1)
        self.assertTrue(self.stack.broker.alive())


class StoreHandler(StackTest):
    stack_args = {"routes": [{"filter": "events/#", "service": "store", "mode": "event"}]}

    def test_mzb_store_writes_events_to_sqlite(self):
        db = os.path.join(self.stack.dir, "events.sqlite")
        self.stack.add("store", [os.environ["MZB_STORE"], "-c", self.stack.config_path,
                                 "-s", "store", "-d", db])
        self.stack.wait_handlers("store", 1)
        pub = self.client(v5=False, client_id="sensor-7")
        for i in range(20):
            pub.publish("events/sensor/%d" % i, b"v%d" % i, qos=1)

        def rows():
            try:
                with sqlite3.connect(db) as conn:
                    return conn.execute("select topic, client_id, payload from events "
                                        "order by topic").fetchall()
            except sqlite3.Error:
                return []
        self.assertTrue(wait_for(lambda: len(rows()) == 20))
        got = rows()
        self.assertIn(("events/sensor/7", "sensor-7", b"v7"), got)


if __name__ == "__main__":
    main()
