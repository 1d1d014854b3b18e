// SVG helpers: elements, colour scales, heatmaps, bar and line charts. No libraries.
const NS = "http://www.w3.org/2000/svg";

export function el(tag, attrs = {}, children = []) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const c of [].concat(children)) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function html(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v || "";  // CSSOM: allowed by the page's style-src 'self'
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of [].concat(children)) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function text(x, y, s, attrs = {}) {
  return el("text", { x, y, ...attrs }, [document.createTextNode(s)]);
}

export function title(s) {
  return el("title", {}, [document.createTextNode(s)]);
}

// diverging: negative blue, zero white, positive red; |v| >= m is full colour
export function colorDiv(v, m = 1) {
  const t = Math.max(-1, Math.min(1, v / (m || 1)));
  const a = Math.abs(t);
  const [r, g, b] = t >= 0 ? [255, 255 - 190 * a, 255 - 200 * a] : [255 - 200 * a, 255 - 140 * a, 255];
  return `rgb(${r | 0},${g | 0},${b | 0})`;
}

// sequential for values in [0, 1] (gates, probabilities): white to dark violet
export function colorSeq(v) {
  const a = Math.max(0, Math.min(1, v));
  return `rgb(${(255 - 170 * a) | 0},${(255 - 215 * a) | 0},${(255 - 95 * a) | 0})`;
}

export const fmt = (v, d = 4) => (v === null || v === undefined ? "" : Number(v).toFixed(d));
export const maxAbs = (rows) => Math.max(1e-9, ...rows.flat().map(Math.abs));

// A heatmap of a 2-d array `rows` (rows x cols). opts: cell [w, h], color(v), rowLabels, colLabels,
// label(r, c, v) for the tooltip, testid, numbers (print values), highlightCol, dataValues.
export function heatmap(rows, opts = {}) {
  const nr = rows.length, nc = nr ? rows[0].length : 0;
  const [cw, ch] = opts.cell || [12, 12];
  const left = opts.rowLabels ? (opts.rowLabelWidth || 70) : 0;
  const top = opts.colLabels ? (opts.colLabelHeight || 60) : 0;
  const color = opts.color || ((v) => colorDiv(v, 1));
  const svg = el("svg", { width: left + nc * cw + 2, height: top + nr * ch + 2, class: "heatmap",
                          "data-testid": opts.testid, role: "img" });
  if (opts.rowLabels) opts.rowLabels.forEach((s, r) =>
    svg.append(text(left - 4, top + r * ch + ch * 0.72, s, { "text-anchor": "end", class: "tick" })));
  if (opts.colLabels) opts.colLabels.forEach((s, c) =>
    svg.append(text(0, 0, s, { class: "tick", "text-anchor": "start",
      transform: `translate(${left + c * cw + cw * 0.65},${top - 4}) rotate(-55)` })));
  const g = el("g", { transform: `translate(${left},${top})` });
  for (let r = 0; r < nr; r++) {
    for (let c = 0; c < rows[r].length; c++) {
      const v = rows[r][c];
      const rect = el("rect", { x: c * cw, y: r * ch, width: cw, height: ch, fill: color(v),
                                class: "cell", "data-row": r, "data-col": c });
      if (opts.dataValues) rect.setAttribute("data-value", String(v));
      rect.append(title(opts.label ? opts.label(r, c, v) : fmt(v)));
      g.append(rect);
      if (opts.numbers && cw >= 34) g.append(text(c * cw + cw / 2, r * ch + ch * 0.68, fmt(v, 2),
        { "text-anchor": "middle", class: "num" }));
    }
  }
  if (opts.highlightCol !== undefined && opts.highlightCol !== null)
    g.append(el("rect", { x: opts.highlightCol * cw, y: 0, width: cw, height: nr * ch, class: "hl" }));
  svg.append(g);
  return svg;
}

// Horizontal bars: items [{label, value}] with value in [0, 1].
export function bars(items, opts = {}) {
  const w = opts.width || 260, bh = 18, left = opts.labelWidth || 90;
  const svg = el("svg", { width: left + w + 60, height: items.length * (bh + 4) + 4, class: "bars",
                          "data-testid": opts.testid });
  items.forEach((it, i) => {
    const y = 2 + i * (bh + 4);
    svg.append(text(left - 6, y + bh * 0.75, it.label, { "text-anchor": "end", class: "tick" }));
    svg.append(el("rect", { x: left, y, width: Math.max(1, it.value * w), height: bh, class: "bar" },
                  [title(`${it.label}: ${fmt(it.value)}`)]));
    svg.append(text(left + it.value * w + 4, y + bh * 0.75, fmt(it.value, 3), { class: "tick" }));
  });
  return svg;
}

export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(+v.toPrecision(12));
  return out;
}

// Legend entries laid out in rows across `width` (about 6 px per character): [{item, x, row}].
function legendLayout(items, width) {
  const out = [];
  let x = 0, row = 0;
  for (const item of items) {
    const w = 30 + 6 * String(item.name).length + 16;
    if (x > 0 && x + w > width) { x = 0; row += 1; }
    out.push({ item, x, row });
    x += w;
  }
  return out;
}

