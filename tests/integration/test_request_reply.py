"""Request/reply on a real broker: MQTT v5 response topics with correlation data, the 3.1.1
reply template, error replies, and what a client must not be able to make the product do."""
import os
import subprocess
import time

from harness import StackTest, request_props, user_props, wait_for, main


def echo(payload, meta):
    return [payload]


class RequestReply(StackTest):

    def requester(self, **kw):
        c = self.client(**kw)
        c.subscribe("reply/%s/#" % c.client_id)
        return c

    def test_v5_reply_goes_to_response_topic_with_binary_correlation(self):
        self.stack.start_echo("echo")
        c = self.requester()
        corr = b"\x00\xff\x00binary\x80"
        rt = "reply/%s/answers" % c.client_id
        c.publish("rpc/echo/a", b"ping", qos=1, props=request_props(rt, corr))
        self.assertEqual(c.wait_count(1), 1)
        msg = c.messages[0]
        self.assertEqual(msg.topic, rt)
        self.assertEqual(msg.payload, b"ping")
        self.assertEqual(msg.properties.CorrelationData, corr)
        self.assertNotIn("mzb-error", user_props(msg))

    def test_mosquitto_rr_gets_answer(self):
        self.stack.start_echo("echo")
        out = subprocess.run(
            ["mosquitto_rr", "-V", "5", "-h", "127.0.0.1", "-p", str(self.stack.mqtt_port),
             "-i", "rr-1", "-t", "rpc/echo/rr", "-e", "reply/rr-1/x", "-m", "hello rr",
             "-W", "5", "-q", "1"], capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), b"hello rr")

    def test_many_requests_each_get_their_own_answer(self):
        self.stack.start_echo("echo")
        c = self.requester()
        for i in range(200):
            c.publish("rpc/echo/n", b"req-%d" % i, qos=1, wait=False,
                      props=request_props("reply/%s/r" % c.client_id, b"%d" % i))
        self.assertEqual(c.wait_count(200, timeout=20), 200)
        pairs = {(m.payload, m.properties.CorrelationData) for m in c.messages}
        self.assertEqual(pairs, {(b"req-%d" % i, b"%d" % i) for i in range(200)})

    def test_v311_reply_uses_template(self):
        self.stack.start_echo("echo")
        c = self.client(v5=False, client_id="old-client")
        c.subscribe("reply/old-client/#")
        c.publish("rpc/echo/legacy", b"from 3.1.1", qos=1)
        self.assertEqual(c.wait_count(1), 1)
        self.assertEqual(c.messages[0].topic, "reply/old-client/rpc/echo/legacy")
        self.assertEqual(c.messages[0].payload, b"from 3.1.1")

    def test_no_handler_error_reply(self):
        c = self.requester()
        c.publish("rpc/none/x", b"anyone?", qos=1,
                  props=request_props("reply/%s/e" % c.client_id, b"c1"))
        self.assertEqual(c.wait_count(1), 1)
        msg = c.messages[0]
        self.assertEqual(user_props(msg).get("mzb-error"), "no-handler")
        self.assertEqual(msg.properties.CorrelationData, b"c1")
        self.assertIn(b"nobody", msg.payload)

    def test_timeout_error_reply(self):
        self.worker("slow", lambda p, m: None)  # takes the request, never answers
        self.stack.wait_handlers("slow", 1)
        c = self.requester()
        start = time.time()
        c.publish("rpc/slow/x", b"wait", qos=1,
                  props=request_props("reply/%s/t" % c.client_id, b"c2"))
        self.assertEqual(c.wait_count(1), 1)
        elapsed = time.time() - start
        msg = c.messages[0]
        self.assertEqual(user_props(msg).get("mzb-error"), "timeout")
        self.assertEqual(msg.properties.CorrelationData, b"c2")
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 3.0)

    def test_v311_error_reply_is_plain_text(self):
        c = self.client(v5=False, client_id="old-2")
        c.subscribe("reply/old-2/#")
        c.publish("rpc/none/x", b"?", qos=1)
        self.assertEqual(c.wait_count(1), 1)
        self.assertIn(b"nobody", c.messages[0].payload)

    def test_plain_mdp_worker_serves_a_route(self):
        """A worker written from the MDP spec, not with our library, answers requests."""
        self.worker("echo", lambda payload, meta: [payload.upper()])
        self.stack.wait_handlers("echo", 1)
        c = self.requester()
        c.publish("rpc/echo/w", b"plain worker", qos=0,
                  props=request_props("reply/%s/w" % c.client_id, b"z"))
        self.assertEqual(c.wait_count(1), 1)
        self.assertEqual(c.messages[0].payload, b"PLAIN WORKER")

    def test_echoing_worker_that_returns_all_frames_answers_with_payload(self):
        self.worker("echo", lambda payload, meta: [payload, meta])
        self.stack.wait_handlers("echo", 1)
        c = self.requester()
        c.publish("rpc/echo/all", b"two frames", qos=1,
                  props=request_props("reply/%s/w" % c.client_id, b"z"))
        self.assertEqual(c.wait_count(1), 1)
        self.assertEqual(c.messages[0].payload, b"two frames")

    def test_python_handler(self):
        self.stack.add("pyecho", ["/usr/bin/python3",
                                  os.path.join(os.environ["MZB_PYTHON_DIR"], "pyecho.py"),
                                  "--config", self.stack.config_path, "--service", "echo"])
        self.stack.wait_handlers("echo", 1)
        c = self.requester()
        c.publish("rpc/echo/py", b"snake", qos=1,
                  props=request_props("reply/%s/p" % c.client_id, b"p"))
        self.assertEqual(c.wait_count(1), 1)
        self.assertEqual(c.messages[0].payload, b"SNAKE")


