"""Credit (docs/protocol.md section 3): a handler that offers credit=N in READY holds up to
N requests at once; plain MDP workers still get one at a time; a killed handler gives back
all it held; handlers share the load; malformed credit frames are refused and counted."""
import os
import time

import zmq

from harness import StackTest, lines, request_props, user_props, wait_for, main

HERE = os.path.dirname(os.path.abspath(__file__))
class RawWorker:
    """A DEALER speaking MDP/0.1 by hand, so a test controls exactly when it answers."""

    def __init__(self, endpoint, service, extra=()):
        self.s = zmq.Context.instance().socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(endpoint)
        self.s.send_multipart([b"", b"MDPW01", b"\x01", service.encode()] + list(extra))

    def collect(self, seconds):
        """Every REQUEST (address, payload) and whether a DISCONNECT came, within seconds."""
        requests, disconnected = [], False
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.s.send_multipart([b"", b"MDPW01", b"\x04"])
            if self.s.poll(50):
                frames = self.s.recv_multipart()
                if frames[2] == b"\x02":
                    requests.append((frames[3], frames[5]))
                elif frames[2] == b"\x05":
                    disconnected = True
        return requests, disconnected

    def reply(self, address, body):
        self.s.send_multipart([b"", b"MDPW01", b"\x03", address, b"", body])

    def close(self):
        self.s.close()


