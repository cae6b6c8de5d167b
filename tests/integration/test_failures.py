"""Killed and missing components: handlers, the bridge, bad frames, shutdown."""
import os
import signal
import sys
import time

import zmq

from harness import Stack, StackTest, lines, request_props, user_props, wait_for, main

HERE = os.path.dirname(os.path.abspath(__file__))


def echo(payload, meta):
    return [payload]


def batch_record(service, meta, payload):
    """One record of a BATCH body (docs/protocol.md, section 1)."""
    return (bytes([len(service)]) + service + len(meta).to_bytes(4, "big") + meta
            + len(payload).to_bytes(4, "big") + payload)


def meta_qos1(msg_id, topic=b"t/x"):
    """A metadata frame of a QoS 1 event from a v5 client (docs/protocol.md, section 2)."""
    header = bytes([1, 0, 1, 0, 5, 1, 0, 0]) + msg_id.to_bytes(8, "big") + bytes(4)
    return header + b"\x01" + len(topic).to_bytes(4, "big") + topic


class KilledHandler(StackTest):
    stack_args = {"routes": [
        {"filter": "rpc/#", "service": "work", "mode": "request", "timeout_ms": 8000,
         "reply_pattern": "reply/{client_id}/#"},
        {"filter": "events/#", "service": "work", "mode": "event"},
    ]}

    def start_worker(self, mode, log):
        return self.stack.add("worker-" + mode, ["/usr/bin/python3",
                                                 os.path.join(HERE, "mdp_worker.py"),
                                                 self.stack.handler_endpoint, "work", mode, log])

    def test_request_in_flight_at_killed_handler_is_served_by_another(self):
        hang_log = os.path.join(self.stack.dir, "hang.log")
        hanging = self.start_worker("hang", hang_log)
        self.stack.wait_handlers("work", 1)
        c = self.client()
        c.subscribe("reply/%s/#" % c.client_id)
        c.publish("rpc/job", b"important", qos=1,
                  props=request_props("reply/%s/r" % c.client_id, b"k1"))
        self.assertTrue(wait_for(lambda: lines(hang_log) == [b"important".hex()]))

        self.start_worker("echo", os.path.join(self.stack.dir, "echo.log"))
        time.sleep(0.3)
        hanging.kill()
        self.assertEqual(c.wait_count(1, timeout=6), 1)
        self.assertEqual(c.messages[0].payload, b"important")
        self.assertEqual(c.messages[0].properties.CorrelationData, b"k1")
        self.assertNotIn("mzb-error", user_props(c.messages[0]))

    def test_busy_handler_is_not_dropped_during_a_long_job(self):
        """An MDP worker sends no heartbeats while it works; it must keep its request even when
        the job outlasts heartbeat_ms * liveness (1 s here), and the job must run once."""
        def slow(payload, meta):
            time.sleep(3.0)
            return [payload]
        w = self.worker("work", slow)
        self.stack.wait_handlers("work", 1)
        c = self.client()
        c.subscribe("reply/%s/#" % c.client_id)
        c.publish("rpc/long", b"long job", qos=1,
                  props=request_props("reply/%s/r" % c.client_id, b"L"))
        self.assertEqual(c.wait_count(1, timeout=8), 1)
        self.assertEqual(c.messages[0].payload, b"long job")
        self.assertNotIn("mzb-error", user_props(c.messages[0]))
        time.sleep(0.5)
        self.assertEqual(len(w.received), 1)
        self.assertEqual(self.stack.stats()["handlers_dropped_silent"], 0)

    def test_qos1_event_in_flight_at_killed_handler_is_redelivered(self):
        hang_log = os.path.join(self.stack.dir, "hang.log")
        echo_log = os.path.join(self.stack.dir, "echo.log")
        hanging = self.start_worker("hang", hang_log)
        self.stack.wait_handlers("work", 1)
        pub = self.client()
        pub.publish("events/e", b"event-1", qos=1)
        self.assertTrue(wait_for(lambda: len(lines(hang_log)) == 1))
        self.start_worker("echo", echo_log)
        time.sleep(0.3)
        hanging.kill()
        self.assertTrue(wait_for(lambda: lines(echo_log) == [b"event-1".hex()], timeout=6))


