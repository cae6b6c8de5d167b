#!/usr/bin/env bash
# bench/run.sh: measures what mosquitto-zmq-bridge costs the broker. Each run starts a fresh
# mosquitto on 127.0.0.1, either plain (A) or with the plugin, mzb-bridge and mzb-echo
# handlers (B), drives it with bench's mzb-loadgen, and stops everything by pid. Runs
# alternate A B A B; the table shows medians, min-max and B/A. bench/README.md explains it.
#
# Usage: bench/run.sh [--quick] [--reps N] [--duration S] [--only "1 2 ..."] [--no-build]
#   --quick        2 repetitions of 3 s (about 12 minutes) instead of 5 of 10 s
#   --only LIST    scenarios to run, by number (default: all, 1 to 8)
# Ports: MZB_BENCH_PORT (default 19110) for MQTT, and the next two for the bridge.
# Results: bench/results/bench-STAMP.{csv,txt,png} and the logs in bench/results/run-STAMP/.

# The whole script is one brace group, so bash reads all of it before running any: editing
# the file while a long run goes on cannot change what that run does.
{
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."
ROOT=$(pwd)

REPS=5
DURATION=10
WARMUP=1
CG_COUNT=10000
ONLY="1 2 3 4 5 6 7 8"
BUILD_IT=1

usage() {
    sed -n '2,11p' "$SELF" | sed 's/^# \{0,1\}//'
}

die_usage() {
    echo "bench/run.sh: $1" >&2
    echo "usage: bench/run.sh [--quick] [--reps N] [--duration S] [--only \"1 2 ...\"]" \
        "[--no-build]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --quick)
        REPS=2
        DURATION=3
        WARMUP=0.5
        CG_COUNT=2000
        ;;
    --reps)
        [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]*$ ]] || die_usage "--reps needs a whole number"
        REPS=$2
        shift
        ;;
    --duration)
        [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die_usage "--duration needs seconds"
        DURATION=$2
        shift
        ;;
    --only)
        [ $# -ge 2 ] && [[ "$2" =~ ^[1-8\ ]+$ ]] || die_usage "--only needs numbers from 1 to 8"
        ONLY=$2
        shift
        ;;
    --no-build) BUILD_IT=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die_usage "unknown argument $1" ;;
    esac
    shift
done

MQTT_PORT=${MZB_BENCH_PORT:-19110}
PLUGIN_PORT=$((MQTT_PORT + 1))
HANDLER_PORT=$((MQTT_PORT + 2))
HANDLER_EP=tcp://127.0.0.1:$HANDLER_PORT
BUILD=$ROOT/build-bench-release
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/results
RUN=$OUT/run-$STAMP
CSV=$OUT/bench-$STAMP.csv
PY=/usr/bin/python3
TOOLS=$ROOT/bench/tools
CLK_TCK=$(getconf CLK_TCK)

. scripts/deps.sh
mzb_install_deps gnuplot-nox valgrind

mkdir -p "$RUN"
echo "scenario,case,variant,rep,metric,value" >"$CSV"

# ---------------------------------------------------------------- processes, by pid only
declare -A PIDS=()

