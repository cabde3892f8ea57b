// The Palleto dashboard: polls /api/snapshot once a second and draws it. Plain JS and SVG;
// every value from the server goes in with textContent or setAttribute, never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const KEEP = 600; // samples kept for the charts: 10 minutes
const POLL_MS = 1000;

const state = {
  seq: 0,
  times: [],
  series: {},
  snap: null,
  jobState: "dead",
  jobTabPicked: false,
  detail: null,
  confirmDelete: null,
  failuresKey: "", // what the failures table shows (drawFailures)
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function sv(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function fmt(n, digits) {
  if (n === undefined || n === null || Number.isNaN(n)) return "–";
  const d = digits === undefined ? (Math.abs(n) < 10 && n % 1 !== 0 ? 1 : 0) : digits;
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return n.toFixed(d);
}

function ago(t) {
  if (!t) return "–";
  const s = (Date.now() - new Date(t).getTime()) / 1000;
  return dur(s) + " ago";
}

function dur(s) {
  if (s < 0) s = 0;
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return Math.round(s / 86400) + " d";
}

function clock(t) {
  if (!t) return "–";
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

// ---- data ----

async function poll() {
  try {
    const r = await fetch("api/snapshot?since=" + state.seq, { credentials: "same-origin", cache: "no-store" });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    const snap = await r.json();
    merge(snap.series);
    state.snap = snap;
    render(snap);
    $("live").classList.remove("stale");
    $("live").textContent = "live";
    if (snap.status.manage_jobs) await pollJobs();
  } catch (e) {
    $("live").classList.add("stale");
    $("live").textContent = "disconnected";
  }
  setTimeout(poll, POLL_MS);
}

function merge(s) {
  if (!s || !s.times) return;
  if (s.seq < state.seq) { // the server restarted: start over
    state.times = []; state.series = {};
  }
  const n = s.times.length;
  state.times.push(...s.times);
  for (const [name, vals] of Object.entries(s.values || {})) {
    let arr = state.series[name];
    if (!arr) {
      arr = state.series[name] = new Array(Math.max(0, state.times.length - n)).fill(0);
    }
    arr.push(...vals);
  }
  for (const [name, arr] of Object.entries(state.series)) {
    while (arr.length < state.times.length) arr.push(0);
    if (arr.length > KEEP) arr.splice(0, arr.length - KEEP);
    state.series[name] = arr;
  }
  if (state.times.length > KEEP) state.times.splice(0, state.times.length - KEEP);
  state.seq = s.seq;
}

// ---- rendering ----

function render(snap) {
  const st = snap.status;
  $("mode").textContent = st.mode === "serve" ? "· worker pool" : "· pipeline";
  $("title").textContent = st.title || "";
  const h = $("health");
  h.textContent = st.healthy ? (st.ready ? "healthy" : "not ready") : "unhealthy";
  h.className = "badge " + (st.healthy && st.ready ? "ok" : "bad");
  h.title = st.health_reason || st.ready_reason || "";
  $("uptime").textContent = "up " + dur(st.uptime_seconds);
  document.title = "Palleto " + st.mode + (st.healthy ? "" : " (unhealthy)");
  drawTopology(snap);
  drawQueue(snap);
  drawJobCounts(snap);
  drawUnlisted(st);
  drawCharts(snap);
  drawFailures(snap);
}

function stageSeries(name, what) {
  return state.series["stage:" + name + ":" + what] || [];
}

// Columns by distance from a source, so that the drawing follows the data.
function layout(stages) {
  const byName = {};
  for (const s of stages) byName[s.name] = s;
  const depth = {};
  const d = (s, seen) => {
    if (depth[s.name] !== undefined) return depth[s.name];
    if (!s.input || seen > 50) return (depth[s.name] = 0);
    const up = byName[s.input] || byName[s.input.replace(/\[\d+\]$/, "")];
    return (depth[s.name] = up ? d(up, seen + 1) + 1 : 0);
  };
  stages.forEach((s) => d(s, 0));
  return depth;
}

function drawTopology(snap) {
  const svg = $("topo-svg");
  svg.replaceChildren();
  const W = 176, H = 128, GX = 46, GY = 22, PAD = 10;
  const stages = snap.stages || [];
  const nodes = [];
  const q = snap.queue;
  const jobs = snap.jobs;
  const offset = q || jobs ? 1 : 0;
  const depth = layout(stages);
  const rows = {};
  for (const s of stages) {
    const col = depth[s.name] + offset;
    const row = rows[col] || 0;
    rows[col] = row + 1;
    nodes.push({ s, x: PAD + col * (W + GX), y: PAD + row * (H + GY) });
  }
  const pos = {};
  for (const n of nodes) pos[n.s.name] = n;
  let maxX = 0, maxY = 0;
  for (const n of nodes) { maxX = Math.max(maxX, n.x + W); maxY = Math.max(maxY, n.y + H); }
  if (offset) { maxX = Math.max(maxX, PAD + W); maxY = Math.max(maxY, PAD + H); }
  svg.setAttribute("width", maxX + PAD);
  svg.setAttribute("height", maxY + PAD);
  svg.setAttribute("viewBox", `0 0 ${maxX + PAD} ${maxY + PAD}`);
  const defs = sv("defs");
  const marker = sv("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(sv("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.append(marker);
  svg.append(defs);

  const edge = (x1, y1, x2, y2, flowing) => {
    const mx = (x1 + x2) / 2;
    svg.append(sv("path", { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, class: "edge" + (flowing ? " flowing" : ""), "marker-end": "url(#arrow)" }));
  };
  for (const n of nodes) {
    const up = n.s.input && (pos[n.s.input] || pos[n.s.input.replace(/\[\d+\]$/, "")]);
    if (up) edge(up.x + W, up.y + H / 2, n.x - 2, n.y + H / 2, n.s.rate > 0 || up.s.rate > 0 || up.s.received_rate > 0);
    if (!n.s.input && offset) edge(PAD + W, PAD + H / 2, n.x - 2, n.y + H / 2, n.s.received_rate > 0);
  }
  if (q) drawQueueNode(svg, PAD, PAD, W, H, q);
  else if (jobs) drawJobsNode(svg, PAD, PAD, W, H, jobs);
  for (const n of nodes) drawStageNode(svg, n.x, n.y, W, H, n.s);
}

function drawStageNode(svg, x, y, W, H, s) {
  const source = s.kind === "source";
  const failing = s.fail_rate > 0;
  const g = sv("g", { class: "node " + (source ? "source" : "stage") + (failing ? " failing" : ""), transform: `translate(${x},${y})`,
    "data-stage": s.name, "data-done": s.done, "data-received": s.received, "data-failed": s.failed });
  g.append(sv("rect", { class: "box", width: W, height: H, rx: 8 }));
  g.append(sv("text", { class: "name", x: 10, y: 18 }, s.name));
  const kind = source ? `source · ${s.workers} receive${s.workers > 1 ? "s" : ""}` : `${s.kind} · ${s.workers} × ${s.max_demand}`;
  g.append(sv("text", { class: "kind", x: 10, y: 32 }, kind));
  const rate = source ? s.received_rate : s.rate;
  g.append(sv("text", { class: "rate", x: 10, y: 58 }, fmt(rate)));
  g.append(sv("text", { class: "unit", x: 14 + 12.5 * fmt(rate).length, y: 58 }, source ? "received/s" : "done/s"));
  if (!source) {
    g.append(sv("rect", { class: "busy-bg", x: 10, y: 66, width: W - 84, height: 7, rx: 3 }));
    g.append(sv("rect", { class: "busy", x: 10, y: 66, width: Math.max(0, Math.min(1, s.busy_percent / 100)) * (W - 84), height: 7, rx: 3 }));
    g.append(sv("text", { class: "meta", x: W - 68, y: 73 }, fmt(s.busy_percent, 0) + "% busy"));
    g.append(sv("text", { class: "meta", x: 10, y: 90 }, `holds ${s.in_flight} · demand ${s.demand}`));
    const t = sv("text", { class: "meta", x: 10, y: 104 });
    t.append(sv("tspan", {}, `done ${fmt(s.done)}`));
    if (s.failed > 0) t.append(sv("tspan", { class: "fail", dx: 6 }, `failed ${fmt(s.failed)}`));
    g.append(t);
  } else {
    g.append(sv("text", { class: "meta", x: 10, y: 78 }, `received ${fmt(s.received)}`));
    g.append(sv("text", { class: "meta", x: 10, y: 92 }, `demand ${s.demand}`));
  }
  spark(g, source ? stageSeries(s.name, "received") : stageSeries(s.name, "done"), 8, H - 22, W - 16, 16);
  svg.append(g);
}

function drawQueueNode(svg, x, y, W, H, q) {
  const g = sv("g", { class: "node queue", transform: `translate(${x},${y})`, "data-stage": "queue" });
  g.append(sv("rect", { class: "box", width: W, height: H, rx: 8 }));
  g.append(sv("text", { class: "name", x: 10, y: 18 }, "SQS queue"));
  const d = q.depth;
  g.append(sv("text", { class: "kind", x: 10, y: 32 }, d ? "approximate, every 5 s" : (q.depth_error ? "depth unknown" : "…")));
  g.append(sv("text", { class: "rate", x: 10, y: 58, "data-visible": d ? d.queue.visible : "" }, d ? fmt(d.queue.visible) : "–"));
  g.append(sv("text", { class: "unit", x: 14 + 12.5 * (d ? fmt(d.queue.visible).length : 1), y: 58 }, "visible"));
  if (d) {
    g.append(sv("text", { class: "meta", x: 10, y: 76 }, `in flight ${fmt(d.queue.in_flight)} · delayed ${fmt(d.queue.delayed)}`));
    if (d.dlq) {
      const dl = d.dlq.visible + d.dlq.in_flight + d.dlq.delayed;
      g.append(sv("text", { class: "meta" + (dl > 0 ? " fail" : ""), x: 10, y: 90 }, `dead-letter queue ${fmt(dl)}`));
    } else {
      g.append(sv("text", { class: "meta", x: 10, y: 90 }, "no dead-letter queue"));
    }
  }
  spark(g, state.series["queue:visible"] || [], 8, H - 22, W - 16, 16);
  svg.append(g);
}

function drawJobsNode(svg, x, y, W, H, j) {
  const g = sv("g", { class: "node queue", transform: `translate(${x},${y})`, "data-stage": "jobs" });
  g.append(sv("rect", { class: "box", width: W, height: H, rx: 8 }));
  g.append(sv("text", { class: "name", x: 10, y: 18 }, "job queue"));
  g.append(sv("text", { class: "kind", x: 10, y: 32 }, "webhook → jobs"));
  g.append(sv("text", { class: "rate", x: 10, y: 58 }, fmt(j.queued)));
  g.append(sv("text", { class: "unit", x: 14 + 12.5 * fmt(j.queued).length, y: 58 }, "queued"));
  g.append(sv("text", { class: "meta", x: 10, y: 76 }, `running ${j.running} · done ${fmt(j.done)}`));
  g.append(sv("text", { class: "meta" + (j.dead > 0 ? " fail" : ""), x: 10, y: 90 }, `dead ${j.dead} · failed runs ${fmt(j.failed)}`));
  spark(g, state.series["jobs:queued"] || [], 8, H - 22, W - 16, 16);
  svg.append(g);
}

function pathOf(vals, x, y, w, h) {
  const n = vals.length;
  const top = Math.max(1e-9, ...vals);
  let d = "";
  vals.forEach((v, i) => {
    const px = x + (n === 1 ? w : (i / (n - 1)) * w);
    const py = y + h - (v / top) * h;
    d += (i ? " L " : "M ") + px.toFixed(1) + " " + py.toFixed(1);
  });
  return { d, top };
}

function spark(g, vals, x, y, w, h) {
  const v = vals.slice(-120); // the last two minutes fit a node
  if (v.length < 2) return;
  const { d } = pathOf(v, x, y, w, h);
  g.append(sv("path", { class: "spark-area", d: `${d} L ${x + w} ${y + h} L ${x} ${y + h} Z` }));
  g.append(sv("path", { class: "spark", d }));
}

function stat(parent, label, value, bad) {
  const d = el("div", { class: "stat" + (bad ? " bad" : "") });
  d.append(el("b", {}, value), el("span", {}, label));
  parent.append(d);
}

function drawQueue(snap) {
  const q = snap.queue;
  $("queue-card").hidden = !q;
  if (!q) return;
  const body = $("queue-depth").tBodies[0];
  body.replaceChildren();
  const d = q.depth;
  const row = (name, x) => {
    const tr = el("tr");
    tr.append(el("td", {}, name), el("td", {}, x ? fmt(x.visible) : "–"), el("td", {}, x ? fmt(x.in_flight) : "–"), el("td", {}, x ? fmt(x.delayed) : "–"));
    body.append(tr);
  };
  row("queue", d && d.queue);
  if (d && d.dlq) row("dead-letter queue", d.dlq);
  const s = $("queue-stats");
  s.replaceChildren();
  const st = q.stats;
  stat(s, "received /s", fmt(q.received_rate));
  stat(s, "deleted /s", fmt(q.deleted_rate));
  stat(s, "receives /s", fmt(q.receive_rate));
  stat(s, "empty receives /s", fmt(q.empty_receive_rate));
  stat(s, "requests per message", st.received ? fmt(q.requests_per_message, 2) : "–");
  stat(s, "in flight here", fmt(st.in_flight));
  stat(s, "received", fmt(st.received));
  stat(s, "deleted", fmt(st.deleted));
  stat(s, "failed", fmt(st.failed), st.failed > 0);
  stat(s, "dead-lettered", fmt(st.dead_lettered), st.dead_lettered > 0);
  stat(s, "request errors", fmt(st.request_errors), st.request_errors > 0);
  $("queue-url").textContent = st.url + (q.depth_error ? " · depth: " + q.depth_error : "");
}

function drawJobCounts(snap) {
  const j = snap.jobs;
  $("jobs-counts-card").hidden = !j;
  if (!j) return;
  const s = $("jobs-counts");
  s.replaceChildren();
  stat(s, "queued", fmt(j.queued));
  stat(s, "running", fmt(j.running));
  stat(s, "done", fmt(j.done));
  stat(s, "failed runs", fmt(j.failed), j.failed > 0);
  stat(s, "dead", fmt(j.dead), j.dead > 0);
}

function chart(parent, title, lines, unit) {
  const box = el("div", { class: "chart" });
  const head = el("div", { class: "head" });
  const cur = lines.map((l) => fmt(l.vals.length ? l.vals[l.vals.length - 1] : 0)).join(" / ");
  head.append(el("span", {}, title), el("b", {}, cur + (unit ? " " + unit : "")));
  box.append(head);
  const W = 300, H = 60;
  const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  const top = Math.max(1e-9, ...lines.flatMap((l) => l.vals));
  for (const l of lines) {
    if (l.vals.length < 2) continue;
    const n = l.vals.length;
    let d = "";
    l.vals.forEach((v, i) => {
      d += (i ? " L " : "M ") + ((i / (KEEP - 1)) * W + (KEEP - n) / (KEEP - 1) * W).toFixed(1) + " " + (H - 2 - (v / top) * (H - 4)).toFixed(1);
    });
    const x0 = ((KEEP - n) / (KEEP - 1)) * W;
    svg.append(sv("path", { class: "area", d: `${d} L ${W} ${H} L ${x0} ${H} Z`, fill: l.color }));
    svg.append(sv("path", { class: "line", d, stroke: l.color }));
  }
  box.append(svg);
  const foot = el("div", { class: "head" });
  foot.append(el("span", {}, lines.map((l) => l.name).join(" / ")), el("span", {}, "max " + fmt(top === 1e-9 ? 0 : top)));
  box.append(foot);
  parent.append(box);
}

const COLORS = ["#1f6feb", "#cf222e", "#8250df", "#1a7f37", "#bf8700"];

function drawCharts(snap) {
  const c = $("charts");
  c.replaceChildren();
  const stages = snap.stages || [];
  const sinks = stages.filter((s) => s.kind === "sink");
  const last = sinks.length ? sinks[sinks.length - 1] : stages[stages.length - 1];
  if (last) chart(c, `${last.name}: done /s`, [{ name: last.name, vals: stageSeries(last.name, "done"), color: COLORS[0] }]);
  const failed = sumSeries(stages.map((s) => stageSeries(s.name, "failed")));
  chart(c, "failed /s, all stages", [{ name: "failed", vals: failed, color: COLORS[1] }]);
  const busy = stages.filter((s) => s.kind !== "source").slice(0, 4);
  if (busy.length) chart(c, "busy %", busy.map((s, i) => ({ name: s.name, vals: stageSeries(s.name, "busy"), color: COLORS[(i + 2) % COLORS.length] })), "%");
  if (snap.queue) {
    chart(c, "queue: visible / in flight", [
      { name: "visible", vals: state.series["queue:visible"] || [], color: COLORS[0] },
      { name: "in flight", vals: state.series["queue:not_visible"] || [], color: COLORS[2] }]);
    chart(c, "receives /s: all / empty", [
      { name: "receives", vals: state.series["queue:receives"] || [], color: COLORS[3] },
      { name: "empty", vals: state.series["queue:empty"] || [], color: COLORS[4] }]);
    if (state.series["queue:dlq"]) chart(c, "dead-letter queue", [{ name: "messages", vals: state.series["queue:dlq"], color: COLORS[1] }]);
  }
  if (snap.jobs) {
    chart(c, "jobs: queued / running / dead", [
      { name: "queued", vals: state.series["jobs:queued"] || [], color: COLORS[0] },
      { name: "running", vals: state.series["jobs:running"] || [], color: COLORS[2] },
      { name: "dead", vals: state.series["jobs:dead"] || [], color: COLORS[1] }]);
  }
}

function sumSeries(list) {
  const n = Math.max(0, ...list.map((a) => a.length));
  const out = new Array(n).fill(0);
  for (const a of list) a.forEach((v, i) => { out[i + n - a.length] += v; });
  return out;
}

function drawFailures(snap) {
  const f = snap.failures;
  // Drawn again only when it changed: a table replaced every second loses the text a
  // reader selects in it (an error to copy).
  const key = JSON.stringify([snap.status.mode, f]);
  if (key === state.failuresKey) return;
  state.failuresKey = key;
  const body = $("failures-table").tBodies[0];
  body.replaceChildren();
  $("failures-total").textContent = f.total ? `${f.total} in all, the latest ${f.failures.length} below` : "";
  $("failures-empty").hidden = f.failures.length > 0;
  $("failures-what").textContent = snap.status.mode === "serve" ? "job" : "message";
  for (const x of f.failures) {
    const tr = el("tr");
    tr.append(el("td", { class: "num", title: x.time }, clock(x.time)),
      el("td", { class: "id" }, x.job_id || x.message_id || "–"),
      el("td", { class: "id" }, x.object || ""),
      el("td", {}, x.stage || ""),
      el("td", { class: "num" }, x.attempt ? String(x.attempt) : "–"),
      el("td", { class: "err" }, x.error),
      el("td", {}, x.next || ""));
    body.append(tr);
  }
}

// ---- jobs ----

// drawUnlisted says, where the list would be, why a pool's jobs are not listed (on SQS).
function drawUnlisted(st) {
  const why = st.jobs_unlisted || "";
  $("jobs-unlisted").hidden = !why;
  $("jobs-unlisted").textContent = why;
  if (!why) return;
  $("jobs-card").hidden = false;
  for (const id of ["job-tabs", "jobs-table", "jobs-empty", "job-detail"]) $(id).hidden = true;
}

const STATES = ["queued", "running", "retrying", "dead"];

async function pollJobs() {
  $("jobs-card").hidden = false;
  const r = await fetch("api/jobs", { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) return;
  const list = await r.json();
  const by = { queued: [], running: [], retrying: [], dead: [] };
  for (const j of list.jobs || []) (by[j.state] || (by[j.state] = [])).push(j);
  if (!state.jobTabPicked) {
    state.jobState = by.dead.length ? "dead" : by.retrying.length ? "retrying" : by.running.length ? "running" : by.queued.length ? "queued" : "dead";
  }
  drawTabs(by);
  drawJobs(by[state.jobState] || []);
  if (state.detail) await showJob(state.detail);
}

function drawTabs(by) {
  const nav = $("job-tabs");
  const sig = state.jobState + STATES.map((s) => by[s].length).join(",");
  if (sig === state.tabsSig) return;
  state.tabsSig = sig;
  nav.replaceChildren();
  for (const s of STATES) {
    const b = el("button", { type: "button", "data-state": s, class: s === state.jobState ? "active" : "" }, `${s} (${by[s].length})`);
    b.addEventListener("click", () => { state.jobState = s; state.jobTabPicked = true; state.confirmDelete = null; state.jobsSig = null; state.tabsSig = null; drawTabs(by); drawJobs(by[s]); });
    nav.append(b);
  }
}

// drawJobs rebuilds the rows only when the jobs changed, so that a button stays where it
// is between two polls; the times in the rows are refreshed in place.
function drawJobs(list) {
  const sig = JSON.stringify([state.jobState, state.confirmDelete, list.map((j) => [j.id, j.state, j.attempts, j.last_error, j.again, j.retry_at, j.died_at, j.started])]);
  const body = $("jobs-table").tBodies[0];
  if (sig === state.jobsSig) {
    for (const tr of body.rows) tr.refresh && tr.refresh();
    return;
  }
  state.jobsSig = sig;
  body.replaceChildren();
  $("jobs-empty").hidden = list.length > 0;
  for (const j of list) {
    const tr = el("tr", { "data-id": j.id, "data-state": j.state });
    const idCell = el("td", { class: "id" });
    const a = el("button", { type: "button", class: "link" }, j.id);
    a.addEventListener("click", () => showJob(j.id));
    idCell.append(a);
    const st = el("td");
    st.append(el("span", { class: "state " + j.state }, j.state + (j.again ? " (+1)" : "")));
    let next = "";
    if (j.state === "retrying") next = "retry at " + clock(j.retry_at);
    if (j.state === "dead") next = "dead since " + clock(j.died_at);
    if (j.state === "queued") next = "runs when a worker is free";
    const queued = el("td"), waited = el("td");
    tr.refresh = () => {
      queued.textContent = ago(j.queued);
      if (j.state === "running" && j.started) waited.textContent = "running " + dur((Date.now() - new Date(j.started)) / 1000);
      else if (j.ready) waited.textContent = "waiting " + dur((Date.now() - new Date(j.ready)) / 1000);
      else waited.textContent = "–";
    };
    tr.refresh();
    tr.append(idCell, st, el("td", { class: "num" }, String(j.attempts)), el("td", { class: "err" }, j.last_error || ""),
      queued, waited, el("td", {}, next));
    const acts = el("td");
    if (j.state === "retrying" || j.state === "dead") {
      const run = el("button", { type: "button", class: "act run-now" }, "Run now");
      run.addEventListener("click", () => mutate(j.id, "run", run));
      acts.append(run);
    }
    if (j.state !== "running") {
      const confirming = state.confirmDelete === j.id;
      const del = el("button", { type: "button", class: "act delete" + (confirming ? " confirm" : "") }, confirming ? "Confirm delete" : "Delete");
      del.addEventListener("click", () => {
        if (state.confirmDelete !== j.id) {
          state.confirmDelete = j.id;
          state.jobsSig = null;
          del.textContent = "Confirm delete";
          del.classList.add("confirm");
          return;
        }
        state.confirmDelete = null;
        mutate(j.id, "delete", del);
      });
      acts.append(del);
    }
    tr.append(acts);
    body.append(tr);
  }
}

async function mutate(id, action, button) {
  button.disabled = true;
  try {
    const r = await fetch("api/jobs/" + encodeURIComponent(id) + "/" + action, {
      method: "POST", credentials: "same-origin",
      headers: { "X-Palleto-Request": "dashboard", "Content-Type": "application/json" }, body: "{}",
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      alertRow(button, body.error || r.statusText);
      return;
    }
    const flash = el("span", { class: "flash" }, action === "run" ? "queued to run" : "deleted");
    button.parentElement.append(flash);
    if (action === "delete" && state.detail === id) closeDetail();
  } finally {
    button.disabled = false;
  }
}

function alertRow(button, msg) {
  const s = el("span", { class: "flash" }, msg);
  s.style.color = "var(--red)";
  button.parentElement.append(s);
}

async function showJob(id) {
  const r = await fetch("api/jobs/" + encodeURIComponent(id), { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) { closeDetail(); return; }
  const j = await r.json();
  state.detail = id;
  $("job-detail").hidden = false;
  $("job-detail-id").textContent = j.id;
  const s = $("job-detail-stats");
  s.replaceChildren();
  stat(s, "state", j.state, j.state === "dead");
  stat(s, "failed runs", String(j.attempts), j.attempts > 0);
  stat(s, "queued", ago(j.queued));
  if (j.retry_at) stat(s, "retry at", clock(j.retry_at));
  if (j.died_at) stat(s, "dead since", clock(j.died_at));
  if (j.started) stat(s, "running for", dur((Date.now() - new Date(j.started)) / 1000));
  const body = $("job-history").tBodies[0];
  body.replaceChildren();
  for (const a of (j.history || []).slice().reverse()) {
    const tr = el("tr");
    tr.append(el("td", { class: "num" }, String(a.attempt)), el("td", {}, clock(a.started)),
      el("td", {}, dur((new Date(a.ended) - new Date(a.started)) / 1000)), el("td", { class: "err" }, a.error));
    body.append(tr);
  }
}

function closeDetail() {
  state.detail = null;
  $("job-detail").hidden = true;
}

$("job-detail-close").addEventListener("click", closeDetail);
poll();