class BridgeDown(StackTest):
    stack_args = {"bridge": False, "plugin": {"max_unacked": 50, "log_interval_s": 1}}

    def test_publishers_and_subscribers_carry_on_without_bridge(self):
        """C05 and C09: no bridge; v5 and 3.1.1 QoS 1 publishers stay connected, subscribers
        get every message, nothing blocks."""
        sub = self.client()
        sub.subscribe("events/#")
        v5 = self.client()
        v311 = self.client(v5=False)
        start = time.time()
        for i in range(500):
            v5.publish("events/a", b"v5-%d" % i, qos=1, wait=False)
            v311.publish("events/b", b"v3-%d" % i, qos=1, wait=False)
        v5.publish("events/a", b"last", qos=1)
        v311.publish("events/b", b"last", qos=1)
        self.assertEqual(sub.wait_count(1002, timeout=20), 1002)
        self.assertLess(time.time() - start, 15)
        self.assertTrue(v5.c.is_connected())
        self.assertTrue(v311.c.is_connected())
        # Only max_unacked (50) QoS 1 messages are held for the absent bridge; the rest are
        # counted as dropped and logged, rate-limited.
        log = self.stack.broker.text()
        self.assertTrue(wait_for(lambda: "dropped" in self.stack.broker.text(), timeout=5), log)

    def test_messages_held_while_bridge_down_reach_handler_after_it_starts(self):
        pub = self.client()
        for i in range(30):
            pub.publish("events/held", b"m%d" % i, qos=1)
        self.stack.start_bridge()
        w = self.worker("store", echo)
        self.assertTrue(wait_for(lambda: len(w.received) >= 30, timeout=15))
        time.sleep(0.5)
        self.assertEqual(sorted(r[0] for r in w.received), sorted(b"m%d" % i for i in range(30)))

    def test_broker_stops_within_a_second_with_bridge_down(self):
        """C10: LINGER 0 everywhere, so unsent messages cannot hold the broker."""
        pub = self.client()
        for i in range(100):
            pub.publish("events/x", b"unsent", qos=1, wait=False)
        pub.publish("events/x", b"last", qos=1)
        code, took = self.stack.broker.stop()
        self.assertLess(took, 1.0)
        self.assertEqual(code, 0)


class BridgeRestart(StackTest):
    bridge_may_die = True
    stack_args = {"routes": [{"filter": "events/#", "service": "store", "mode": "event"}]}

    def test_killed_bridge_loses_no_qos1_event(self):
        """QoS 1 events that were queued in a bridge that is killed are resent by the plugin
        to the new bridge; the handler sees every one (duplicates allowed, none lost)."""
        pub = self.client()
        for i in range(100):
            pub.publish("events/k", b"k%d" % i, qos=1)
        time.sleep(0.5)  # all are queued in the bridge: there is no handler yet
        self.stack.bridge.kill()
        for i in range(100, 150):
            pub.publish("events/k", b"k%d" % i, qos=1)
        self.stack.start_bridge()
        w = self.worker("store", echo)
        want = {b"k%d" % i for i in range(150)}
        self.assertTrue(wait_for(lambda: want <= {r[0] for r in w.received}, timeout=20),
                        sorted(want - {r[0] for r in w.received})[:10])

    def test_stopped_bridge_keeps_its_handlers(self):
        """A bridge stopped (SIGSTOP) longer than heartbeat_ms * liveness did not hear its
        handlers because it was not running: it must not drop them as silent when it goes on."""
        w = self.worker("store", echo)
        self.assertTrue(wait_for(lambda: self.stack.handler_count("store") == 1))
        self.stack.bridge.signal(signal.SIGSTOP)
        time.sleep(5.5)  # the default window is 1 s * 4
        self.stack.bridge.signal(signal.SIGCONT)
        time.sleep(1.5)  # past the next heartbeat pass
        stats = self.stack.stats()
        self.assertEqual(stats["handlers_dropped_silent"], 0, stats)
        pub = self.client()
        pub.publish("events/after-stop", b"after", qos=1)
        self.assertTrue(wait_for(lambda: b"after" in {r[0] for r in w.received}))

    def test_subscribers_keep_receiving_while_bridge_is_killed(self):
        sub = self.client()
        sub.subscribe("events/#")
        pub = self.client()
        pub.publish("events/1", b"before", qos=1)
        self.stack.bridge.kill()
        pub.publish("events/2", b"during", qos=1)
        self.assertEqual(sub.wait_count(2), 2)
        self.assertTrue(pub.c.is_connected())


class FullServiceQueue(StackTest):
    stack_args = {"routes": [{"filter": "events/#", "service": "store", "mode": "event"}],
                  "bridge_opts": {"max_queue": 10}}

    def test_qos1_events_beyond_the_queue_bound_are_deferred_not_lost(self):
        """The bridge queues 10; the plugin holds the rest (RETRY) until a handler drains.
        Deferred events come back on a backoff of up to 2 s, about max_queue at a time, so
        the drain takes a few seconds (see the README's limitations)."""
        pub = self.client()
        for i in range(40):
            pub.publish("events/q", b"e%d" % i, qos=1)
        retried = wait_for(lambda: self.stack.stats()["plugins"][0]["retries_received"] > 0)
        self.assertTrue(retried, self.stack.stats()["plugins"])
        w = self.worker("store", echo)
        want = {b"e%d" % i for i in range(40)}
        self.assertTrue(wait_for(lambda: want <= {r[0] for r in w.received}, timeout=45),
                        sorted(want - {r[0] for r in w.received})[:10])

    def test_qos0_events_beyond_the_queue_bound_are_dropped_and_counted(self):
        pub = self.client()
        for i in range(20):
            pub.publish("events/q0", b"z%d" % i, qos=0)
        pub.publish("events/q0", b"last", qos=1)
        dropped = wait_for(lambda: self.stack.stats()["drop_event_queue_full"] > 0)
        self.assertTrue(dropped, self.stack.stats())


