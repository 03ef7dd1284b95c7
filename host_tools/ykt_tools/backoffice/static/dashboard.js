// ykt-gate fleet dashboard: no framework, no CDN. Talks to /admin/api with
// the session cookie set by POST /admin/login (HttpOnly, SameSite=Strict).
"use strict";
const $ = (id) => document.getElementById(id);
const STALE_S = 15 * 60;        // a device silent longer than this is flagged

async function api(path, opts) {
  const r = await fetch(path, Object.assign({credentials: "same-origin",
    headers: {"Content-Type": "application/json"}}, opts || {}));
  if (r.status === 401) { showLogin(); throw new Error("login required"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || ("HTTP " + r.status));
  return body;
}

function showLogin() { $("login-box").hidden = false; $("app").hidden = true; $("logout").hidden = true; }

function ago(t, now) {
  if (!t) return "never";
  const s = now - t;
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function renderFleet(f) {
  const tb = $("devices").querySelector("tbody");
  tb.textContent = "";
  for (const d of f.devices) {
    const tr = document.createElement("tr");
    tr.dataset.device = d.id;
    cell(tr, d.id, "num"); cell(tr, d.name); cell(tr, d.kind); cell(tr, d.entry, "num");
    cell(tr, ago(d.last_seen, f.now), d.last_seen && f.now - d.last_seen < STALE_S ? "ok" : "stale");
    cell(tr, d.fw);
    cell(tr, d.dl_ver === null ? null : d.dl_ver + (d.dl_behind ? " (" + d.dl_behind + " behind)" : ""),
         d.dl_behind ? "stale" : "ok");
    cell(tr, d.fare_ver, "num"); cell(tr, d.cat_ver, "num");
    cell(tr, d.backlog, "num"); cell(tr, d.reader_faults, d.reader_faults ? "num stale" : "num");
    cell(tr, d.seq_acked + (d.seq_max > d.seq_acked ? " / " + d.seq_max : ""), "num");
    tb.appendChild(tr);
  }
  const dl = f.denylist;
  $("dl-info").textContent = dl ? ("version " + dl.version + ", " + dl.entries + " entries, published " +
    ago(dl.created, f.now) + "; devices behind: " + f.devices.filter(d => d.dl_behind).length)
    : "no deny list published yet";
}

function renderChart(rows) {
  const svg = $("chart"), W = 720, H = 180, pad = 28;
  const NS = "http://www.w3.org/2000/svg";
  svg.textContent = "";
  const max = Math.max(1, ...rows.map(r => r.taps));
  const bw = (W - pad - 4) / rows.length;
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e); return e;
  };
  mk("line", {x1: pad, y1: H - 16, x2: W, y2: H - 16, stroke: "#999"});
  mk("text", {x: 0, y: 10}, String(max));
  rows.forEach((r, i) => {
    const h = Math.round((H - 30) * r.taps / max);
    const rect = mk("rect", {class: "bar", x: pad + i * bw + 1, y: H - 16 - h, width: Math.max(1, bw - 2), height: h});
    const title = document.createElementNS(NS, "title");
    title.textContent = new Date(r.hour * 1000).toISOString().slice(11, 16) + " UTC: " + r.taps + " taps";
    rect.appendChild(title);
    if (i % 3 === 0) mk("text", {x: pad + i * bw, y: H - 3}, new Date(r.hour * 1000).toISOString().slice(11, 13) + "h");
  });
}

async function refresh() {
  const [f, tph] = await Promise.all([api("/admin/api/fleet"), api("/admin/api/taps_per_hour?hours=24")]);
  renderFleet(f); renderChart(tph);
}

async function start() {
  try {
    const me = await api("/admin/api/me");
    $("who").textContent = me.name + " (" + me.role + ")";
    $("login-box").hidden = true; $("app").hidden = false; $("logout").hidden = false;
    for (const e of document.querySelectorAll("#report, .op-only")) e.hidden = me.role !== "operator";
    await refresh();
  } catch (e) { /* showLogin() already ran on 401 */ }
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-err").textContent = "";
  try {
    await api("/admin/login", {method: "POST", body: JSON.stringify({name: $("login-name").value,
      password: $("login-password").value})});
    $("login-password").value = "";
    await start();
  } catch (e) { $("login-err").textContent = e.message; }
});

$("logout").addEventListener("click", async () => { await api("/admin/logout", {method: "POST"}).catch(() => 0); showLogin(); });

$("card-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = {status: $("card-status").value, note: $("card-note").value};
  body[$("card-by").value] = $("card-value").value.trim();
  try {
    const r = await api("/admin/api/cards/status", {method: "POST", body: JSON.stringify(body)});
    $("card-result").textContent = "card " + r.token + " " + r.status + ": deny list version " + r.dl_ver;
    $("card-value").value = "";   // the identity is not kept in the page
    await refresh();
  } catch (e) { $("card-result").textContent = "refused: " + e.message; }
});

$("sync-all").addEventListener("click", async () => {
  try {
    const r = await api("/admin/api/devices/all/sync-now", {method: "POST"});
    $("sync-result").textContent = r.devices + " devices will sync at their next heartbeat";
  } catch (e) { $("sync-result").textContent = "refused: " + e.message; }
});

setInterval(() => { if (!$("app").hidden) refresh().catch(() => 0); }, 30000);
start();
