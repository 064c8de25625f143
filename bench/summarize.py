#!/usr/bin/env python3
"""Turns the raw outputs of bench/run.sh into latest.json and latest.md.

Usage: summarize.py RAW_DIR OUT_JSON OUT_MD

RAW_DIR holds env.txt, phases.tsv (one row per phase with the CPU ticks of
each server's process tree over it), h2load outputs (saturation-*.txt) and
loadgen JSON reports (*.json). Nothing here measures: it only divides and
formats, so every figure in the summary can be traced to a raw file.
"""
import json
import pathlib
import re
import sys

TARGET_NAMES = {
    "origin": "direct to origin",
    "nginx": "nginx (pooled proxy)",
    "haproxy": "haproxy (pooled proxy)",
    "egressd": "egressd",
    "egressd-grpc": "egressd, gRPC client",
    "grpc-floor": "gRPC floor (no-op Fetcher)",
}
# The process whose CPU a target costs (the origin is the same for all).
PROXY_PROCESS = {"nginx": "nginx", "haproxy": "haproxy", "egressd": "egressd",
                 "egressd-grpc": "egressd", "origin": "origin",
                 "grpc-floor": "floor"}


def read_env(raw):
    env = {}
    for line in (raw / "env.txt").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    return env


def read_phases(raw):
    lines = (raw / "phases.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def parse_h2load(text):
    out = {}
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
    if m:
        out["seconds"] = float(m.group(1))
        out["requests_per_s"] = float(m.group(2))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout",
                  text)
    if m:
        keys = ["total", "started", "done", "succeeded", "failed", "errored",
                "timeout"]
        out.update({k: int(v) for k, v in zip(keys, m.groups())})
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx",
                  text)
    if m:
        out["status_2xx"], out["status_3xx"], out["status_4xx"], out[
            "status_5xx"] = (int(x) for x in m.groups())
    m = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)"
                  r"\s+([\d.]+)(us|ms|s)", text)
    if m:
        scale = {"us": 1, "ms": 1000, "s": 1e6}
        out["h2load_mean_us"] = float(m.group(5)) * scale[m.group(6)]
    return out


def cpu_us(phase, process, clk_tck):
    return int(phase[process]) * 1e6 / clk_tck


def per_request(us, requests):
    return round(us / requests, 2) if requests else None


