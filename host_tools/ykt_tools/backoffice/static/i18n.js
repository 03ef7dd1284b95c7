// Message catalogs for the dashboard: i18n/zh-CN.json (the default) and
// i18n/en.json, one flat key -> text map each. Every visible string comes from
// here: elements name their key (data-i18n for the text, data-i18n-title /
// -placeholder / -aria-label for attributes) and scripts call ykt.i18n.t(key,
// {param}). The choice is kept in localStorage; <html lang> follows it. No
// inline script or style anywhere, so a strict Content-Security-Policy holds.
"use strict";
window.ykt = window.ykt || {};
(function () {
  const STORE = "ykt-lang";
  const LANGS = ["zh-CN", "en"];
  let cat = {};
  let lang = "zh-CN";
  const missing = new Set();

  function t(key, params) {
    let s = cat[key];
    if (s === undefined) {
      missing.add(key);
      return key;
    }
    if (params) {
      s = s.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined || params[k] === null ? m : String(params[k])));
    }
    return s;
  }

  function apply(root) {
    for (const el of (root || document).querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const a of ["title", "placeholder", "aria-label"]) {
      const attr = "data-i18n-" + a;
      for (const el of (root || document).querySelectorAll("[" + attr + "]")) el.setAttribute(a, t(el.getAttribute(attr)));
    }
  }

  async function load(l) {
    if (!LANGS.includes(l)) l = LANGS[0];
    const r = await fetch("i18n/" + l + ".json", {credentials: "same-origin"});
    cat = await r.json();
    lang = l;
    document.documentElement.lang = l;
    try { localStorage.setItem(STORE, l); } catch (e) { /* private mode: the choice lasts this page */ }
    apply(document);
    document.dispatchEvent(new CustomEvent("ykt-lang", {detail: l}));
  }

  function stored() {
    try { return localStorage.getItem(STORE); } catch (e) { return null; }
  }

  // money in fen -> "¥12.34" (the catalog's "yuan" pattern)
  function yuan(fen) {
    if (fen === null || fen === undefined) return "–";
    const neg = fen < 0, v = Math.abs(fen);
    return (neg ? "-" : "") + t("yuan", {v: Math.floor(v / 100) + "." + String(v % 100).padStart(2, "0")});
  }

  window.ykt.i18n = {
    t, apply, load, yuan, LANGS,
    lang: () => lang,
    missing: () => Array.from(missing),
    other: () => (lang === "zh-CN" ? "en" : "zh-CN"),
    ready: load(stored() || document.documentElement.lang || LANGS[0]),
  };
})();