stop_proc() { # stop_proc NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (5)
    local name=$1 limit=${2:-5} pid i
    pid=${PIDS[$name]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((limit * 20))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PIDS[$name]"
}

stop_all() {
    local name
    for name in "${!PIDS[@]}"; do
        stop_proc "$name"
    done
}
trap stop_all EXIT
trap 'echo "bench/run.sh: interrupted; stopping what it started" >&2; exit 130' INT TERM

# start NAME DIR CMD...: runs CMD in the background with its output in DIR/NAME.log.
start() {
    local name=$1 dir=$2
    shift 2
    "$@" >"$dir/$name.log" 2>&1 &
    PIDS[$name]=$!
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT NAME SECONDS: until something listens, or NAME died.
wait_port() {
    local port=$1 name=$2 limit=$3 i
    for i in $(seq 1 $((limit * 200))); do
        port_open "$port" && return 0
        if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
            echo "bench/run.sh: $name exited before listening on $port" >&2
            return 1
        fi
        sleep 0.005
    done
    echo "bench/run.sh: nothing listens on 127.0.0.1:$port after $limit s" >&2
    return 1
}

cpu_ticks() {
    local pid=$1
    [ -r "/proc/$pid/stat" ] || {
        echo 0
        return
    }
    # fields 14 and 15 are utime and stime; comm (field 2) has no spaces for these programs
    awk '{print $14 + $15}' "/proc/$pid/stat"
}

# The broker's event-loop thread alone (its task id is its pid); the plugin's threads are the
# rest of the process.
main_ticks() {
    local pid=$1
    [ -r "/proc/$pid/task/$pid/stat" ] || {
        echo 0
        return
    }
    awk '{print $14 + $15}' "/proc/$pid/task/$pid/stat"
}

proc_kb() {
    awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

now_ms() {
    date +%s%3N
}

# ---------------------------------------------------------------- build
BUILD_LOG=$RUN/build.log
HAVE_B=1
if [ "$BUILD_IT" = 1 ]; then
    echo "== build (Release) into $BUILD"
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMZB_BUILD_TESTS=OFF >"$BUILD_LOG" 2>&1 ||
        {
            echo "bench/run.sh: cmake failed; see $BUILD_LOG" >&2
            exit 1
        }
    cmake --build "$BUILD" -j"$(nproc)" --target mzb-loadgen >>"$BUILD_LOG" 2>&1 || {
        echo "bench/run.sh: mzb-loadgen did not build; see $BUILD_LOG" >&2
        exit 1
    }
    cmake --build "$BUILD" -j"$(nproc)" --target mosquitto_zmq_bridge mzb-bridge mzb-echo \
        >>"$BUILD_LOG" 2>&1 || HAVE_B=0
fi
LOADGEN=$BUILD/bench/mzb-loadgen
BRIDGE=$BUILD/bridge/mzb-bridge
ECHO=$BUILD/handlers/mzb-echo
PLUGIN=$(find "$BUILD" -name mosquitto_zmq_bridge.so -print -quit 2>/dev/null || true)
[ -x "$LOADGEN" ] || {
    echo "bench/run.sh: $LOADGEN is missing; run without --no-build" >&2
    exit 1
}
if [ "$HAVE_B" = 0 ] || [ -z "$PLUGIN" ] || [ ! -x "$BRIDGE" ] || [ ! -x "$ECHO" ]; then
    HAVE_B=0
    echo "!! the plugin, mzb-bridge or mzb-echo did not build (see $BUILD_LOG):" \
        "only the A side (plain mosquitto) runs" >&2
fi

for port in "$MQTT_PORT" "$PLUGIN_PORT" "$HANDLER_PORT"; do
    if port_open "$port"; then
        echo "bench/run.sh: 127.0.0.1:$port is taken; set MZB_BENCH_PORT to a free base" >&2
        exit 1
    fi
done

# ---------------------------------------------------------------- one run
# The caller sets these before calling run_unit:
U_SCEN=""           # s1 .. s8
U_CASE=""           # e.g. qos1, k32, r10000
U_CFG=()            # gen_config.py arguments for the B side
U_HANDLERS=1        # mzb-echo processes on the B side
U_ECHO=0            # echo-server connections on the A side (rr scenarios)
U_SETTLE=0          # B side: wait for the handler count and record it
U_LOADGEN=()        # mzb-loadgen arguments after the port
U_BROKER_PREFIX=()  # e.g. valgrind; empty for a normal run
U_HOOK=""           # a function run while everything is up, instead of the load generator
U_BROKER_USER=""    # "user" for mosquitto.conf; empty: mosquitto's default

record() { # record VARIANT REP METRIC VALUE
    echo "$U_SCEN,$U_CASE,$1,$2,$3,$4" >>"$CSV"
}

record_line() { # record_line VARIANT REP "k=v k=v ...": numeric values only
    local kv
    for kv in $3; do
        if [[ "$kv" =~ ^([a-z0-9_]+)=(-?[0-9]+(\.[0-9]+)?)$ ]]; then
            record "$1" "$2" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
        fi
    done
}

write_broker_conf() { # write_broker_conf FILE [CONFIG.json]
    # log_dest file flushes each line (stdout into a file would not), so the scenarios can
    # watch the log while the broker runs
    {
        echo "listener $MQTT_PORT 127.0.0.1"
        echo "allow_anonymous true"
        echo "set_tcp_nodelay true"
        echo "persistence false"
        echo "log_dest file $(dirname "$1")/mosquitto.log"
        # callgrind opens its profile before mosquitto drops privileges and writes it after
        [ -n "$U_BROKER_USER" ] && echo "user $U_BROKER_USER"
        if [ $# -ge 2 ]; then
            echo "plugin $PLUGIN"
            echo "plugin_opt_config $2"
        fi
    } >"$1"
}

start_b_side() { # start_b_side DIR: bridge and handlers, once the broker listens
    local dir=$1 i
    start bridge "$dir" "$BRIDGE" -c "$dir/mzb.json"
    wait_port "$HANDLER_PORT" bridge 10
    for i in $(seq 1 "$U_HANDLERS"); do
        start "handler$i" "$dir" "$ECHO" -c "$dir/mzb.json" -s sink
    done
    "$PY" "$TOOLS/mzb_mmi.py" wait-ready "$HANDLER_EP" sink "$U_HANDLERS" --timeout 15
}

start_echo_servers() { # start_echo_servers DIR: the A side's baseline responder
    local dir=$1 i share=()
    [ "$U_ECHO" -gt 1 ] && share=(-g bench)
    start echosrv "$dir" "$LOADGEN" echo-server -p "$MQTT_PORT" -t bench/rpc -c "$U_ECHO" \
        -i echo "${share[@]}"
    for i in $(seq 1 400); do
        grep -q "echo-server ready" "$dir/echosrv.log" 2>/dev/null && return 0
        kill -0 "${PIDS[echosrv]}" 2>/dev/null || break
        sleep 0.025
    done
    echo "bench/run.sh: the echo-server did not start; see $dir/echosrv.log" >&2
    return 1
}

helper_ticks() {
    local name total=0
    for name in "${!PIDS[@]}"; do
        case "$name" in
        handler*) total=$((total + $(cpu_ticks "${PIDS[$name]}"))) ;;
        esac
    done
    echo "$total"
}

# Runs the load generator and records what it and the processes around it used.
drive_load() { # drive_load VARIANT REP DIR
    local var=$1 rep=$2 dir=$3 b0 m0 br0 h0 e0 t0 t1 ms line rc=0 pid
    b0=$(cpu_ticks "${PIDS[broker]}")
    m0=$(main_ticks "${PIDS[broker]}")
    br0=$(cpu_ticks "${PIDS[bridge]:-0}")
    h0=$(helper_ticks)
    e0=$(cpu_ticks "${PIDS[echosrv]:-0}")
    t0=$(now_ms)
    timeout -k 5 "$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN{print int(d+w+60)}')" \
        "$LOADGEN" "${U_LOADGEN[0]}" -p "$MQTT_PORT" "${U_LOADGEN[@]:1}" \
        >"$dir/loadgen.out" 2>"$dir/loadgen.err" &
    pid=$!
    PIDS[loadgen]=$pid
    wait "$pid" || rc=$?
    unset "PIDS[loadgen]"
    t1=$(now_ms)
    ms=$((t1 - t0 > 0 ? t1 - t0 : 1))
    line=$(tail -n 1 "$dir/loadgen.out" 2>/dev/null || true)
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        echo "   !! mzb-loadgen failed (exit $rc):" \
            "$(tail -n 2 "$dir/loadgen.err" | tr '\n' ' ')" >&2
        record "$var" "$rep" failed 1
        return 1
    fi
    record_line "$var" "$rep" "$line"
    pct() { awk -v a="$1" -v b="$2" -v ms="$ms" -v hz="$CLK_TCK" \
        'BEGIN{printf "%.1f", (b - a) * 100000 / hz / ms}'; }
    record "$var" "$rep" broker_cpu_pct "$(pct "$b0" "$(cpu_ticks "${PIDS[broker]}")")"
    record "$var" "$rep" broker_loop_cpu_pct "$(pct "$m0" "$(main_ticks "${PIDS[broker]}")")"
    if [ "$var" = B ]; then
        record "$var" "$rep" bridge_cpu_pct "$(pct "$br0" "$(cpu_ticks "${PIDS[bridge]}")")"
        record "$var" "$rep" handlers_cpu_pct "$(pct "$h0" "$(helper_ticks)")"
    elif [ -n "${PIDS[echosrv]:-}" ]; then
        record "$var" "$rep" echo_cpu_pct "$(pct "$e0" "$(cpu_ticks "${PIDS[echosrv]}")")"
    fi
    LAST_LINE=$line
}

# The handler's count, once it stops moving: every routed message at QoS 1 must be there.
settle_handler() { # settle_handler REP DIR
    local rep=$1 dir=$2 sent out served
    sent=$(grep -o ' sent=[0-9]*' <<<"$LAST_LINE" | head -n 1 | cut -d= -f2)
    out=$("$PY" "$TOOLS/mzb_mmi.py" settle "$HANDLER_EP" sink "${sent:-0}" --timeout 30) || {
        echo "   !! no counters from the bridge" >&2
        return 0
    }
    record_line B "$rep" "$out"
    served=$(grep -o 'handler_served=[0-9]*' <<<"$out" | cut -d= -f2)
    record B "$rep" handler_lost $((${sent:-0} - ${served:-0}))
    SETTLE_NOTE=" handler=${served:-?}/${sent:-?}"
}

show_progress() { # show_progress VARIANT REP
    local keys="rate lat_p50_us lat_p99_us rtt_p50_us rtt_p99_us lost errors timeouts cpu_pct"
    local k v text=""
    for k in $keys; do
        v=$(grep -o " $k=[^ ]*" <<<" $LAST_LINE" | head -n 1 | cut -d= -f2 || true)
        [ -n "$v" ] && text="$text $k=$v"
    done
    printf '   %-4s %-8s %s rep %s:%s%s\n' "$U_SCEN" "$U_CASE" "$1" "$2" "$text" "$SETTLE_NOTE"
}

run_unit() { # run_unit VARIANT REP
    local var=$1 rep=$2 dir="$RUN/$U_SCEN-$U_CASE-$1-$2" t0 ok=0
    mkdir -p "$dir"
    # Started as root, mosquitto drops to its own user; its log and callgrind's profile are
    # written into this directory after that.
    if [ "$(id -u)" = 0 ] && id -u mosquitto >/dev/null 2>&1; then
        chown mosquitto "$dir"
    fi
    LAST_LINE=""
    SETTLE_NOTE=""
    if [ "$var" = B ]; then
        "$PY" "$TOOLS/gen_config.py" "$dir/mzb.json" --mqtt-port "$MQTT_PORT" \
            --plugin-port "$PLUGIN_PORT" --handler-port "$HANDLER_PORT" "${U_CFG[@]}"
        write_broker_conf "$dir/mosquitto.conf" "$dir/mzb.json"
    else
        write_broker_conf "$dir/mosquitto.conf"
    fi

    t0=$(now_ms)
    start broker "$dir" "${U_BROKER_PREFIX[@]}" /usr/sbin/mosquitto -c "$dir/mosquitto.conf"
    if wait_port "$MQTT_PORT" broker 120; then
        record "$var" "$rep" start_ms $(($(now_ms) - t0))
        if [ "$var" = B ]; then
            start_b_side "$dir" && ok=1
        elif [ "$U_ECHO" -gt 0 ]; then
            start_echo_servers "$dir" && ok=1
        else
            ok=1
        fi
    fi
    if [ "$ok" = 1 ]; then
        if [ -n "$U_HOOK" ]; then
            "$U_HOOK" "$var" "$rep" "$dir" || true
        elif drive_load "$var" "$rep" "$dir"; then
            [ "$var" = B ] && [ "$U_SETTLE" = 1 ] && settle_handler "$rep" "$dir"
            record "$var" "$rep" broker_hwm_kb "$(proc_kb "${PIDS[broker]}" VmHWM)"
            [ "$var" = B ] && record B "$rep" bridge_hwm_kb "$(proc_kb "${PIDS[bridge]}" VmHWM)"
            show_progress "$var" "$rep"
        fi
    else
        echo "   !! $U_SCEN $U_CASE $var rep $rep could not start; logs in $dir" >&2
        record "$var" "$rep" failed 1
    fi
    stop_all
    # handler logs (a line per request) and 100,000-route configurations add up over a run
    find "$dir" -maxdepth 1 -type f \( -name '*.log' -o -name 'mzb.json' \) -size +1M \
        -exec gzip -f {} + 2>/dev/null || true
}

# Runs one case: A B A B ..., or only A when the product did not build.
run_case() {
    local rep
    for rep in $(seq 1 "$REPS"); do
        run_unit A "$rep"
        [ "$HAVE_B" = 1 ] && run_unit B "$rep"
    done
    return 0
}

reset_unit() {
    U_CFG=()
    U_HANDLERS=1
    U_ECHO=0
    U_SETTLE=0
    U_LOADGEN=()
    U_BROKER_PREFIX=()
    U_HOOK=""
    U_BROKER_USER=""
}

LG_TIME=(-d "$DURATION" -w "$WARMUP")

# ---------------------------------------------------------------- scenarios
scenario_1() {
    echo "== 1. plugin loaded, traffic that matches no route (pubsub, 64 B, saturating)"
    local qos
    for qos in 0 1; do
        reset_unit
        U_SCEN=s1 U_CASE=qos$qos
        U_CFG=(--event 'bench/unrouted/#')
        U_LOADGEN=(pubsub -t bench/t -q "$qos" -s 64 "${LG_TIME[@]}")
        run_case
    done
}

scenario_2() {
    echo "== 2. event routes: every message also goes to a handler (64 B, saturating, and"
    echo "      QoS 1 at a rate one handler keeps up with)"
    local c
    for c in qos0 qos1 qos1r5k; do
        reset_unit
        U_SCEN=s2 U_CASE=$c
        U_CFG=(--event 'bench/ev/#')
        U_SETTLE=1
        case $c in
        qos0) U_LOADGEN=(pubsub -t bench/ev -q 0) ;;
        qos1) U_LOADGEN=(pubsub -t bench/ev -q 1) ;;
        qos1r5k) U_LOADGEN=(pubsub -t bench/ev -q 1 -r 5000) ;;
        esac
        U_LOADGEN+=(-s 64 "${LG_TIME[@]}")
        run_case
    done
}