def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, (int,)) or (isinstance(value, float) and
                                     value >= 1000 and digits <= 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def main():
    raw, out_json, out_md = (pathlib.Path(p) for p in sys.argv[1:4])
    env = read_env(raw)
    clk_tck = int(env.get("clk_tck", "100"))
    phases = read_phases(raw)

    saturation, latency, cpu = [], [], []
    for ph in phases:
        target = ph["target"]
        proc = PROXY_PROCESS[target]
        if ph["kind"] == "h2load":
            h = parse_h2load((raw / ph["file"]).read_text())
            done = h.get("done", 0)
            saturation.append({
                "target": target,
                "requests_per_s": h.get("requests_per_s"),
                "succeeded": h.get("succeeded"),
                "failed": h.get("failed"),
                "errored": h.get("errored"),
                "status_2xx": h.get("status_2xx"),
                "h2load_mean_us": h.get("h2load_mean_us"),
                "cpu_us_per_request": per_request(
                    cpu_us(ph, proc, clk_tck), done),
                "origin_cpu_us_per_request": per_request(
                    cpu_us(ph, "origin", clk_tck), done),
                "cpu_cores": round(cpu_us(ph, proc, clk_tck) / 1e6 /
                                   h["seconds"], 2) if h.get("seconds") else None,
            })
            continue
        report_file = raw / ph["file"].replace(".json.txt", ".json")
        if not report_file.exists():
            entry = {"target": target, "error": (raw / (ph["file"] + ".err"))
                     .read_text()[-500:]}
        else:
            r = json.loads(report_file.read_text())
            requests = r["all_calls"]
            entry = {
                "target": target,
                "client": r["protocol"],
                "offered_rate": r["offered_rate"],
                "throughput_rps": r["throughput_rps"],
                "measured_calls": r["measured_calls"],
                # A response that is not 2xx is an error for a benchmark
                # that only ever asks for an existing file.
                "errors": r["errors"] + sum(
                    n for code, n in r["http_status"].items()
                    if not code.startswith("2")),
                "status": r["status"],
                "http_status": r["http_status"],
                "latency_us": r["latency_us"],
                "send_lag_us": r["send_lag_us"],
                "cpu_us_per_request": per_request(
                    cpu_us(ph, proc, clk_tck), requests),
                "origin_cpu_us_per_request": per_request(
                    cpu_us(ph, "origin", clk_tck), requests),
            }
        if ph["phase"].startswith("latency-"):
            entry["rate"] = int(ph["phase"].split("-")[1])
            latency.append(entry)
        else:
            entry["rate"] = int(ph["phase"].split("-")[1])
            cpu.append(entry)

    result = {"env": env, "saturation": saturation, "latency": latency,
              "cpu": cpu}

    # The targets, each with the measured figure.
    sat = {s["target"]: s for s in saturation}
    checks = []
    if "egressd" in sat and "nginx" in sat:
        r = ratio(sat["egressd"]["requests_per_s"], sat["nginx"]["requests_per_s"])
        checks.append({"target": "throughput >= 1.0x nginx (same h2load command)",
                       "measured": f"{r}x" if r else "n/a",
                       "met": bool(r and r >= 1.0)})
    if "egressd" in sat and "haproxy" in sat:
        r = ratio(sat["egressd"]["requests_per_s"],
                  sat["haproxy"]["requests_per_s"])
        checks.append({"target": "throughput >= 1.0x haproxy (the real goal)",
                       "measured": f"{r}x" if r else "n/a",
                       "met": bool(r and r >= 1.0)})
    for c in cpu:
        if c["target"] == "egressd" and "cpu_us_per_request" in c:
            v = c["cpu_us_per_request"]
            achieved = c["throughput_rps"]
            checks.append({
                "target": f"CPU per request at {c['rate']:,}/s <= 16 us",
                "measured": f"{v} us (achieved {achieved:,.0f}/s, "
                            f"{c['errors']} errors)",
                "met": bool(v is not None and v <= 16 and c["errors"] == 0 and
                            achieved >= 0.95 * c["rate"])})
    floor_cpu = {c["rate"]: c.get("cpu_us_per_request") for c in cpu
                 if c["target"] == "grpc-floor"}
    for c in cpu:
        if (c["target"] == "egressd" and c.get("cpu_us_per_request") and
                floor_cpu.get(c["rate"])):
            own = round(c["cpu_us_per_request"] - floor_cpu[c["rate"]], 1)
            checks.append({
                "target": f"egressd's CPU beyond the gRPC floor at "
                          f"{c['rate']:,}/s <= 4 us",
                "measured": f"{own} us ({c['cpu_us_per_request']} - "
                            f"{floor_cpu[c['rate']]})",
                "met": own <= 4})
    lat = {(e["rate"], e["target"]): e for e in latency if "latency_us" in e}
    if (1000, "egressd") in lat and (1000, "haproxy") in lat:
        e, h = lat[(1000, "egressd")], lat[(1000, "haproxy")]
        checks.append({
            "target": "p99 at 1,000/s <= haproxy's p99 (same h2c client)",
            "measured": f"{e['latency_us']['p99']} us vs "
                        f"{h['latency_us']['p99']} us",
            "met": e["latency_us"]["p99"] <= h["latency_us"]["p99"]})
    result["targets"] = checks
    out_json.write_text(json.dumps(result, indent=2) + "\n")

    # --- markdown ---
    md = []
    md.append(f"Measured {env.get('date')} on {env.get('nproc')} cores "
              f"({env.get('cpu_model')}), {env.get('mem_total')}; "
              f"egressd {env.get('egressd_commit')}, nginx {env.get('nginx')}, "
              f"haproxy {env.get('haproxy')}, h2load {env.get('h2load')}, "
              f"gRPC {env.get('grpc')}; {env.get('phase_seconds')} s per "
              "phase; load average "
              f"{env.get('loadavg_start')} at the start, "
              f"{env.get('loadavg_end')} at the end. Load generator, origin "
              "and proxy share the cores.\n")
    md.append("### Targets\n")
    md.append("| target | measured | met |")
    md.append("|---|---|---|")
    for c in checks:
        md.append(f"| {c['target']} | {c['measured']} | "
                  f"{'yes' if c['met'] else '**no**'} |")
    md.append("")
    md.append("### 1. Saturation throughput (h2load -t1 -c16 -m8, 1 KiB)\n")
    md.append("| target | requests/s | vs nginx | vs haproxy | proxy CPU "
              "µs/request | proxy CPU cores | origin CPU µs/request | failed |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in saturation:
        t = s["target"]
        proxy_cpu = None if t == "origin" else s["cpu_us_per_request"]
        md.append(
            f"| {TARGET_NAMES[t]} | {fmt(s['requests_per_s'])} | "
            f"{fmt(ratio(s['requests_per_s'], sat.get('nginx', {}).get('requests_per_s')), 2)} | "
            f"{fmt(ratio(s['requests_per_s'], sat.get('haproxy', {}).get('requests_per_s')), 2)} | "
            f"{fmt(proxy_cpu)} | {fmt(None if t == 'origin' else s['cpu_cores'], 2)} | "
            f"{fmt(s['origin_cpu_us_per_request'])} | "
            f"{(s['failed'] or 0) + (s['errored'] or 0)} |")
    md.append("")
    rates = sorted({e["rate"] for e in latency})
    for rate in rates:
        md.append(f"### 2. Latency at {rate:,} requests/s (open loop, µs from "
                  "intended send time)\n")
        md.append("| target | client | achieved/s | p50 | p90 | p99 | p99.9 | "
                  "max | added p99 vs origin | errors | proxy CPU µs/request |")
        md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        origin = lat.get((rate, "origin"))
        for e in (x for x in latency if x["rate"] == rate):
            if "latency_us" not in e:
                md.append(f"| {TARGET_NAMES[e['target']]} | failed | | | | | | | | | |")
                continue
            l = e["latency_us"]
            added = (l["p99"] - origin["latency_us"]["p99"]) if origin else None
            md.append(
                f"| {TARGET_NAMES[e['target']]} | {e['client']} | "
                f"{fmt(e['throughput_rps'])} | {fmt(l['p50'])} | "
                f"{fmt(l['p90'])} | {fmt(l['p99'])} | {fmt(l['p999'])} | "
                f"{fmt(l['max'])} | "
                f"{'–' if e['target'] == 'origin' else fmt(added)} | "
                f"{e['errors']} | "
                f"{'–' if e['target'] == 'origin' else fmt(e['cpu_us_per_request'])} |")
        md.append("")
    for rate in sorted({c["rate"] for c in cpu}):
        md.append(f"### 3. CPU per request at {rate:,} requests/s "
                  "(utime+stime of the process tree)\n")
        md.append("| target | achieved/s | CPU µs/request | vs nginx | "
                  "vs haproxy | p99 µs | errors |")
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        by = {c["target"]: c for c in cpu if c["rate"] == rate}
        for c in (x for x in cpu if x["rate"] == rate):
            if "latency_us" not in c:
                md.append(f"| {TARGET_NAMES[c['target']]} | failed | | | | | |")
                continue
            md.append(
                f"| {TARGET_NAMES[c['target']]} | {fmt(c['throughput_rps'])} | "
                f"{fmt(c['cpu_us_per_request'])} | "
                f"{fmt(ratio(c['cpu_us_per_request'], by.get('nginx', {}).get('cpu_us_per_request')), 2)} | "
                f"{fmt(ratio(c['cpu_us_per_request'], by.get('haproxy', {}).get('cpu_us_per_request')), 2)} | "
                f"{fmt(c['latency_us']['p99'])} | {c['errors']} |")
        md.append("")
    out_md.write_text("\n".join(md))


if __name__ == "__main__":
    main()
