"""Bad configuration files: the broker refuses to start and says where; the bridge's --check
prints the same; a bad file on reload leaves the running configuration in place."""
import json
import os
import signal
import subprocess
import time

from harness import Stack, StackTest, request_props, wait_for, main, MOSQUITTO


def bad_config(stack, route_filter):
    cfg = json.loads(json.dumps(stack.config))
    cfg["routes"][2]["filter"] = route_filter
    return cfg


class BrokerRefusesBadConfig(StackTest):
    stack_args = {"start": False}

    def test_broker_refuses_to_start_and_names_key_path(self):
        self.stack.write_config(bad_config(self.stack, "sport/#/x"))
        broker = self.stack.add("mosquitto", [MOSQUITTO, "-c", self.stack.broker_conf()],
                                env=self.stack.broker_env())
        broker.proc.wait(10)
        self.assertNotEqual(broker.proc.returncode, 0)
        log = broker.text()
        self.assertIn("routes[2].filter", log)
        self.assertIn("mzb.json:", log)

    def test_missing_config_option(self):
        conf = self.stack.broker_conf()
        with open(conf) as f:
            text = f.read().replace("plugin_opt_config", "#plugin_opt_config")
        with open(conf, "w") as f:
            f.write(text)
        broker = self.stack.add("mosquitto", [MOSQUITTO, "-c", conf],
                                env=self.stack.broker_env())
        broker.proc.wait(10)
        self.assertNotEqual(broker.proc.returncode, 0)
        self.assertIn("plugin_opt_config", broker.text())

    def test_bridge_check_prints_same_error(self):
        self.stack.write_config(bad_config(self.stack, "+x/y"))
        out = subprocess.run([os.environ["MZB_BRIDGE"], "--check", self.stack.config_path],
                             capture_output=True, timeout=10)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"routes[2].filter", out.stderr)

    def test_bridge_check_accepts_good_file_and_example(self):
        for path in (self.stack.config_path,
                     os.path.join(os.environ["MZB_SOURCE_DIR"], "config", "example.json")):
            out = subprocess.run([os.environ["MZB_BRIDGE"], "--check", path],
                                 capture_output=True, timeout=10)
            self.assertEqual(out.returncode, 0, out.stderr)

    def test_bridge_refuses_bad_arguments(self):
        for argv in ([], ["-c"], ["--bogus"], ["-c", "/nonexistent/x.json"]):
            out = subprocess.run([os.environ["MZB_BRIDGE"]] + argv, capture_output=True,
                                 timeout=10)
            self.assertNotEqual(out.returncode, 0, argv)
            self.assertTrue(out.stderr.strip(), argv)


class ReloadKeepsOldConfig(StackTest):

    def test_bad_reload_keeps_routes_and_good_reload_applies(self):
        w = self.worker("store", lambda p, m: [p])
        self.stack.wait_handlers("store", 1)
        pub = self.client()
        pub.publish("events/1", b"one", qos=1)
        self.assertTrue(wait_for(lambda: len(w.received) == 1))

        self.stack.write_config(bad_config(self.stack, "sport/tennis#"))
        self.stack.broker.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "routes[2].filter" in self.stack.broker.text()))
        pub.publish("events/2", b"two", qos=1)
        self.assertTrue(wait_for(lambda: len(w.received) == 2))

        good = json.loads(json.dumps(self.stack.config))
        good["routes"][0]["filter"] = "moved/#"
        self.stack.write_config(good)
        self.stack.broker.signal(signal.SIGHUP)
        time.sleep(1.0)
        pub.publish("events/3", b"three", qos=1)
        pub.publish("moved/3", b"moved", qos=1)
        self.assertTrue(wait_for(lambda: len(w.received) == 3))
        time.sleep(0.3)
        self.assertEqual([r[0] for r in w.received], [b"one", b"two", b"moved"])


if __name__ == "__main__":
    main()
