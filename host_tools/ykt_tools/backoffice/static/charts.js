// SVG charts for the dashboard, drawn with DOM calls (no library, no inline
// style: colours come from classes s0..s7 in dashboard.css).
//   ykt.charts.stacked(svg, legend, labels, series)  series: [{key, label, values}]
//   ykt.charts.bars(svg, legend, labels, series)      grouped bars, same input
"use strict";
window.ykt = window.ykt || {};
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const PAD_L = 40, PAD_B = 22, PAD_T = 8;

  function el(parent, tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }

  function frame(svg) {
    svg.textContent = "";
    const vb = svg.viewBox.baseVal;
    return {W: vb.width, H: vb.height};
  }

  function legendOf(legend, series) {
    legend.textContent = "";
    series.forEach((s, i) => {
      const item = document.createElement("span");
      item.className = "key";
      const sw = document.createElement("i");
      sw.className = "sw s" + (i % 8);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(s.label));
      legend.appendChild(item);
    });
  }

  function axes(svg, W, H, max, labels, every) {
    el(svg, "line", {x1: PAD_L, y1: H - PAD_B, x2: W, y2: H - PAD_B, class: "axis"});
    el(svg, "text", {x: PAD_L - 4, y: PAD_T + 8, class: "tick end"}, String(max));
    el(svg, "text", {x: PAD_L - 4, y: H - PAD_B, class: "tick end"}, "0");
    const bw = (W - PAD_L - 4) / labels.length;
    labels.forEach((l, i) => {
      if (i % every === 0) el(svg, "text", {x: PAD_L + i * bw + bw / 2, y: H - 6, class: "tick mid"}, l);
    });
    return bw;
  }

  function stacked(svg, legend, labels, series, unit) {
    const {W, H} = frame(svg);
    legendOf(legend, series);
    const tot = labels.map((_, i) => series.reduce((a, s) => a + (s.values[i] || 0), 0));
    const max = Math.max(1, ...tot);
    const bw = axes(svg, W, H, max, labels, labels.length > 12 ? 2 : 1);
    const h = H - PAD_B - PAD_T;
    labels.forEach((l, i) => {
      let y = H - PAD_B;
      series.forEach((s, k) => {
        const v = s.values[i] || 0;
        if (!v) return;
        const bh = h * v / max;
        y -= bh;
        const r = el(svg, "rect", {class: "bar s" + (k % 8), x: PAD_L + i * bw + 1, y: y, width: Math.max(1, bw - 2),
                                   height: bh, "data-series": s.key, "data-label": l, "data-value": v});
        el(r, "title", {}, s.label + " · " + l + ": " + v + (unit ? " " + unit : ""));
      });
    });
  }

  function bars(svg, legend, labels, series, fmt) {
    const {W, H} = frame(svg);
    legendOf(legend, series);
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const bw = axes(svg, W, H, fmt ? fmt(max) : max, labels, 1);
    const h = H - PAD_B - PAD_T;
    const n = Math.max(1, series.length);
    labels.forEach((l, i) => {
      series.forEach((s, k) => {
        const v = s.values[i] || 0;
        const bh = h * v / max;
        const w = Math.max(1, (bw - 4) / n);
        const r = el(svg, "rect", {class: "bar s" + (k % 8), x: PAD_L + i * bw + 2 + k * w, y: H - PAD_B - bh, width: w,
                                   height: bh, "data-series": s.key, "data-label": l, "data-value": v});
        el(r, "title", {}, s.label + " · " + l + ": " + (fmt ? fmt(v) : v));
      });
    });
  }

  window.ykt.charts = {stacked, bars};
})();
