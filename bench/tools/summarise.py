#!/usr/bin/python3
"""Turns the CSV of bench/run.sh into the table of medians, min-max and B/A ratios, and a
PNG plot drawn by gnuplot.

  summarise.py RESULTS.csv [--txt OUT.txt] [--png OUT.png] [--note TEXT]
"""
import argparse
import collections
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

SCENARIOS = {
    "s1": ("1. plugin loaded, no route matches (pubsub 1->1, 64 B, saturating)",
           ["rate", "lat_p50_us", "lat_p99_us", "broker_cpu_pct", "broker_loop_cpu_pct",
            "cpu_pct"]),
    "s2": ("2. event routes (pubsub 1->1, 64 B, saturating or r5k = 5,000/s; handler count on B)",
           ["rate", "lat_p50_us", "lat_p99_us", "handler_served", "handler_lost",
            "bridge_drop_queue_full", "plugin_queue_full", "broker_cpu_pct",
            "broker_loop_cpu_pct", "bridge_cpu_pct", "handlers_cpu_pct"]),
    "s3": ("3. request routes vs MQTT echo client (rr QoS 1, 1 client, k in flight)",
           ["rate", "rtt_p50_us", "rtt_p90_us", "rtt_p99_us", "rtt_max_us", "errors",
            "broker_loop_cpu_pct"]),
    "s4": ("4. route table size, one route matches (events QoS 0, saturating)",
           ["rate", "lat_p99_us", "handler_lost", "broker_loop_cpu_pct", "start_ms"]),
    "s5": ("5. payload size (events QoS 1, saturating)",
           ["rate", "mb_s", "lat_p99_us", "handler_lost", "bridge_drop_queue_full",
            "broker_hwm_kb", "bridge_hwm_kb"]),
    "s6": ("6. handlers of one service (rr QoS 1, 4 clients x 8 in flight)",
           ["rate", "rtt_p50_us", "rtt_p99_us", "handlers_cpu_pct", "echo_cpu_pct"]),
    "s7": ("7. broker memory and route loading (A plain, B plugin with N routes)",
           ["broker_rss_kb", "broker_hwm_kb", "start_ms", "reload_ms", "reload_cpu_ms",
            "broker_rss_after_reload_kb", "broker_hwm_after_reload_kb"]),
    "s8": ("8. instructions per message under callgrind (inclusive Ir / messages)",
           ["publish_ir_per_msg", "plugin_ir_per_msg", "cb_ir_per_msg",
            "io_thread_ir_per_msg"]),
}



def load(path):
    data = collections.defaultdict(list)
    failures = collections.Counter()
    order = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["scenario"], row["case"])
            if key not in order:
                order.append(key)
            if row["metric"] == "failed":
                failures[(row["scenario"], row["case"], row["variant"])] += 1
                continue
            try:
                value = float(row["value"])
            except ValueError:
                continue
            data[(row["scenario"], row["case"], row["variant"], row["metric"])].append(value)
    return data, failures, order


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    return "{:.1f}".format(v)


def cell(values):
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return "%s [%s-%s]" % (fmt(med), fmt(min(values)), fmt(max(values)))


def ratio(a, b):
    if not a or not b:
        return "-"
    ma, mb = statistics.median(a), statistics.median(b)
    if ma == 0:
        return "-"
    return "%.2f" % (mb / ma)


def table(data, failures, order):
    lines = []
    header = "%-26s %-9s %-28s %-28s %6s" % ("metric", "case", "A plain mosquitto",
                                             "B with plugin+bridge", "B/A")
    for scen, (title, metrics) in SCENARIOS.items():
        cases = [c for s, c in order if s == scen]
        if not cases:
            continue
        lines.append("")
        lines.append(title)
        lines.append(header)
        for case in cases:
            for m in metrics:
                a = data.get((scen, case, "A", m), [])
                b = data.get((scen, case, "B", m), [])
                if not a and not b:
                    continue
                lines.append("%-26s %-9s %-28s %-28s %6s" % (m, case, cell(a), cell(b),
                                                             ratio(a, b)))
            for var in "AB":
                if failures.get((scen, case, var)):
                    lines.append("%-26s %-9s %d %s run(s) failed: see the logs" % (
                        "!!", case, failures[(scen, case, var)], var))
    return lines


def write_plot_data(data, order, directory):
    """Two data files: delivered rates (pubsub and rr) and round-trip percentiles."""
    rates = []
    rtts = []
    for scen, case in order:
        def stat(var, m):
            v = data.get((scen, case, var, m), [])
            if not v:
                return ("NaN", "NaN", "NaN")
            return (statistics.median(v), min(v), max(v))

        label = "%s-%s" % (scen, case)
        if (scen, case, "A", "rate") in data or (scen, case, "B", "rate") in data:
            rates.append((label,) + stat("A", "rate") + stat("B", "rate"))
        if scen in ("s3", "s6"):
            for p in ("p50", "p99"):
                m = "rtt_%s_us" % p
                rtts.append(("%s %s" % (label, p),) + stat("A", m) + stat("B", m))
    paths = []
    for name, rows in (("rates.dat", rates), ("rtt.dat", rtts)):
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            for r in rows:
                f.write('"%s" %s\n' % (r[0], " ".join(str(x) for x in r[1:])))
        paths.append((path, len(rows)))
    return paths


def plot(data, order, png, note):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("summarise: gnuplot is missing (apt-get install gnuplot-nox); no plot",
              file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as tmp:
        (rates, nrates), (rtts, nrtts) = write_plot_data(data, order, tmp)
        script = """
set terminal pngcairo size 1400,900 font ',10'
set output '{png}'
set multiplot layout 2,1 title 'mosquitto-zmq-bridge bench: A plain mosquitto, \
B with plugin + bridge + handlers  ({note})'
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.6 border -1
set key top right
set grid ytics
set xtics rotate by -30 nomirror
set ylabel 'messages or requests / s (median, min-max)'
set title 'Delivered rate at subscribers (pubsub) / answered requests (rr)'
{rates_plot}
set ylabel 'round trip, microseconds (median, min-max)'
set title 'Request/reply round trip (scenarios 3 and 6)'
set logscale y
{rtt_plot}
unset multiplot
""".format(png=png, note=note.replace("'", ""),
           rates_plot=("plot '%s' using 2:3:4:xtic(1) title 'A', '' using 5:6:7 title 'B'"
                       % rates) if nrates else "plot 0 title 'no rate data'",
           rtt_plot=("plot '%s' using 2:3:4:xtic(1) title 'A', '' using 5:6:7 title 'B'"
                     % rtts) if nrtts else "plot 1 title 'no round-trip data'")
        gp = os.path.join(tmp, "plot.gp")
        with open(gp, "w") as f:
            f.write(script)
        res = subprocess.run([gnuplot, gp], capture_output=True, text=True)
        if res.returncode != 0:
            print("summarise: gnuplot failed: %s" % res.stderr.strip()[:500], file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--txt")
    ap.add_argument("--png")
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    data, failures, order = load(args.csv)
    lines = ["mosquitto-zmq-bridge benchmark: medians [min-max] over repetitions; "
             "B/A = median B / median A", args.note]
    lines += table(data, failures, order)
    lines += ["", "Ratios: for rates, B/A below 1.00 means the plugin path is slower; for "
              "latencies, memory, CPU and instruction counts, above 1.00 means it costs more."]
    text = "\n".join(lines)
    print(text)
    if args.txt:
        with open(args.txt, "w") as f:
            f.write(text + "\n")
    if args.png:
        plot(data, order, args.png, args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