class Credit(StackTest):
    stack_args = {"routes": [
        {"filter": "events/#", "service": "work", "mode": "event"},
        {"filter": "rpc/echo/#", "service": "echo", "mode": "request", "timeout_ms": 5000,
         "reply_pattern": "reply/{client_id}/#"},
    ]}

    def service_stats(self, name):
        return ((self.stack.stats() or {}).get("services") or {}).get(name) or {}

    def wait_handlers(self, name, count):
        ok = wait_for(lambda: self.service_stats(name).get("handlers") == count)
        self.assertTrue(ok, self.stack.stats())

    def publish_events(self, count, prefix):
        pub = self.client()
        for i in range(count):
            pub.publish("events/c", b"%s-%d" % (prefix, i), qos=1, wait=False)
        pub.publish("events/c", b"%s-last" % prefix, qos=1)
        return {(b"%s-%d" % (prefix, i)).hex() for i in range(count)} | \
            {(b"%s-last" % prefix).hex()}

    def start_worker(self, name, mode, credit, log):
        return self.stack.add(name, ["/usr/bin/python3", os.path.join(HERE, "mdp_worker.py"),
                                     self.stack.handler_endpoint, "work", mode, log,
                                     str(credit)])

    def test_handler_with_credit_4_gets_4_before_it_answers_any(self):
        w = RawWorker(self.stack.handler_endpoint, "work", [b"credit=4"])
        try:
            self.wait_handlers("work", 1)
            self.assertEqual(self.service_stats("work")["credit"], 4)
            self.publish_events(5, b"a")  # six events
            got, _ = w.collect(1.5)
            self.assertEqual(len(got), 4, got)
            self.assertEqual(self.service_stats("work")["in_flight"], 4)
            self.assertEqual(self.service_stats("work")["queued"], 2)

            # Answered newest first: each REPLY names its own request.
            for address, payload in reversed(got):
                w.reply(address, payload)
            rest, _ = w.collect(1.0)
            self.assertEqual(len(rest), 2, rest)
            for address, payload in rest:
                w.reply(address, payload)
            self.assertTrue(wait_for(lambda: self.service_stats("work")["in_flight"] == 0))
            stats = self.stack.stats()
            self.assertEqual(stats["unexpected_replies"], 0)
            self.assertEqual(stats["replies_received"], 6)
            self.assertEqual(len({p for _, p in got + rest}), 6)
        finally:
            w.close()

    def test_plain_mdp_worker_gets_one_at_a_time(self):
        log = os.path.join(self.stack.dir, "plain.log")
        self.stack.add("plain", ["/usr/bin/python3", os.path.join(HERE, "mdp_worker.py"),
                                 self.stack.handler_endpoint, "work", "hang", log])
        self.wait_handlers("work", 1)
        self.assertEqual(self.service_stats("work")["credit"], 1)
        self.publish_events(2, b"p")  # three events
        self.assertTrue(wait_for(lambda: len(lines(log)) >= 1))
        time.sleep(1.0)
        self.assertEqual(len(lines(log)), 1)
        svc = self.service_stats("work")
        self.assertEqual((svc["in_flight"], svc["queued"]), (1, 2), svc)

    def test_killed_handler_gives_back_all_8_it_held(self):
        hang_log = os.path.join(self.stack.dir, "hang.log")
        echo_log = os.path.join(self.stack.dir, "echo.log")
        hanging = self.start_worker("hang", "hang", 8, hang_log)
        self.wait_handlers("work", 1)
        pub = self.client()
        for i in range(8):
            pub.publish("events/k", b"k%d" % i, qos=1)
        want = {(b"k%d" % i).hex() for i in range(8)}
        self.assertTrue(wait_for(lambda: set(lines(hang_log)) == want), lines(hang_log))

        self.start_worker("echo", "echo", 8, echo_log)
        self.wait_handlers("work", 2)
        self.assertEqual(lines(echo_log), [])
        hanging.kill()
        self.assertTrue(wait_for(lambda: set(lines(echo_log)) == want, timeout=8),
                        (lines(echo_log), self.stack.stats()))
        stats = self.stack.stats()
        self.assertEqual(stats["requests_requeued"], 8)
        self.assertEqual(stats["drop_event_handler_lost"], 0)

    def test_two_handlers_with_credit_share_1000_events(self):
        logs = [os.path.join(self.stack.dir, "share-%d.log" % i) for i in range(2)]
        for i, log in enumerate(logs):
            self.start_worker("share-%d" % i, "echo", 16, log)
        self.wait_handlers("work", 2)
        want = self.publish_events(999, b"s")  # 1,000 events
        self.assertTrue(wait_for(lambda: sum(len(lines(l)) for l in logs) >= 1000, timeout=30),
                        self.stack.stats())
        counts = [len(lines(l)) for l in logs]
        self.assertEqual(set(lines(logs[0])) | set(lines(logs[1])), want)
        self.assertGreaterEqual(min(counts), 300, counts)

    def test_malformed_credit_is_refused_and_counted(self):
        before = self.stack.stats()
        bad = [b"credit=0", b"credit=1001", b"credit=x", b"credit=" + b"9" * 100000,
               b"credit=016", b"credit=", b"credits=4"]
        workers = [RawWorker(self.stack.handler_endpoint, "work", [frame]) for frame in bad]
        extra = RawWorker(self.stack.handler_endpoint, "work", [b"credit=4", b"more"])
        workers.append(extra)
        try:
            for w in workers:
                _, disconnected = w.collect(0.3)
                self.assertTrue(disconnected)
            stats = self.stack.stats()
            malformed = stats["handler_frames_malformed"] - before["handler_frames_malformed"]
            self.assertEqual(malformed, len(workers))
            self.assertEqual(stats["handlers_registered"], before["handlers_registered"])
            self.assertEqual(self.stack.handler_count("work"), 0)
        finally:
            for w in workers:
                w.close()

        # The bridge still serves: mzb-echo offers the library's default credit.
        self.stack.start_echo("echo")
        self.assertEqual(self.service_stats("echo")["credit"], 64)
        c = self.client()
        c.subscribe("reply/%s/#" % c.client_id)
        for i in range(50):
            c.publish("rpc/echo/x", b"after-%d" % i, qos=1, wait=False,
                      props=request_props("reply/%s/x" % c.client_id, b"%d" % i))
        self.assertEqual(c.wait_count(50), 50)
        self.assertEqual({m.payload for m in c.messages}, {b"after-%d" % i for i in range(50)})
        self.assertFalse(any("mzb-error" in user_props(m) for m in c.messages))


if __name__ == "__main__":
    main()