// Line chart. series [{name, x: [], y: [], color, dash, marker, width}], bands [{x, lo, hi, color, opacity,
// name}], opts: width, height, xlabel, ylabel, xTickLabels (x index -> label), vline (x), ylim [lo, hi].
// The legend sits above the plotted area (never over the data); its swatches draw each line's own
// colour, dash and dots.
export function lineChart(series, opts = {}) {
  const W = opts.width || 640, H = opts.height || 300, m = { l: 56, r: 14, t: 24, b: 44 };
  const bands = opts.bands || [];
  const named = series.filter((s) => s.name).concat(bands.filter((b) => b.name));
  const legend = legendLayout(named, W - m.l - m.r);
  const legendRows = legend.length ? legend[legend.length - 1].row + 1 : 0;
  m.t = legendRows ? 8 + 15 * legendRows + 8 : 14;
  const xs = series.flatMap((s) => s.x).concat(bands.flatMap((b) => b.x));
  let ys = series.flatMap((s) => s.y).concat(bands.flatMap((b) => b.lo.concat(b.hi))).filter(Number.isFinite);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = opts.ylim || [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const pad = opts.ylim ? 0 : 0.05 * (y1 - y0);
  y0 -= pad; y1 += pad;
  const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const svg = el("svg", { width: W, height: H, class: "chart", "data-testid": opts.testid, role: "img" });
  svg.append(el("rect", { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, class: "plotarea",
                          fill: "none", stroke: "none" }));
  for (const t of ticks(y0, y1)) {
    svg.append(el("line", { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t), class: "grid" }));
    svg.append(text(m.l - 6, Y(t) + 4, String(t), { "text-anchor": "end", class: "tick" }));
  }
  const xt = opts.xTickLabels ? ticks(x0, x1, 6).filter((t) => Number.isInteger(t)) : ticks(x0, x1, 6);
  for (const t of xt) {
    const lab = opts.xTickLabels ? (opts.xTickLabels[t] ?? "") : String(t);
    svg.append(text(X(t), H - m.b + 16, lab, { "text-anchor": "middle", class: "tick" }));
  }
  svg.append(el("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "axis" }));
  svg.append(el("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: "axis" }));
  if (opts.xlabel) svg.append(text((m.l + W - m.r) / 2, H - 6, opts.xlabel, { "text-anchor": "middle", class: "label" }));
  if (opts.ylabel) svg.append(text(14, (m.t + H - m.b) / 2, opts.ylabel,
    { "text-anchor": "middle", class: "label", transform: `rotate(-90 14 ${(m.t + H - m.b) / 2})` }));
  for (const b of bands) {
    const up = b.x.map((x, i) => `${X(x)},${Y(b.hi[i])}`);
    const down = b.x.map((x, i) => `${X(x)},${Y(b.lo[i])}`).reverse();
    svg.append(el("polygon", { points: up.concat(down).join(" "), fill: b.color || "#1f77b4",
                               "fill-opacity": b.opacity ?? 0.2, stroke: "none" }, [title(b.name || "")]));
  }
  series.forEach((s, i) => {
    const pts = s.x.map((x, j) => [X(x), Y(s.y[j])]).filter((p) => Number.isFinite(p[1]));
    const color = s.color || PALETTE[i % PALETTE.length];
    svg.append(el("polyline", { points: pts.map((p) => p.join(",")).join(" "), fill: "none", stroke: color,
                                "stroke-width": s.width || 1.6, "stroke-dasharray": s.dash, class: "series" },
                  [title(s.name || "")]));
    if (s.marker) for (const [px, py] of pts) svg.append(el("circle", { cx: px, cy: py, r: 2.6, fill: color }));
  });
  if (opts.vline !== undefined && opts.vline !== null)
    svg.append(el("line", { x1: X(opts.vline), x2: X(opts.vline), y1: m.t, y2: H - m.b, class: "vline" }));
  const lg = el("g", { class: "legend", "data-testid": "legend" });
  for (const { item: s, x, row } of legend) {
    const i = series.indexOf(s), band = i < 0;
    const color = s.color || (band ? "#1f77b4" : PALETTE[i % PALETTE.length]);
    const x0 = m.l + x, y = 8 + row * 15 + 10;
    const g = el("g", { class: "legend-item", "data-name": s.name });
    if (band) {
      g.append(el("rect", { x: x0, y: y - 8, width: 24, height: 9, fill: color, "fill-opacity": s.opacity ?? 0.2,
                            class: "swatch" }));
    } else {
      g.append(el("line", { x1: x0, x2: x0 + 24, y1: y - 4, y2: y - 4, stroke: color, "stroke-width": s.width || 1.6,
                            "stroke-dasharray": s.dash, class: "swatch" }));
      if (s.marker) g.append(el("circle", { cx: x0 + 12, cy: y - 4, r: 2.6, fill: color }));
    }
    g.append(text(x0 + 30, y, s.name, { class: "tick" }));
    lg.append(g);
  }
  svg.append(lg);
  return svg;
}