class ReplyTopicSafety(StackTest):
    """C07: a Response Topic must be a valid publish topic inside the route's reply_pattern."""

    def test_bad_response_topics_are_not_dispatched(self):
        w = self.worker("echo", echo)
        self.stack.wait_handlers("echo", 1)
        spy = self.client()
        spy.subscribe("#")
        spy.subscribe("$SYS/broker/fake")
        c = self.client(client_id="victim")
        bad = ["#", "reply/victim/+", "replies/+", "$SYS/broker/fake", "reply/other/x",
               "reply/victimx/y", "elsewhere"]
        for rt in bad:
            c.publish("rpc/echo/bad", b"evil", qos=1, props=request_props(rt, b"x"))
        c.publish("rpc/echo/good", b"fine", qos=1,
                  props=request_props("reply/victim/ok", b"x"))
        self.assertTrue(wait_for(lambda: len(w.received) >= 1))
        time.sleep(0.5)
        self.assertEqual([r[0] for r in w.received], [b"fine"])
        replies = [m for m in spy.messages if m.topic.startswith(("reply", "$SYS", "elsewhere"))
                   and m.payload != b"evil"]
        self.assertEqual([(m.topic, m.payload) for m in replies], [("reply/victim/ok", b"fine")])
        # Plugins report their counters with each heartbeat, once a second.
        refused = wait_for(lambda: self.stack.stats()["plugins"][0]["reply_topic_refused"]
                           == len(bad), timeout=5)
        self.assertTrue(refused, self.stack.stats()["plugins"])

    def test_client_id_with_wildcard_cannot_widen_pattern(self):
        w = self.worker("echo", echo)
        self.stack.wait_handlers("echo", 1)
        c = self.client(client_id="+")
        c.publish("rpc/echo/x", b"evil", qos=1, props=request_props("reply/anyone/x", b"x"))
        c.publish("rpc/echo/x", b"evil", qos=1, props=request_props("reply/+/x", b"x"))
        time.sleep(0.5)
        self.assertEqual(w.received, [])


if __name__ == "__main__":
    main()