scenario_3() {
    echo "== 3. request routes vs an MQTT echo client (QoS 1, 64 B, closed loop)"
    local k
    for k in 1 32; do
        reset_unit
        U_SCEN=s3 U_CASE=k$k
        U_CFG=(--request 'bench/rpc/#')
        U_ECHO=1
        U_LOADGEN=(rr -t bench/rpc -q 1 -s 64 -c 1 -k "$k" "${LG_TIME[@]}")
        run_case
    done
}

scenario_4() {
    echo "== 4. route table size: one route matches (events, QoS 0, 64 B, saturating)"
    local n
    for n in 10 1000 10000 100000; do
        reset_unit
        U_SCEN=s4 U_CASE=r$n
        U_CFG=(--event 'bench/ev/#' --extra-routes $((n - 1)))
        U_SETTLE=1
        U_LOADGEN=(pubsub -t bench/ev -q 0 -s 64 "${LG_TIME[@]}")
        run_case
    done
}

scenario_5() {
    echo "== 5. payload size (events, QoS 1, saturating)"
    local size
    for size in 64 1024 65536; do
        reset_unit
        U_SCEN=s5 U_CASE=b$size
        U_CFG=(--event 'bench/ev/#')
        U_SETTLE=1
        U_LOADGEN=(pubsub -t bench/ev -q 1 -s "$size" "${LG_TIME[@]}")
        run_case
    done
}