class BadFrames(StackTest):

    def test_malformed_messages_are_dropped_and_counted(self):
        """C10: missing, empty and extra frames on both bridge endpoints."""
        ctx = zmq.Context.instance()
        p = ctx.socket(zmq.DEALER)
        p.setsockopt(zmq.LINGER, 0)
        p.connect(self.stack.config["bridge"]["plugin_endpoint"])
        bad_plugin = [[b"MZB01"], [b""], [b"MZB01", b"\x01"], [b"MZB01", b"\x01", b"svc"],
                      [b"MZB01", b"\x01", b"svc", b"garbage", b"payload"],
                      [b"MZB01", b"\x01", b"svc", b"\x01" + b"\x00" * 19, b"p", b"extra"],
                      [b"MZB99", b"\x01"], [b"MZB01", b"\x7f"], [b"MZB01", b""]]
        for frames in bad_plugin:
            p.send_multipart(frames)
        h = ctx.socket(zmq.DEALER)
        h.setsockopt(zmq.LINGER, 0)
        h.connect(self.stack.handler_endpoint)
        bad_handler = [[b"x"], [b"", b"MDPW01"], [b"", b"MDPW01", b"\x09"],
                       [b"", b"MDPW01", b"\x03", b"nokey", b""], [b"", b"MDPXX", b"\x01"],
                       [b"", b"MDPW01", b"\x01"], [b"", b"MDPC01"]]
        for frames in bad_handler:
            h.send_multipart(frames)
        time.sleep(0.5)
        self.assertTrue(self.stack.bridge.alive())
        stats = self.stack.stats()
        self.assertIsNotNone(stats)
        self.assertGreaterEqual(stats["malformed"], len(bad_plugin) + len(bad_handler) - 2)
        # The bridge still works afterwards.
        self.stack.start_echo("echo")
        c = self.client()
        c.subscribe("reply/%s/#" % c.client_id)
        c.publish("rpc/echo/after", b"still ok", qos=1,
                  props=request_props("reply/%s/x" % c.client_id, b"1"))
        self.assertEqual(c.wait_count(1), 1)
        p.close()
        h.close()

    def test_batch_records_are_read_one_by_one(self):
        """A BATCH is parsed record by record: what it can read, it answers; the rest is counted."""
        ctx = zmq.Context.instance()
        p = ctx.socket(zmq.DEALER)
        p.setsockopt(zmq.LINGER, 0)
        p.connect(self.stack.config["bridge"]["plugin_endpoint"])
        before = self.stack.stats()["malformed"]
        # Whole BATCH messages that cannot be read: wrong frame count, cut records.
        bad = [[b"MZB01", b"\x03"], [b"MZB01", b"\x03", b"a", b"b"],
               [b"MZB01", b"\x03", b"\x00"], [b"MZB01", b"\x03", b"\x05svc"],
               [b"MZB01", b"\x03", batch_record(b"svc", b"m", b"p")[:-1]]]
        for frames in bad:
            p.send_multipart(frames)
        # Three QoS 1 records the bridge reads but does not queue: an unknown service, a
        # metadata frame with a good header but a field running past its end, and another
        # unknown service. Each is acknowledged, so a plugin would not hold it for ever.
        ids = [0x0A0B0C0000000001, 0x0A0B0C0000000002, 0x0A0B0C0000000003]
        body = (batch_record(b"nosuch", meta_qos1(ids[0]), b"x")
                + batch_record(b"echo", meta_qos1(ids[1])[:20] + b"\x01\x00\x00\x00\x09ab", b"")
                + batch_record(b"nosuch", meta_qos1(ids[2]), b""))
        p.send_multipart([b"MZB01", b"\x03", body])
        acked = []
        deadline = time.time() + 5
        while len(acked) < 3 and time.time() < deadline:
            if p.poll(200):
                frames = p.recv_multipart()
                if frames[:2] == [b"MZB01", b"\x11"]:
                    acked += [int.from_bytes(frames[2][i:i + 8], "big")
                              for i in range(0, len(frames[2]), 8)]
        self.assertEqual(sorted(acked), ids)
        stats = self.stack.stats()
        self.assertGreaterEqual(stats["malformed"] - before, len(bad) + 1)
        self.assertTrue(self.stack.bridge.alive())
        p.close()

    def test_sighup_during_traffic(self):
        self.stack.start_echo("echo")
        c = self.client()
        c.subscribe("reply/%s/#" % c.client_id)
        for i in range(300):
            c.publish("rpc/echo/h", b"%d" % i, qos=1, wait=False,
                      props=request_props("reply/%s/x" % c.client_id, b"%d" % i))
            if i % 100 == 50:
                self.stack.bridge.signal(signal.SIGHUP)
                self.stack.broker.signal(signal.SIGHUP)
        self.assertEqual(c.wait_count(300, timeout=20), 300)
        self.assertTrue(self.stack.bridge.alive())
        self.assertTrue(self.stack.broker.alive())


if __name__ == "__main__":
    main()
