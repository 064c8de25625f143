// The pool's live web page, served at GET / by MetricsServer.
//
// One self-contained document: inline CSS and JavaScript, no fonts, images
// or scripts from anywhere else, so it works with no network (and the
// server's Content-Security-Policy forbids anything else). The script polls
// GET /api/pool (pool_json.h) every second and renders the totals, latency,
// per-address summary, connection table, close reasons, rejections, leaks
// and the latest events. Every value from the server is inserted as text
// (textContent), never as HTML: addresses and URLs come from Fetch callers.
//
// Rendered elements a test can look for: the connection table's rows are
// <tr id="conn-ID">, its cells hold the id and the remote address.
#ifndef EGRESS_SERVER_METRICS_PAGE_HTML_H_
#define EGRESS_SERVER_METRICS_PAGE_HTML_H_

#include "absl/strings/string_view.h"

namespace egress::metrics {

inline constexpr absl::string_view kPoolPageHtml = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>egressd pool</title>
<style>
:root {
  --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --muted: #6b7385;
  --line: #e3e6ec; --accent: #2f6fde; --ok: #1f9d55; --warn: #c77700;
  --bad: #d0342c; --idle: #1f9d55; --busy: #2f6fde; --conn: #c77700;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px;
  background: #1d2330; color: #fff; position: sticky; top: 0; z-index: 1; }
header h1 { font-size: 16px; margin: 0; font-weight: 600; }
header .sub { color: #aeb6c7; }
header .spacer { flex: 1; }
header input { background: #2b3345; border: 1px solid #3d475c; color: #fff;
  border-radius: 4px; padding: 4px 8px; width: 220px; }
header button { background: #2b3345; border: 1px solid #3d475c; color: #fff;
  border-radius: 4px; padding: 4px 10px; cursor: pointer; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%;
  background: #888; margin-right: 6px; vertical-align: middle; }
.dot.live { background: #3ccf7a; } .dot.down { background: var(--bad); }
main { padding: 16px 20px; display: grid; gap: 16px;
  grid-template-columns: repeat(12, 1fr); }
section { background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; padding: 12px 14px; min-width: 0; }
section h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); margin: 0 0 8px; font-weight: 600; }
.w12 { grid-column: span 12; } .w7 { grid-column: span 7; }
.w5 { grid-column: span 5; } .w4 { grid-column: span 4; }
@media (max-width: 1000px) { .w7, .w5, .w4 { grid-column: span 12; } }
.cards { display: grid; gap: 10px;
  grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .label { color: var(--muted); font-size: 11px; text-transform: uppercase; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .detail { color: var(--muted); font-size: 12px; }
.bad { color: var(--bad); } .warn { color: var(--warn); } .muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 11px; text-transform: uppercase; }
td.num, th.num { text-align: right; }
tbody tr:hover { background: #f0f4fb; }
.scroll { max-height: 420px; overflow: auto; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px;
  font-weight: 600; color: #fff; background: var(--muted); }
.badge.idle { background: var(--idle); } .badge.in_use { background: var(--busy); }
.badge.opened { background: var(--ok); } .badge.closed { background: #7a5bd0; }
.badge.served { background: var(--busy); } .badge.acquired { background: #3a8fb7; }
.badge.connect_failed, .badge.leak, .badge.rejected { background: var(--bad); }
.badge.no_new_exchanges { background: var(--warn); }
.bar { height: 6px; background: var(--accent); border-radius: 3px; }
.zero td { color: #b3b9c6; }
.note { color: var(--muted); font-size: 12px; margin-top: 6px; }
.stale main { opacity: .55; }
</style>
</head>
<body>
<header>
  <h1>egressd <span class="sub">connection pool</span></h1>
  <span id="status"><span class="dot"></span>connecting…</span>
  <span class="sub" id="uptime"></span>
  <span class="spacer"></span>
  <input id="filter" type="search" placeholder="filter by address" autocomplete="off">
  <button id="pause" type="button">Pause</button>
</header>
<main>
  <section class="w12"><h2>Pool</h2><div class="cards" id="cards"></div></section>
  <section class="w7"><h2>Addresses</h2>
    <div class="scroll"><table><thead><tr><th>Address</th>
      <th class="num" title="open connections">Conns</th><th class="num">Idle</th>
      <th class="num">In use</th><th class="num" title="connections being opened">Opening</th>
      <th class="num" title="calls waiting for a connection">Pending</th>
      <th class="num" title="calls in flight">Calls</th>
      <th class="num" title="HTTP/2 connections">h2</th>
      <th class="num" title="exchanges running (HTTP/2 streams)">Active</th>
      <th class="num" title="exchanges completed">Served</th></tr></thead>
      <tbody id="addresses"></tbody></table></div>
    <div class="note" id="addresses-note"></div></section>
  <section class="w5"><h2>Latency (succeeded calls)</h2>
    <table><thead><tr><th>Phase</th><th class="num">Avg</th><th class="num">p50</th>
      <th class="num">p90</th><th class="num">p99</th><th class="num">Count</th></tr></thead>
      <tbody id="latency"></tbody></table>
    <div class="note">Percentiles estimated from the histogram buckets, as
      Prometheus' histogram_quantile does.</div></section>
  <section class="w12"><h2>Connections</h2>
    <div class="scroll"><table><thead><tr><th class="num">Id</th><th>Address</th>
      <th>Remote</th><th class="num">Local port</th><th>Protocol</th><th>TLS</th>
      <th>State</th><th class="num">Age</th>
      <th class="num">Idle for</th><th class="num">Allocations</th>
      <th class="num">Exchanges</th><th>No new exchanges</th></tr></thead>
      <tbody id="connections"></tbody></table></div>
    <div class="note" id="connections-note"></div></section>
  <section class="w12"><h2>Latest events</h2>
    <div class="scroll"><table><thead><tr><th>Time</th><th>Event</th>
      <th class="num">Conn</th><th>Address</th><th>Detail</th></tr></thead>
      <tbody id="events"></tbody></table></div>
    <div class="note">Seen by comparing the pool between two refreshes of an open
      page; nothing is recorded while no page is open.</div></section>
  <section class="w4"><h2>Closed by reason</h2>
    <table><tbody id="closed"></tbody></table></section>
  <section class="w4"><h2>Rejections by limit</h2>
    <table><tbody id="rejected"></tbody></table>
    <h2 style="margin-top:14px">Limits</h2>
    <table><tbody id="config"></tbody></table></section>
  <section class="w4"><h2>Leaks</h2>
    <div class="scroll"><table><thead><tr><th>Detected</th><th class="num">Call</th>
      <th>Request</th><th class="num">Conn</th><th class="num">Age</th></tr></thead>
      <tbody id="leaks"></tbody></table></div>
    <div class="note" id="leaks-note"></div></section>
</main>
<script>
"use strict";
const POLL_MS = 1000;
let paused = false, last = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "id") e.id = v;
    else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
function td(v, cls) { return el("td", cls ? {class: cls} : {}, v); }
function num(v) { return td(fmtInt(v), "num"); }
function fmtInt(n) { return Number(n).toLocaleString("en-US"); }
function fmtMs(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "–";
  if (ms === 0) return "0";
  if (ms < 1) return Math.round(ms * 1000) + " \u00b5s";
  if (ms < 1000) return (ms < 10 ? ms.toFixed(2) : ms.toFixed(1)) + " ms";
  return (ms / 1000).toFixed(2) + " s";
}
function fmtAge(ms) {
  if (ms === null || ms === undefined) return "–";
  let s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + "s";
  let m = Math.floor(s / 60); s %= 60;
  if (m < 60) return m + "m " + s + "s";
  const h = Math.floor(m / 60); m %= 60;
  if (h < 48) return h + "h " + m + "m";
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}
function fmtTime(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString("en-GB", {hour12: false}) + "." +
      String(d.getMilliseconds()).padStart(3, "0");
}
function replace(id, rows) {
  const body = document.getElementById(id);
  body.replaceChildren(...rows);
}
// Prometheus' histogram_quantile: linear within the bucket that holds q.
// In the first bucket or past the last bound only the bound is known, and
// the text says so.
function quantile(q, h) {
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total === 0) return "\u2013";
  const rank = q * total;
  let cum = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const prev = cum;
    cum += h.counts[i];
    if (cum >= rank && h.counts[i] > 0) {
      if (i >= h.bounds.length) return "> " + fmtMs(h.bounds[h.bounds.length - 1] * 1000);
      if (i === 0) return "\u2264 " + fmtMs(h.bounds[0] * 1000);
      const lo = h.bounds[i - 1], hi = h.bounds[i];
      return fmtMs((lo + (hi - lo) * (rank - prev) / h.counts[i]) * 1000);
    }
  }
  return "\u2013";
}
function card(label, value, detail, cls) {
  return el("div", {class: "card"}, el("div", {class: "label"}, label),
      el("div", {class: "value" + (cls ? " " + cls : "")}, value),
      el("div", {class: "detail"}, detail || "\u00a0"));
}
function matches(address) {
  const f = document.getElementById("filter").value.trim().toLowerCase();
  return f === "" || String(address).toLowerCase().includes(f);
}

function render(d) {
  last = d;
  const t = d.totals;
  document.getElementById("uptime").textContent =
      "up " + fmtAge(d.now - d.started) + " · updated " + fmtTime(d.now);
  const closed = d.closed_by_reason.reduce((a, r) => a + r.count, 0);
  const rejected = d.rejected_by_limit.reduce((a, r) => a + r.count, 0);
  const calls = t.succeeded + t.failed;
  const reuse = t.succeeded ? Math.round(100 * t.on_reused_connection / t.succeeded) : 0;
  replace("cards", [
    card("Connections", fmtInt(t.connections),
        fmtInt(t.idle) + " idle · " + fmtInt(t.in_use) + " in use · " +
        fmtInt(t.connecting) + " connecting"),
    card("Calls in flight", fmtInt(t.requests_in_flight),
        fmtInt(t.pending) + " pending for a connection", t.pending > 0 ? "warn" : ""),
    card("Requests", fmtInt(calls), fmtInt(t.succeeded) + " ok · " +
        fmtInt(t.failed) + " failed · " + reuse + "% reused"),
    card("Opened / closed", fmtInt(t.connections_opened) + " / " + fmtInt(closed),
        fmtInt(t.cleanup_wakeups) + " cleanup wakeups"),
    card("Connect failures", fmtInt(t.connect_failures), "every route failed",
        t.connect_failures > 0 ? "bad" : ""),
    card("Rejections", fmtInt(rejected), "RESOURCE_EXHAUSTED by a limit",
        rejected > 0 ? "bad" : ""),
    card("Leaks", fmtInt(t.leaks), "callers that stopped reading",
        t.leaks > 0 ? "bad" : ""),
  ]);

  const addrs = d.addresses.filter(a => matches(a.address))
      .sort((a, b) => b.connections - a.connections ||
                      (a.address < b.address ? -1 : 1));
  replace("addresses", addrs.map(a => el("tr", {},
      td(a.address), num(a.connections), num(a.idle), num(a.in_use),
      num(a.connecting), num(a.pending), num(a.requests_in_flight),
      num(a.http2), num(a.exchanges), num(a.requests_served))));
  document.getElementById("addresses-note").textContent =
      d.addresses_total > d.addresses.length
          ? "Showing the " + d.addresses.length + " busiest of " +
            fmtInt(d.addresses_total) + " addresses."
          : (d.addresses_total === 0 ? "No addresses yet." : "");

  const phases = [["total", "Total"], ["queue_wait", "Queue wait"], ["dns", "DNS"],
      ["connect", "Connect"], ["tls", "TLS"], ["first_byte", "First byte"]];
  replace("latency", phases.map(([k, name]) => {
    const h = d.histograms[k];
    const count = h.counts.reduce((a, b) => a + b, 0);
    return el("tr", count ? {} : {class: "zero"}, td(name),
        td(fmtMs(d.timing_avg_ms[k]), "num"), td(quantile(.5, h), "num"),
        td(quantile(.9, h), "num"), td(quantile(.99, h), "num"),
        num(count));
  }));

  const conns = d.connections.filter(c => matches(c.address));
  replace("connections", conns.map(c => el("tr", {id: "conn-" + c.id},
      td(String(c.id), "num"), td(c.address), td(c.remote_address),
      td(String(c.local_port), "num"), td(c.protocol), td(c.tls || "\u2013"),
      td(el("span", {class: "badge " + c.state}, c.state === "idle" ? "idle" : "in use")),
      td(fmtAge(d.now - c.created), "num"),
      td(c.idle_since === null ? "–" : fmtAge(d.now - c.idle_since), "num"),
      td(c.allocations + " / " + c.allocation_limit, "num"), num(c.success_count),
      td(c.no_new_exchanges_reason || "", c.no_new_exchanges_reason ? "warn" : ""))));
  document.getElementById("connections-note").textContent =
      d.connections_total === 0 ? "No open connections." :
      (!d.connections_listed_all
          ? "Showing the first " + d.connections.length + " of " +
            fmtInt(d.connections_total) + " connections (lowest ids)."
          : "");

  const maxClosed = Math.max(1, ...d.closed_by_reason.map(r => r.count));
  replace("closed", d.closed_by_reason.map(r => el("tr", r.count ? {} : {class: "zero"},
      td(r.reason), num(r.count),
      td(el("div", {class: "bar", style: "width:" +
          Math.round(80 * r.count / maxClosed) + "px"}), ""))));
  replace("rejected", d.rejected_by_limit.map(r => el("tr", r.count ? {} : {class: "zero"},
      td(r.limit), td(fmtInt(r.count), "num" + (r.count ? " bad" : "")))));
  const c = d.config;
  const limit = v => v === 0 ? "no limit" : fmtInt(v);
  replace("config", [
      ["max_connections", limit(c.max_connections)],
      ["max_connections_per_address", limit(c.max_connections_per_address)],
      ["max_idle_connections", fmtInt(c.max_idle_connections)],
      ["max_idle_per_address", fmtInt(c.max_idle_per_address)],
      ["max_requests_in_flight", limit(c.max_requests_in_flight)],
      ["max_pending_per_address", limit(c.max_pending_per_address)],
      ["keep_alive", fmtAge(c.keep_alive_ms)],
      ["pending_timeout", fmtAge(c.pending_timeout_ms)],
      ["max_connection_lifetime", c.max_connection_lifetime_ms ? fmtAge(c.max_connection_lifetime_ms) : "none"],
  ].map(([k, v]) => el("tr", {}, td(k, "muted"), td(v, "num"))));

  replace("leaks", d.leaks.map(l => el("tr", {},
      td(fmtTime(l.detected_at)), td(String(l.call_id), "num"),
      td(l.method + " " + l.url), td(String(l.connection_id), "num"),
      td(fmtMs(l.age_ms), "num"))));
  document.getElementById("leaks-note").textContent =
      t.leaks === 0 ? "No leaks detected." : "";

  replace("events", d.events.filter(e => e.address === "" || matches(e.address))
      .map(e => el("tr", {}, td(fmtTime(e.time)),
          td(el("span", {class: "badge " + e.kind}, e.kind.replace(/_/g, " "))),
          td(e.connection_id ? String(e.connection_id) : "", "num"),
          td(e.address), td(e.detail))));
}

function setStatus(ok, text) {
  const s = document.getElementById("status");
  s.replaceChildren(el("span", {class: "dot " + (ok ? "live" : "down")}), text);
  document.body.classList.toggle("stale", !ok);
}

async function poll() {
  if (!paused) {
    try {
      const r = await fetch("/api/pool", {cache: "no-store"});
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
      setStatus(true, "live");
    } catch (e) {
      setStatus(false, "egressd unreachable (" + e.message + "), retrying");
    }
  }
  setTimeout(poll, POLL_MS);
}
document.getElementById("pause").addEventListener("click", () => {
  paused = !paused;
  document.getElementById("pause").textContent = paused ? "Resume" : "Pause";
  if (!paused) setStatus(true, "live"); else setStatus(true, "paused");
});
document.getElementById("filter").addEventListener("input", () => { if (last) render(last); });
poll();
</script>
</body>
</html>
)html";

}  // namespace egress::metrics

#endif  // EGRESS_SERVER_METRICS_PAGE_HTML_H_