scenario_6() {
    echo "== 6. handlers of one service (requests, QoS 1, 4 clients x 8 in flight)"
    local h
    for h in 1 2 4; do
        reset_unit
        U_SCEN=s6 U_CASE=h$h
        U_CFG=(--request 'bench/rpc/#')
        U_HANDLERS=$h
        U_ECHO=$h
        U_LOADGEN=(rr -t bench/rpc -q 1 -s 64 -c 4 -k 8 "${LG_TIME[@]}")
        run_case
    done
}

# Scenario 7: no traffic. Memory once the bridge is connected, and on the B side the time a
# SIGHUP reload of the routes takes (until the plugin logs "reloaded").
memory_hook() { # memory_hook VARIANT REP DIR
    local var=$1 rep=$2 dir=$3 pid before t0 c0 i rss hwm
    pid=${PIDS[broker]}
    sleep 1
    rss=$(proc_kb "$pid" VmRSS)
    hwm=$(proc_kb "$pid" VmHWM)
    record "$var" "$rep" broker_rss_kb "$rss"
    record "$var" "$rep" broker_hwm_kb "$hwm"
    if [ "$var" = B ]; then
        before=$(grep -c "reloaded" "$dir/mosquitto.log" || true)
        c0=$(cpu_ticks "$pid")
        t0=$(now_ms)
        kill -HUP "$pid"
        for i in $(seq 1 6000); do
            [ "$(grep -c "reloaded" "$dir/mosquitto.log" || true)" -gt "$before" ] && break
            sleep 0.005
        done
        if [ "$(grep -c "reloaded" "$dir/mosquitto.log" || true)" -gt "$before" ]; then
            record "$var" "$rep" reload_ms $(($(now_ms) - t0))
            record "$var" "$rep" reload_cpu_ms \
                $((($(cpu_ticks "$pid") - c0) * 1000 / CLK_TCK))
        else
            echo "   !! no \"reloaded\" line in $dir/mosquitto.log 30 s after SIGHUP" >&2
        fi
        record "$var" "$rep" broker_rss_after_reload_kb "$(proc_kb "$pid" VmRSS)"
        record "$var" "$rep" broker_hwm_after_reload_kb "$(proc_kb "$pid" VmHWM)"
    fi
    printf '   %-4s %-8s %s rep %s: rss=%s kB hwm=%s kB%s\n' "$U_SCEN" "$U_CASE" "$var" "$rep" \
        "$rss" "$hwm" \
        "$(grep "$U_SCEN,$U_CASE,$var,$rep,\(start_ms\|reload_ms\)," "$CSV" |
            awk -F, '{printf " %s=%s", $5, $6}')$([ "$var" = B ] &&
            echo " after reload: rss=$(proc_kb "$pid" VmRSS) kB")"
}

