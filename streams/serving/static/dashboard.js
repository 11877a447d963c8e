// recstream live dashboard: /stats pushed every second over server-sent events
// (/stats/stream; polling /stats if the stream fails) drawn as plain SVG charts.
// No library, no build step, nothing fetched from anywhere but this worker.
"use strict";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"];
const PHASE_COLORS = { cold: "#9aa5b1", warm: "#f28e2b", active: "#4e79a7", established: "#59a14f" };
const SOURCE_COLORS = { popularity: "#9aa5b1", content: "#f28e2b", cf: "#4e79a7",
                        session: "#59a14f", mf: "#b07aa1" };
const SVG_NS = "http://www.w3.org/2000/svg";

function colorFor(name, i) {
  return PHASE_COLORS[name] || SOURCE_COLORS[name] || PALETTE[i % PALETTE.length];
}

function fmt(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en");
  return (Math.round(v * 10 ** digits) / 10 ** digits).toString();
}

function pct(v) { return v === null || v === undefined ? "–" : fmt(100 * v, 1) + " %"; }

function niceMax(v) {
  if (!(v > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The width of an SVG text in user units, once in the page (a rough guess before).
function textWidth(node) {
  try { return node.getComputedTextLength() || 6 * node.textContent.length; }
  catch (err) { return 6 * node.textContent.length; }
}

// xs: seconds relative to now (≤ 0); series: [{name, values, color}]; unit: axis suffix;
// fixedMax: top of the y axis (else rounded up from the data); x0: left end of the x axis.
// Missing values (null) are gaps: the line stops there, and the legend shows "–".
function lineChart(id, xs, series, unit, fixedMax, x0 = xs.length ? xs[0] : -120) {
  const svg = document.getElementById(id);
  const W = 560, H = 190, R = 10, T = 10, B = 22;
  svg.replaceChildren();
  const all = series.flatMap(s => s.values).filter(v => v !== null && v !== undefined);
  const ymax = fixedMax || niceMax(Math.max(0, ...all));
  const Y = y => T + (H - T - B) * (1 - y / ymax);
  // the y labels first: the plot starts where the widest of them ends (never clipped)
  const labels = [0, 0.5, 1].map(f => {
    const label = el("text", { y: Y(f * ymax) + 3, "text-anchor": "end" }, fmt(f * ymax, 2) + unit);
    svg.append(label);
    return label;
  });
  const L = Math.ceil(Math.max(...labels.map(textWidth))) + 8;
  const x1 = 0;
  const X = x => L + (W - L - R) * (x - x0) / ((x1 - x0) || 1);
  for (const label of labels) {
    label.setAttribute("x", L - 4);
    const y = +label.getAttribute("y") - 3;
    svg.insertBefore(el("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#e4e7ec" }), label);
  }
  for (const x of [x0, Math.round(x0 / 2), 0]) {
    svg.append(el("text", { x: X(x), y: H - 6, "text-anchor": x === x0 ? "start" : x === 0 ? "end" : "middle" },
                  x === 0 ? "now" : `${x} s`));
  }
  series.forEach(s => {
    let d = "", pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? "L" : "M"}${X(xs[i]).toFixed(1)},${Y(Math.min(v, ymax)).toFixed(1)}`;
      pen = true;
    });
    if (d) svg.append(el("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.8,
                                   "stroke-linejoin": "round", "data-name": s.name }));
  });
  const legend = document.getElementById(id.replace("chart-", "legend-"));
  legend.replaceChildren(...series.map(s => {
    const span = document.createElement("span");
    // the newest second is still filling: the legend quotes the last complete one, or "–"
    // when it has no figure (no event of that phase in the window: no rate, not 0 %)
    const done = id === "chart-users" ? s.values : s.values.slice(0, -1);
    const last = done.length ? done[done.length - 1] : null;
    span.innerHTML = `<i style="background:${s.color}"></i>`;
    span.append(`${s.name}: ${last === null || last === undefined ? "–" : fmt(last, 2) + unit}`);
    return span;
  }));
}

function rows(tableId, data, cells) {
  const body = document.querySelector(`#${tableId} tbody`);
  if (!data.length) {
    body.innerHTML = `<tr><td class="empty" colspan="9">nothing yet</td></tr>`;
    return;
  }
  body.replaceChildren(...data.map((d, i) => {
    const tr = document.createElement("tr");
    for (const c of cells(d, i)) {
      const td = document.createElement("td");
      if (typeof c === "object" && c !== null) {
        if (c.cls) td.className = c.cls;
        if (c.html !== undefined) td.innerHTML = c.html; else td.textContent = c.text;
        if (c.data) for (const [k, v] of Object.entries(c.data)) td.dataset[k] = v;
      } else td.textContent = c;
      tr.append(td);
    }
    return tr;
  }));
}

const esc = s => String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const clock = t => t ? new Date(t * 1000).toLocaleTimeString("en-GB") : "–";

// the models' last checkpoint (a restart replays what came after it) and any that failed
function checkpointText(c, now) {
  if (!c) return "";
  const last = c.written_at ? ` · checkpoint ${fmt(Math.max(0, now - c.written_at), 0)} s ago` +
    ` (${fmt(c.seconds, 2)} s)` : " · no checkpoint yet";
  return last + (c.failed ? ` · ${fmt(c.failed, 0)} checkpoint(s) failed` : "");
}

function render(s) {
  const phases = s.phases || [];
  const lagTotal = s.lag.reduce((a, r) => a + (r.unread || 0), 0);
  document.getElementById("worker").textContent =
    `${s.worker.app_id} · k=${s.worker.k} · up ${fmt(s.worker.uptime_s, 0)} s` +
    (s.worker.redis_up ? "" : " · Redis not answering") + checkpointText(s.checkpoints, s.now);
  document.getElementById("kpi-events-in").textContent = fmt(s.rates.records_in);
  document.getElementById("kpi-recs-out").textContent = fmt(s.rates.recommendations_out);
  document.getElementById("kpi-p95").textContent = fmt(s.latency_ms.p95);
  document.getElementById("kpi-hit-rate").textContent = pct(s.hit_rate.rolling);
  document.getElementById("kpi-lag").textContent = fmt(lagTotal, 0);
  document.getElementById("kpi-dlq").textContent = fmt(s.dlq.count, 0);
  document.getElementById("dlq-count").textContent = s.dlq.count;

  const t = s.series.t;
  lineChart("chart-throughput", t, [
    { name: "events in /s", values: s.series.records_in, color: PALETTE[0] },
    { name: "recommendations out /s", values: s.series.recommendations_out, color: PALETTE[1] },
  ], "");
  lineChart("chart-latency", t, [50, 95, 99].map((p, i) => (
    { name: `p${p}`, values: s.series[`latency_p${p}`], color: PALETTE[[4, 0, 2][i]] })), " ms");
  const hitSeries = [{ name: "all", values: s.series.hit_rate.map(v => v === null ? null : 100 * v),
                       color: "#1d2430" }];
  phases.forEach((p, i) => {
    const v = s.series[`hit_rate:${p}`];
    if (v) hitSeries.push({ name: p, values: v.map(x => x === null ? null : 100 * x), color: colorFor(p, i) });
  });
  lineChart("chart-hits", t, hitSeries, " %", 100);
  const uh = s.users_history;
  lineChart("chart-users", uh.t, phases.map((p, i) => (
    { name: p, values: uh.mix.map(m => m[p] ?? 0), color: colorFor(p, i) })), "", 0, t[0]);

  rows("phase-table", phases, p => {
    const h = s.hit_rate.phases[p] || { events: 0, hits: 0, rolling: null };
    return [{ html: `<i style="display:inline-block;width:9px;height:9px;background:${colorFor(p, 0)}"></i> ${esc(p)}` },
            { text: s.users_by_phase[p] ?? 0, cls: "num", data: { phaseUsers: p } },
            { text: h.events, cls: "num" }, { text: h.hits, cls: "num" },
            { text: h.events ? pct(h.hits / h.events) : "–", cls: "num" },
            { text: pct(h.rolling), cls: "num" }];
  });
  const prefix = s.worker.topic_prefix || "";
  const short = name => name.startsWith(prefix) ? name.slice(prefix.length) : name;
  rows("lag-table", s.lag, r => [`${short(r.topic)}:${r.partition}`,
    { text: r.highwater ?? "–", cls: "num" }, { text: r.committed ?? "–", cls: "num" },
    { text: r.lag ?? "–", cls: "num" }, { text: r.unread ?? "–", cls: "num" }]);
  const maxScore = Math.max(1e-9, ...s.trending.map(r => r.score));
  rows("trending-table", s.trending, (r, i) => [i + 1, r.item_id, { text: fmt(r.score, 2), cls: "num" },
    { html: `<div class="bar" style="width:${100 * r.score / maxScore}%"></div>` }]);
  const perEvent = secs => s.totals.events ? 1e6 * secs / s.totals.events : null;
  const cpu = Object.entries(s.model_cpu_seconds || {});
  const maxCpu = Math.max(1e-12, ...cpu.map(([, st]) => (st.learn || 0) + (st.rank || 0)));
  rows("cpu-table", cpu, ([src, st]) => [src,
    { text: st.learn === undefined ? "–" : fmt(perEvent(st.learn), 0), cls: "num" },
    { text: st.rank === undefined ? "–" : fmt(perEvent(st.rank), 0), cls: "num" },
    { html: `<div class="bar" style="width:${100 * ((st.learn || 0) + (st.rank || 0)) / maxCpu}%"></div>` }]);
  rows("dlq-table", s.dlq.recent, d => [clock(d.failed_at), `${short(d.topic)}:${d.partition}@${d.offset}`,
    { html: `<span class="err">${esc(d.error)}</span><br><code>${esc(d.raw)}</code>` }]);
  rows("feed-table", s.recent, r => [clock(r.generated_at), r.user_id, r.strategy,
    { text: r.interactions, cls: "num" }, { text: fmt(r.latency_ms), cls: "num" },
    { html: r.items.map(it => `${esc(it.item_id)} ` +
      (it.title ? `<span class="title" title="${esc(it.title)}">${esc(it.title)}</span> ` : "") +
      it.sources.map((src, i) =>
      `<span class="src" style="background:${colorFor(src, i)}">${esc(src)}</span>`).join("")).join(" · ") ||
      '<span class="empty">empty list</span>' }]);
}

function showUpdated(status, how = "updated") {
  status.textContent = `${how} ${new Date().toLocaleTimeString("en-GB")}`;
  status.className = "meta";
}

function stream() {
  const status = document.getElementById("status");
  if (!window.EventSource) { tick(); return; }
  const source = new EventSource("/stats/stream");
  source.onmessage = (msg) => { render(JSON.parse(msg.data)); showUpdated(status, "live, pushed"); };
  source.onerror = () => {
    source.close();
    status.textContent = "stream lost: polling";
    status.className = "meta stale";
    tick();
  };
}

async function tick() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch("/stats", { cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    render(await resp.json());
    status.textContent = `updated ${new Date().toLocaleTimeString("en-GB")}`;
    status.className = "meta";
  } catch (err) {
    status.textContent = `stale: ${err.message}`;
    status.className = "meta stale";
  } finally {
    setTimeout(tick, 1000);
  }
}

stream();
