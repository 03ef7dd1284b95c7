// OTA roll-outs on the dashboard (ykt_tools/backoffice/rollout.py): one row
// per roll-out with its stage and how far the fleet got (offered /
// downloading / trial / live / rolled back), refreshed every few seconds.
// Loaded after dashboard.js; adds its own section; strings from the catalogs
// (i18n.js), the stage code in data-stage.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const STATES = ["offered", "downloading", "downloaded", "trial", "live", "rolled_back"];
  const COLS = ["id", "version", "target", "stage", "progress", "live", "offered", "downloading", "trial", "rolled_back"];
  const I = window.ykt.i18n;
  let last = null;

  function mk(tag, attrs, key) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (key) e.dataset.i18n = key;
    return e;
  }

  function section() {
    let s = document.getElementById("rollouts");
    if (s) return s;
    s = mk("section", {id: "rollouts"});
    s.appendChild(mk("h2", {}, "ota.title"));
    s.appendChild(mk("p", {id: "rollouts-none"}, "ota.none"));
    const table = mk("table", {id: "rollout-table", hidden: ""});
    const tr = mk("tr");
    for (const c of COLS) tr.appendChild(mk("th", {}, "ota.col." + c));
    table.appendChild(mk("thead")).appendChild(tr);
    table.appendChild(mk("tbody"));
    s.appendChild(table);
    (document.getElementById("app") || document.body).appendChild(s);
    I.apply(s);
    return s;
  }

  function td(tr, text, cls) {
    const c = document.createElement("td");
    c.textContent = String(text);
    if (cls) c.className = cls;
    tr.appendChild(c);
    return c;
  }

  function render(rows) {
    section();
    last = rows;
    const table = document.getElementById("rollout-table");
    document.getElementById("rollouts-none").hidden = rows.length > 0;
    table.hidden = rows.length === 0;
    const tb = table.querySelector("tbody");
    tb.textContent = "";
    for (const r of rows) {
      const c = r.counts, tr = document.createElement("tr");
      tr.dataset.rollout = r.id;
      td(tr, r.id, "num"); td(tr, r.version); td(tr, r.target);
      const st = td(tr, I.t("ota.stage." + r.stage, {p: r.percent}), "stage " + (r.stage === "halted" ? "stale" : "ok"));
      st.dataset.stage = r.stage;
      st.title = r.note || "";
      const p = td(tr, "", "bar");
      const m = document.createElement("meter");
      m.min = 0; m.max = Math.max(1, r.total); m.value = c.live;
      p.appendChild(m);
      p.appendChild(document.createTextNode(" " + c.live + "/" + r.total));
      td(tr, c.live, "num live");
      td(tr, c.offered + c.downloaded, "num offered");
      td(tr, c.downloading, "num downloading");
      td(tr, c.trial, "num trial");
      td(tr, c.rolled_back, c.rolled_back ? "num rolled-back stale" : "num rolled-back");
      tb.appendChild(tr);
    }
  }

  async function refresh() {
    const app = document.getElementById("app");
    if (app && app.hidden) return;            // not logged in
    try {
      const r = await fetch("/admin/api/rollouts", {credentials: "same-origin"});
      if (r.ok) render(await r.json());
    } catch (e) { /* next tick */ }
  }

  document.addEventListener("ykt-lang", () => { if (last) render(last); });
  I.ready.then(() => { section(); refresh(); });
  setInterval(refresh, REFRESH_MS);
  window.yktRollouts = {refresh: refresh, states: STATES};
})();
