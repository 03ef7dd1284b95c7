// OTA roll-outs on the fleet dashboard (ykt_tools/backoffice/rollout.py):
// one row per roll-out with its stage and how far the fleet got
// (offered / downloading / trial / live / rolled back), refreshed every few
// seconds. Loaded by index.html after dashboard.js; adds its own section.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const STATES = ["offered", "downloading", "downloaded", "trial", "live", "rolled_back"];

  function section() {
    let s = document.getElementById("rollouts");
    if (s) return s;
    s = document.createElement("section");
    s.id = "rollouts";
    s.innerHTML = "<h2>Software roll-outs</h2><p id='rollouts-none'>no roll-out yet</p>" +
      "<table id='rollout-table' hidden><thead><tr><th>id</th><th>version</th><th>target</th>" +
      "<th>stage</th><th>progress</th><th>live</th><th>offered</th><th>downloading</th>" +
      "<th>trial</th><th>rolled back</th></tr></thead><tbody></tbody></table>";
    const app = document.getElementById("app") || document.body;
    app.appendChild(s);
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
    const table = document.getElementById("rollout-table");
    document.getElementById("rollouts-none").hidden = rows.length > 0;
    table.hidden = rows.length === 0;
    const tb = table.querySelector("tbody");
    tb.textContent = "";
    for (const r of rows) {
      const c = r.counts, tr = document.createElement("tr");
      tr.dataset.rollout = r.id;
      td(tr, r.id, "num"); td(tr, r.version); td(tr, r.target);
      td(tr, r.stage === "percent" ? r.percent + " %" : r.stage,
         "stage " + (r.stage === "halted" ? "stale" : "ok")).title = r.note || "";
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

  section();
  refresh();
  setInterval(refresh, REFRESH_MS);
  window.yktRollouts = {refresh: refresh, states: STATES};
})();
