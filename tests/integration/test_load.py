"""Load: C08 (10,000 request/reply round trips carrying correlation data: no crash, no
invalid free; the ASan run of this suite checks the plugin and the bridge) and C09 (10,000
messages at full speed with the bridge down and then back)."""
import time

from harness import StackTest, request_props, user_props, wait_for, main

N = 10000


class RoundTrips(StackTest):
    # A long timeout: this test is about correctness under load (no crash, no leak, no lost
    # or crossed reply), on a 2-core machine that may be busy with a sanitizer build.
    stack_args = {"routes": [{"filter": "rpc/echo/#", "service": "echo", "mode": "request",
                              "timeout_ms": 60000}]}

    def test_ten_thousand_round_trips(self):
        self.stack.start_echo("echo")
        c = self.client()
        c.subscribe("reply/%s/#" % c.client_id)
        rt = "reply/%s/soak" % c.client_id
        window = 200
        for i in range(N):
            while i - len(c.messages) >= window:
                c.wait_count(i - window + 1, timeout=5)
                if i - len(c.messages) >= window:
                    self.fail("replies stalled at %d of %d" % (len(c.messages), i))
            c.publish("rpc/echo/soak", b"payload-%d" % i, qos=1, wait=False,
                      props=request_props(rt, i.to_bytes(4, "big")))
        self.assertEqual(c.wait_count(N, timeout=60), N)
        corr = {int.from_bytes(m.properties.CorrelationData, "big") for m in c.messages}
        self.assertEqual(corr, set(range(N)))
        errors = [user_props(m)["mzb-error"] for m in c.messages if "mzb-error" in user_props(m)]
        self.assertEqual(errors, [])
        self.assertTrue(self.stack.broker.alive())
        self.assertTrue(self.stack.bridge.alive())


class BurstWithBridgeDown(StackTest):
    stack_args = {"bridge": False, "plugin": {"max_unacked": 20000},
                  "routes": [{"filter": "events/#", "service": "store", "mode": "event"}]}

    def test_burst_while_bridge_down_then_delivered(self):
        sub = self.client()
        sub.subscribe("events/#")
        pub = self.client()
        start = time.time()
        for i in range(N):
            pub.publish("events/burst", b"%d" % i, qos=1, wait=False)
        self.assertEqual(sub.wait_count(N, timeout=60), N)
        elapsed = time.time() - start
        self.assertLess(elapsed, 30, "subscribers slowed down without a bridge")

        self.stack.start_bridge()
        w = self.worker("store", lambda p, m: [p])
        self.assertTrue(wait_for(lambda: len({r[0] for r in w.received}) >= N, timeout=60),
                        "handler got %d of %d" % (len(w.received), N))
        self.assertEqual({r[0] for r in w.received}, {b"%d" % i for i in range(N)})


if __name__ == "__main__":
    main()
