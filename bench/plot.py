#!/usr/bin/env python3
"""Draws the plots of docs/benchmarks.md from bench/results/latest.json.

Usage: plot.py RESULTS_JSON OUT_DIR
Writes OUT_DIR/bench-throughput.png (saturation requests/s per target) and
OUT_DIR/bench-latency.png (latency percentiles per target at each fixed
rate), with gnuplot (Debian's gnuplot-nox, pngcairo or png terminal).
"""
import json
import pathlib
import subprocess
import sys
import tempfile

NAMES = {"origin": "direct to origin", "nginx": "nginx", "haproxy": "haproxy",
         "egressd": "egressd", "egressd-grpc": "egressd (gRPC client)",
         "grpc-floor": "gRPC floor"}


def terminal():
    out = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True,
                         text=True)
    text = out.stdout + out.stderr
    return "pngcairo" if "pngcairo" in text else "png"


def run(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    results = json.loads(pathlib.Path(sys.argv[1]).read_text())
    out_dir = pathlib.Path(sys.argv[2])
    term = terminal()
    env = results["env"]
    subtitle = (f"{env.get('nproc')} cores, {env.get('phase_seconds')} s per "
                f"phase, {env.get('date')}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        sat = tmp / "sat.dat"
        sat.write_text("".join(
            f"\"{NAMES[s['target']]}\" {s['requests_per_s'] or 0}\n"
            for s in results["saturation"]))
        run(f"""
set terminal {term} size 800,450
set output "{out_dir / 'bench-throughput.png'}"
set title "Saturation throughput, h2load -t1 -c16 -m8, 1 KiB\\n{{/*0.8 {subtitle}}}"
set ylabel "requests/s"
set style fill solid 0.7 border -1
set boxwidth 0.6
set yrange [0:*]
set grid ytics
unset key
plot "{sat}" using 0:2:xtic(1) with boxes lc rgb "#4a7ebb", \\
     "" using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.8
""")
        rates = sorted({e["rate"] for e in results["latency"]})
        lat = tmp / "lat.dat"
        rows = []
        for rate in rates:
            for e in results["latency"]:
                if e["rate"] != rate or "latency_us" not in e:
                    continue
                l = e["latency_us"]
                rows.append(f"\"{NAMES[e['target']]}, {rate // 1000}k/s\" "
                            f"{l['p50']} {l['p90']} {l['p99']} {l['p999']}\n")
        lat.write_text("".join(rows))
        run(f"""
set terminal {term} size 1000,500
set output "{out_dir / 'bench-latency.png'}"
set title "Latency at fixed rates (open loop, from intended send time)\\n{{/*0.8 {subtitle}}}"
set ylabel "microseconds (log scale)"
set logscale y
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set xtics rotate by -30 font ",9"
set grid ytics
set key outside right top
plot "{lat}" using 2:xtic(1) title "p50", "" using 3 title "p90", \\
     "" using 4 title "p99", "" using 5 title "p99.9"
""")


if __name__ == "__main__":
    main()
