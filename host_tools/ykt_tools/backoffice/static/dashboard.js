// ykt-gate operator dashboard: no framework, no CDN. Talks to /admin/api with
// the session cookie set by POST /admin/login (HttpOnly, SameSite=Strict).
// Every visible string comes from the message catalogs (i18n.js); elements
// carry language-neutral data-* values (day, device, reason, alert kinds) for
// scripts and tests. Opens on the latest service day that has taps.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const I = window.ykt.i18n, C = window.ykt.charts;
  const t = (k, p) => I.t(k, p);
  const TZ_S = 8 * 3600;              // service days and hours are UTC+8
  const state = {me: null, days: [], day: null, summary: null, report: null, health: null, fleet: null,
                 lookup: null, collections: [], arrears: []};

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({credentials: "same-origin",
      headers: {"Content-Type": "application/json"}}, opts || {}));
    if (r.status === 401) { showLogin(); throw Object.assign(new Error("login"), {status: 401}); }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const d = body.detail;
      throw Object.assign(new Error(typeof d === "string" ? d : t("error.http", {status: r.status})),
                          {status: r.status, code: r.headers.get("X-YKT-Error"),
                           retryAfter: Number(r.headers.get("Retry-After") || 0)});
    }
    return body;
  }

  function showLogin() { $("login-box").hidden = false; $("app").hidden = true; $("logout").hidden = true; }

  const fmtDay = (d) => String(d).replace(/^(\d{4})(\d\d)(\d\d)$/, "$1-$2-$3");
  function fmtTime(unix) {
    if (!unix) return "–";
    const d = new Date((unix + TZ_S) * 1000).toISOString();
    return d.slice(0, 10) + " " + d.slice(11, 19);
  }
  function ago(ts, now) {
    if (!ts) return t("ago.never");
    const s = now - ts;
    if (s < 90) return t("ago.s", {n: s});
    if (s < 5400) return t("ago.min", {n: Math.round(s / 60)});
    if (s < 172800) return t("ago.h", {n: Math.round(s / 3600)});
    return t("ago.d", {n: Math.round(s / 86400)});
  }

  function cell(tr, text, cls, data) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (cls) td.className = cls;
    if (data) for (const k in data) td.dataset[k] = data[k];
    tr.appendChild(td);
    return td;
  }
  function rows(tbody, list, fill) {
    tbody.textContent = "";
    for (const x of list) {
      const tr = document.createElement("tr");
      fill(tr, x);
      tbody.appendChild(tr);
    }
  }
  const reasonName = (r) => t("reason." + r);

  // --- the day -------------------------------------------------------------
  function renderDays() {
    const sel = $("day-picker"), to = $("report-to");
    sel.textContent = "";
    to.textContent = "";
    for (const d of state.days) {
      const o = document.createElement("option");
      o.value = d.day;
      o.textContent = fmtDay(d.day);
      sel.appendChild(o);
      to.appendChild(o.cloneNode(true));
    }
    $("day-none").hidden = state.days.length > 0;
    if (state.day) { sel.value = state.day; to.value = state.day; }
  }

  function renderSummary() {
    const s = state.summary;
    if (!s) return;
    const set = (id, v, raw) => { $(id).textContent = v; $(id).dataset.value = raw === undefined ? v : raw; };
    set("sum-taps", s.taps);
    set("sum-accepted", s.outcomes.accept || 0);
    set("sum-refused", (s.outcomes.deny || 0) + (s.outcomes.error || 0));
    set("sum-riders", s.riders);
    set("sum-shifts", s.shifts);
    $("sum-revenue-label").dataset.i18n = s.settled ? "day.revenue" : "day.revenue.provisional";
    $("sum-revenue-label").textContent = t($("sum-revenue-label").dataset.i18n);
    set("sum-revenue", I.yuan(s.settled ? s.fares : s.provisional), s.settled ? s.fares : s.provisional);
    set("sum-concession", s.settled ? I.yuan(s.concession_value) : "–", s.settled ? s.concession_value : "");
    set("sum-settled", s.settled ? t("yes") + (s.reconciled ? " · " + t("day.reconciled") : "") : t("day.unsettled"),
        s.settled ? "1" : "0");
    const hours = Array.from({length: 24}, (_, h) => String(h).padStart(2, "0"));
    C.stacked($("chart-device"), $("legend-device"), hours,
              s.per_device.map((x) => ({key: x.key, label: x.key, values: x.hours})), t("chart.taps"));
    C.stacked($("chart-route"), $("legend-route"), hours,
              s.per_route.map((x) => ({key: x.key, label: t("rcol.entry") + " " + x.key, values: x.hours})),
              t("chart.taps"));
    rows($("outcomes").tBodies[0], Object.entries(s.outcomes), (tr, [o, n]) => {
      tr.dataset.outcome = o;
      cell(tr, t("outcome." + o)); cell(tr, n, "num");
    });
    rows($("refusals").tBodies[0], s.refusals.length ? s.refusals : [null], (tr, r) => {
      if (!r) { const td = cell(tr, t("day.refusals.none")); td.colSpan = 2; return; }
      tr.dataset.reason = r.reason;
      cell(tr, reasonName(r.reason)); cell(tr, r.taps, "num");
    });
  }

  async function loadDay(day) {
    state.day = Number(day);
    renderDays();
    state.summary = await api("/admin/api/day/" + state.day);
    renderSummary();
    await loadReport();
  }

  // --- reports -----------------------------------------------------------------
  const MONEY = new Set(["provisional", "fares", "full_fares", "concession_value"]);
  function keyText(col, v) {
    if (col === "kind") return v ? t("kind." + v) : "–";
    if (col === "card_type") return t("ctype." + v);
    if (col === "medium") return t("medium." + v);
    if (col === "class") return t("conc." + v);
    if (col === "shift" && !v) return t("shift.none");
    return v === "" ? "–" : v;
  }

  function reportQuery() {
    const by = $("report-by").value, to = Math.max(state.day, Number($("report-to").value || state.day));
    return "?day=" + state.day + "&to=" + to + "&by=" + encodeURIComponent(by);
  }

  function renderReport() {
    const r = state.report, tbl = $("report-table");
    tbl.tHead.textContent = ""; tbl.tBodies[0].textContent = ""; tbl.tFoot.textContent = "";
    if (!r) return;
    const hr = document.createElement("tr");
    for (const c of r.columns) {
      const th = document.createElement("th");
      th.textContent = t("rcol." + c);
      th.dataset.col = c;
      hr.appendChild(th);
    }
    tbl.tHead.appendChild(hr);
    const nk = r.columns.length - Object.keys(r.totals).length;
    rows(tbl.tBodies[0], r.rows, (tr, row) => {
      tr.dataset.key = row.slice(0, nk).join("|");
      row.forEach((v, i) => {
        const c = r.columns[i];
        if (i < nk) cell(tr, keyText(c, v), null, {col: c});
        else cell(tr, MONEY.has(c) ? I.yuan(v) : v, "num", {col: c, value: v});
      });
    });
    const ft = document.createElement("tr");
    ft.dataset.key = "total";
    r.columns.forEach((c, i) => {
      if (i === 0) cell(ft, t("report.total"));
      else if (i < nk) cell(ft, "");
      else cell(ft, MONEY.has(c) ? I.yuan(r.totals[c]) : r.totals[c], "num", {col: c, value: r.totals[c]});
    });
    tbl.tFoot.appendChild(ft);
    const note = $("report-note");
    note.textContent = t(r.reconciled ? "report.reconciled" : "report.not_reconciled",
                         {fares: I.yuan(r.totals.fares), settlement: I.yuan(r.settlement)});
    note.dataset.reconciled = r.reconciled ? "1" : "0";
    const labels = r.rows.map((row) => row.slice(0, nk).map((v, i) => keyText(r.columns[i], v)).join(" "));
    const col = (c) => r.rows.map((row) => row[r.columns.indexOf(c)]);
    C.bars($("chart-report"), $("legend-report"), labels,
           [{key: "fares", label: t("rcol.fares"), values: col("fares")},
            {key: "concession_value", label: t("rcol.concession_value"), values: col("concession_value")}], I.yuan);
  }

  async function loadReport() {
    const q = reportQuery();
    for (const f of ["csv", "xlsx", "parquet"]) $("dl-" + f).href = "/admin/api/report." + f + q;
    try {
      state.report = await api("/admin/api/report" + q);
      renderReport();
    } catch (e) {
      state.report = null;
      renderReport();
      $("report-note").textContent = e.status === 409 ? t("report.unsettled") : e.message;
      $("report-note").dataset.reconciled = "";
    }
  }

  // --- device health ---------------------------------------------------------------
  function alertText(a, now) {
    if (a.kind === "offline") return a.since ? t("alert.offline", {since: ago(a.since, now)}) : t("alert.offline.never");
    return t("alert." + a.kind, a);
  }

  function renderHealth() {
    const h = state.health, f = state.fleet;
    if (!h) return;
    rows($("devices").tBodies[0], h.devices, (tr, d) => {
      tr.dataset.device = d.id;
      tr.dataset.alerts = d.alerts.map((a) => a.kind).join(",");
      cell(tr, d.id, "num"); cell(tr, d.name); cell(tr, d.kind); cell(tr, d.entry, "num");
      cell(tr, ago(d.last_seen, h.now), d.alerts.some((a) => a.kind === "offline") ? "stale" : "ok");
      cell(tr, d.fw);
      cell(tr, d.dl_ver === null ? null : d.dl_ver + (d.dl_behind ? " (" + t("dl.behind", {n: d.dl_behind}) + ")" : ""),
           d.dl_behind ? "stale" : "ok", {behind: d.dl_behind || 0});
      cell(tr, d.fare_ver, "num"); cell(tr, d.cat_ver, "num");
      cell(tr, d.backlog, "num"); cell(tr, d.reader_faults, d.reader_faults ? "num stale" : "num");
      cell(tr, d.seq_acked + (d.seq_max > d.seq_acked ? " / " + d.seq_max : ""), "num");
      const td = cell(tr, d.alerts.length ? "" : t("health.ok"), d.alerts.length ? "alerts" : "ok");
      for (const a of d.alerts) {
        const b = document.createElement("span");
        b.className = "alert";
        b.dataset.kind = a.kind;
        b.textContent = alertText(a, h.now);
        td.appendChild(b);
      }
    });
    $("health-alerts").textContent = h.alerts ? t("health.alerts", {n: h.alerts}) : t("health.ok");
    $("health-alerts").dataset.alerts = h.alerts;
    const dl = f && f.denylist;
    $("dl-info").textContent = dl ? t("dl.info", {version: dl.version, entries: dl.entries, ago: ago(dl.created, f.now),
                                                  behind: f.devices.filter((d) => d.dl_behind).length})
                                  : t("dl.none");
    $("dl-info").dataset.version = dl ? dl.version : 0;
  }

  async function loadHealth() {
    [state.health, state.fleet] = await Promise.all([api("/admin/api/health"), api("/admin/api/fleet")]);
    renderHealth();
  }

  // --- card lookup -----------------------------------------------------------------
  function renderLookup() {
    const r = state.lookup;
    $("lookup-result").hidden = !r;
    if (!r) return;
    $("lookup-token").textContent = r.token;
    $("lookup-status").textContent = t("status." + r.status);
    $("lookup-status").dataset.status = r.status;
    $("lookup-arrears").textContent = r.arrears ? I.yuan(r.arrears.amount) : t("lookup.arrears.none");
    $("lookup-arrears").dataset.amount = r.arrears ? r.arrears.amount : 0;
    rows($("lookup-taps").tBodies[0], r.taps, (tr, x) => {
      tr.dataset.reason = x.reason;
      cell(tr, fmtTime(x.t)); cell(tr, x.device); cell(tr, t("outcome." + x.outcome));
      cell(tr, reasonName(x.reason)); cell(tr, I.yuan(x.fare), "num");
      cell(tr, x.charged === null ? "–" : I.yuan(x.charged), "num");
    });
  }

  // --- settlement and collection ----------------------------------------------------
  function renderMoney() {
    rows($("settled").tBodies[0], state.days, (tr, d) => {
      tr.dataset.day = d.day;
      cell(tr, fmtDay(d.day)); cell(tr, d.taps, "num"); cell(tr, d.settled ? t("yes") : t("no"));
      cell(tr, d.settled ? I.yuan(d.amount) : "–", "num");
    });
    $("collections-none").hidden = state.collections.length > 0;
    rows($("collections").tBodies[0], state.collections, (tr, c) => {
      tr.dataset.collection = c.id;
      const st = (k) => (c.by_status[k] ? c.by_status[k].items : 0);
      cell(tr, fmtDay(c.day)); cell(tr, c.acquirer); cell(tr, c.items, "num"); cell(tr, I.yuan(c.amount), "num");
      cell(tr, st("paid"), "num", {status: "paid"}); cell(tr, st("returned"), st("returned") ? "num stale" : "num", {status: "returned"});
      cell(tr, st("repaid"), "num", {status: "repaid"}); cell(tr, st("sent"), "num", {status: "sent"});
      const td = cell(tr, "");
      const a = document.createElement("a");
      a.href = "/admin/api/collections/" + c.id + ".csv";
      a.textContent = "CSV";
      td.appendChild(a);
    });
    $("arrears-none").hidden = state.arrears.length > 0;
    const op = state.me && state.me.role === "operator";
    rows($("arrears").tBodies[0], state.arrears, (tr, a) => {
      tr.dataset.token = a.token;
      cell(tr, a.token); cell(tr, I.yuan(a.amount), "num", {value: a.amount}); cell(tr, a.items, "num");
      cell(tr, fmtTime(a.since)); cell(tr, a.status ? t("status." + a.status) : t("status.normal"));
      if (!op) return;
      const td = cell(tr, "", "op-only");
      const ref = document.createElement("input");
      ref.className = "pay-ref";
      ref.maxLength = 64;
      ref.setAttribute("aria-label", t("money.pay.ref"));
      ref.placeholder = t("money.pay.ref");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "pay";
      b.textContent = t("money.pay");
      b.addEventListener("click", () => pay(a, ref.value.trim()));
      td.appendChild(ref); td.appendChild(b);
    });
  }

  async function loadMoney() {
    [state.collections, state.arrears] = await Promise.all([api("/admin/api/collections"), api("/admin/api/arrears")]);
    renderMoney();
  }

  async function pay(a, ref) {
    try {
      const r = await api("/admin/api/arrears/pay", {method: "POST",
        body: JSON.stringify({token: a.token, amount: a.amount, ref: ref || ("desk-" + Date.now())})});
      $("pay-result").textContent = r.dl_ver ? t("money.pay.done", {amount: I.yuan(r.amount), ver: r.dl_ver})
                                             : t("money.pay.done_no_dl", {amount: I.yuan(r.amount)});
      $("pay-result").dataset.dlVer = r.dl_ver || "";
      await Promise.all([loadMoney(), loadHealth()]);
    } catch (e) { $("pay-result").textContent = t("report_card.refused", {msg: e.message}); }
  }

  // --- start ---------------------------------------------------------------------
  function renderAll() {
    if (state.me) $("who").textContent = state.me.name + " (" + t("app.role." + state.me.role) + ")";
    renderDays(); renderSummary(); renderReport(); renderHealth(); renderLookup(); renderMoney();
  }

  async function start() {
    await I.ready;
    try {
      state.me = await api("/admin/api/me");
    } catch (e) { return; }   /* showLogin() already ran on 401 */
    $("login-box").hidden = true; $("app").hidden = false; $("logout").hidden = false;
    for (const e of document.querySelectorAll("#report, .op-only")) e.hidden = state.me.role !== "operator";
    renderAll();
    state.days = await api("/admin/api/days");
    renderDays();
    await Promise.all([state.days.length ? loadDay(state.days[0].day) : Promise.resolve(), loadHealth(), loadMoney()]);
    document.body.dataset.ready = "1";
  }

  $("lang-switch").addEventListener("click", async () => { await I.load(I.other()); renderAll(); });
  document.addEventListener("ykt-lang", () => { if (state.me) renderAll(); });

  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-err").textContent = "";
    try {
      await api("/admin/login", {method: "POST", body: JSON.stringify({name: $("login-name").value,
        password: $("login-password").value})});
      $("login-password").value = "";
      await start();
    } catch (e) {
      $("login-err").textContent = e.status === 401 ? t("login.bad")
        : e.status === 429 ? t("login.locked", {min: Math.max(1, Math.ceil(e.retryAfter / 60))}) : e.message;
    }
  });

  $("logout").addEventListener("click", async () => {
    await api("/admin/logout", {method: "POST"}).catch(() => 0);
    state.me = null;
    delete document.body.dataset.ready;
    showLogin();
  });

  $("day-picker").addEventListener("change", () => loadDay($("day-picker").value));
  const step = (k) => {
    const i = state.days.findIndex((d) => d.day === state.day) + k;   // days are newest first
    if (i >= 0 && i < state.days.length) loadDay(state.days[i].day);
  };
  $("day-prev").addEventListener("click", () => step(1));
  $("day-next").addEventListener("click", () => step(-1));
  $("report-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadReport(); });
  $("report-by").addEventListener("change", () => loadReport());

  $("lookup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("lookup-msg").textContent = "";
    const by = $("lookup-by").value, v = $("lookup-value").value.trim();
    try {
      state.lookup = await api("/admin/api/lookup?" + by + "=" + encodeURIComponent(v));
      $("lookup-msg").dataset.status = "200";
    } catch (e) {
      state.lookup = null;
      $("lookup-msg").textContent = e.status === 404 ? t("lookup.registry") : t("lookup.failed", {msg: e.message});
      $("lookup-msg").dataset.status = e.code || String(e.status || "");
    }
    $("lookup-value").value = "";     // the identity is not kept in the page
    renderLookup();
  });

  $("card-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {status: $("card-status").value, note: $("card-note").value};
    body[$("card-by").value] = $("card-value").value.trim();
    const rb = $("card-replaced-by").value.trim();
    if (rb) body.replaced_by = rb;
    try {
      const r = await api("/admin/api/cards/status", {method: "POST", body: JSON.stringify(body)});
      $("card-result").textContent = t("report_card.done", {token: r.token, status: t("status." + r.status), ver: r.dl_ver});
      $("card-result").dataset.dlVer = r.dl_ver;
      $("card-result").dataset.cards = (r.cards || []).join(" ");
      $("card-value").value = "";   // the identity is not kept in the page
      $("card-replaced-by").value = "";
      await loadHealth();
    } catch (e) {
      $("card-result").textContent = t("report_card.refused", {msg: e.message});
      $("card-result").dataset.dlVer = "";
      $("card-result").dataset.status = String(e.status || "");
    }
  });

  $("sync-all").addEventListener("click", async () => {
    try {
      const r = await api("/admin/api/devices/all/sync-now", {method: "POST"});
      $("sync-result").textContent = t("dl.sync_result", {n: r.devices});
      $("sync-result").dataset.devices = r.devices;
    } catch (e) { $("sync-result").textContent = t("report_card.refused", {msg: e.message}); }
  });

  setInterval(() => { if (!$("app").hidden) loadHealth().catch(() => 0); }, 30000);
  start();
  window.ykt.dashboard = {state, loadDay};
})();