scenario_7() {
    echo "== 7. broker memory and route loading (no traffic)"
    local n
    for n in 1 10000 100000; do
        reset_unit
        U_SCEN=s7 U_CASE=r$n
        U_CFG=(--event 'bench/ev/#' --extra-routes $((n - 1)))
        U_HOOK=memory_hook
        run_case
    done
}

# Scenario 8: the broker under callgrind, a fixed number of routed QoS 1 publishes at a low
# rate, then the inclusive instruction counts of the functions on the publish path.
callgrind_hook() { # callgrind_hook VARIANT REP DIR
    local var=$1 rep=$2 dir=$3 rc=0 pid out ann
    pid=${PIDS[broker]}
    timeout -k 5 600 "$LOADGEN" pubsub -p "$MQTT_PORT" -t bench/ev -q 1 -s 64 -S 0 \
        -n "$CG_COUNT" -r 250 -D 60 >"$dir/loadgen.out" 2>"$dir/loadgen.err" || rc=$?
    # callgrind writes its profile when the broker exits, which takes a while
    stop_proc broker 120
    out=$(ls "$dir"/callgrind.out.* 2>/dev/null | head -n 1 || true)
    if [ "$rc" -ne 0 ] || [ -z "$out" ]; then
        echo "   !! callgrind run failed (loadgen exit $rc); see $dir" >&2
        record "$var" "$rep" failed 1
        return 0
    fi
    ann=$dir/annotate.txt
    callgrind_annotate --inclusive=yes --threshold=100 "$out" >"$ann" 2>&1 || true
    ir_of() { # the inclusive Ir of the first line naming the function
        grep -E "[ :]$1( |$)" "$ann" | head -n 1 | awk '{gsub(",", "", $1); print $1}'
    }
    local name metric ir text=""
    # io_main is the plugin's own I/O thread: its count includes the heartbeats and wake-ups
    # of the whole run, so at this low rate it overstates the per-message cost
    for name in handle__publish:publish_ir_per_msg plugin__handle_message:plugin_ir_per_msg \
        mzbp_on_message:cb_ir_per_msg io_main:io_thread_ir_per_msg; do
        ir=$(ir_of "${name%%:*}")
        metric=${name##*:}
        if [ -n "$ir" ]; then
            record "$var" "$rep" "$metric" $((ir / CG_COUNT))
            text="$text $metric=$((ir / CG_COUNT))"
        fi
    done
    record "$var" "$rep" cg_messages "$CG_COUNT"
    printf '   %-4s %-8s %s rep %s:%s (instructions per message, %s messages)\n' "$U_SCEN" \
        "$U_CASE" "$var" "$rep" "$text" "$CG_COUNT"
}

scenario_8() {
    echo "== 8. instructions per routed message under callgrind ($CG_COUNT QoS 1 events)"
    local reps=$REPS var
    REPS=1
    for var in A B; do
        [ "$var" = B ] && [ "$HAVE_B" = 0 ] && continue
        reset_unit
        U_SCEN=s8 U_CASE=ir
        U_CFG=(--event 'bench/ev/#')
        U_HOOK=callgrind_hook
        U_BROKER_USER=$(id -un)
        U_BROKER_PREFIX=(valgrind --tool=callgrind
            --callgrind-out-file="$RUN/s8-ir-$var-1/callgrind.out.%p")
        run_unit "$var" 1
    done
    REPS=$reps
}

# ---------------------------------------------------------------- main
echo "== mosquitto $(/usr/sbin/mosquitto -h 2>/dev/null | head -n 1 | awk '{print $3}')," \
    "$(nproc) cores, $REPS repetitions of ${DURATION} s (+${WARMUP} s warm-up), ports" \
    "$MQTT_PORT-$HANDLER_PORT; logs in $RUN"
for s in $ONLY; do
    "scenario_$s"
done
stop_all

echo "== summary"
"$PY" "$TOOLS/summarise.py" "$CSV" --txt "$OUT/bench-$STAMP.txt" --png "$OUT/bench-$STAMP.png" \
    --note "mosquitto 2.0.11 on $(nproc) cores; $REPS reps x ${DURATION} s; $(date -u +%F)"
for ext in csv txt png; do
    [ -f "$OUT/bench-$STAMP.$ext" ] && cp "$OUT/bench-$STAMP.$ext" "$OUT/latest.$ext"
done
echo "results: $OUT/bench-$STAMP.{csv,txt,png} (also latest.*), logs: $RUN"
exit 0
}
