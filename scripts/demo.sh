#!/usr/bin/env bash
# The demo: builds and installs the product, starts Debian's mosquitto with the plugin, the
# bridge and the example handlers on 127.0.0.1, drives real MQTT traffic through an event
# route and request routes with stock clients, shows what each part saw, and stops it all.
# Ports: MZB_DEMO_MQTT_PORT (default 18830), MZB_DEMO_PLUGIN_PORT (15601),
# MZB_DEMO_HANDLER_PORT (15602).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
mzb_install_deps

MQTT_PORT=${MZB_DEMO_MQTT_PORT:-18830}
PLUGIN_PORT=${MZB_DEMO_PLUGIN_PORT:-15601}
HANDLER_PORT=${MZB_DEMO_HANDLER_PORT:-15602}
ROOT=$(pwd)
PREFIX=$ROOT/build-demo/prefix
WORK=$(mktemp -d /tmp/mzb-demo.XXXXXX)
# Started as root, mosquitto drops to its own user, which must still read the config.
chmod 755 "$WORK"
PIDS=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT

start() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
}

wait_port() {
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1; see $WORK" >&2
    return 1
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for port in "$MQTT_PORT" "$PLUGIN_PORT" "$HANDLER_PORT"; do
    if ! port_free "$port"; then
        echo "port $port on 127.0.0.1 is taken; set MZB_DEMO_*_PORT to free ports" >&2
        exit 1
    fi
done

say "Build and install into $PREFIX"
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMZB_BUILD_TESTS=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" >/dev/null
cmake --install build-demo --prefix "$PREFIX" >/dev/null
ls "$PREFIX/lib/mosquitto_zmq_bridge.so" "$PREFIX"/bin/mzb-*

say "Configuration: the installed example with the demo's ports"
/usr/bin/python3 - "$PREFIX/share/mosquitto-zmq-bridge/example.json" "$WORK/mzb.json" \
    "$MQTT_PORT" "$PLUGIN_PORT" "$HANDLER_PORT" <<'PY'
import json, sys
src, dst, mqtt, plugin, handler = sys.argv[1:]
cfg = json.load(open(src))
cfg["bridge"]["plugin_endpoint"] = "tcp://127.0.0.1:%s" % plugin
cfg["bridge"]["handler_endpoint"] = "tcp://127.0.0.1:%s" % handler
cfg["bridge"].setdefault("mqtt", {})["port"] = int(mqtt)
json.dump(cfg, open(dst, "w"), indent=2)
for r in cfg["routes"]:
    print("  route %-22s -> service %-7s (%s)" % (r["filter"], r["service"], r["mode"]))
PY
"$PREFIX/bin/mzb-bridge" --check "$WORK/mzb.json"
cat >"$WORK/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
persistence false
log_dest stderr
plugin $PREFIX/lib/mosquitto_zmq_bridge.so
plugin_opt_config $WORK/mzb.json
CONF

say "Start mosquitto with the plugin, the bridge and four handlers"
start mosquitto /usr/sbin/mosquitto -c "$WORK/mosquitto.conf"
wait_port "$MQTT_PORT"
start bridge "$PREFIX/bin/mzb-bridge" -c "$WORK/mzb.json"
wait_port "$HANDLER_PORT"
start store "$PREFIX/bin/mzb-store" -c "$WORK/mzb.json" -s store -d "$WORK/events.sqlite"
start echo "$PREFIX/bin/mzb-echo" -c "$WORK/mzb.json" -s echo -v
start enrich "$PREFIX/bin/mzb-enrich" -c "$WORK/mzb.json" -s enrich -v
start pyecho /usr/bin/python3 "$PREFIX/share/mosquitto-zmq-bridge/python/pyecho.py" \
    --config "$WORK/mzb.json" --service pyecho
PYECHO_PID=${PIDS[-1]}
sleep 1.5
grep -h "mosquitto-zmq-bridge" "$WORK/mosquitto.log" | head -3 || true

PUB=(mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT")
RR=(mosquitto_rr -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -W 5)

say "Event route: three readings to demo/events/#, watched by an ordinary subscriber"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t 'demo/events/#' -v -C 3 -W 5 \
    >"$WORK/sub.out" &
SUB_PID=$!
sleep 0.5
for room in kitchen hall garage; do
    "${PUB[@]}" -q 1 -t "demo/events/$room/temp" -m "{\"celsius\": 2$((RANDOM % 10))}"
done
wait "$SUB_PID" || true
echo "the subscriber got (normal delivery goes on):"
sed 's/^/  /' "$WORK/sub.out"
sleep 0.5
echo "the store handler saved (sqlite3 $WORK/events.sqlite):"
sqlite3 "$WORK/events.sqlite" "select topic, client_id, qos, payload from events;" |
    sed 's/^/  /'

say "Request route, MQTT v5: mosquitto_rr to demo/rpc/echo/hello"
echo "  reply: $("${RR[@]}" -t demo/rpc/echo/hello -e "demo/reply/rr-echo/1" -i rr-echo \
    -m 'hello through ZeroMQ')"

say "Request route, MQTT v5: the enrich handler adds what it knows"
echo "  reply: $("${RR[@]}" -t demo/rpc/enrich/order -e "demo/reply/rr-enrich/1" -i rr-enrich \
    -m '{"order": 42}' -D PUBLISH user-property source demo)"

say "Request route served by the Python handler"
echo "  reply: $("${RR[@]}" -t demo/rpc/py/shout -e "demo/reply/rr-py/1" -i rr-py \
    -m 'any language works')"

say "MQTT 3.1.1 client: the reply comes on the route's reply_topic template"
# mosquitto_pub and mosquitto_sub are two connections, so a watcher subscribes to the
# requester's reply topic; a real 3.1.1 device would subscribe on its own connection.
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -V mqttv311 -i watcher \
    -t 'demo/reply/old-device/#' -v -C 1 -W 5 >"$WORK/v311.out" &
SUB_PID=$!
sleep 0.5
"${PUB[@]}" -V mqttv311 -i old-device -q 1 -t demo/rpc/echo/legacy -m 'from 3.1.1'
wait "$SUB_PID" || true
sed 's/^/  /' "$WORK/v311.out"

say "No live handler: stop the Python handler and ask again"
kill -TERM "$PYECHO_PID"
sleep 1
echo "  reply: $("${RR[@]}" -t demo/rpc/py/shout -e "demo/reply/rr-py2/1" -i rr-py2 \
    -m 'anyone there?' -F '%p (user property %P)' 2>&1 || true)"

say "A response topic outside the route's reply_pattern is refused, not answered"
"${RR[@]}" -W 2 -t demo/rpc/echo/x -e "demo/reply/someone-else/1" -i rr-sneaky -m 'spoof' \
    >/dev/null 2>&1 || true
grep -h "not dispatched" "$WORK/mosquitto.log" | tail -n 1 | sed 's/^/  /'

say "What the handlers logged"
for h in echo enrich pyecho; do
    echo "-- $h"
    tail -n 3 "$WORK/$h.log" | sed 's/^/  /'
done

say "Stop everything"
stop_all
trap - EXIT
echo "all stopped; logs are in $WORK"
