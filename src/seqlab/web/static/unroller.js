// The RNN unroller: the same cell at every step, the hidden state flowing from one step to the next.
import { bars, colorDiv, colorSeq, el, fmt, heatmap, html, lineChart, maxAbs, text, title } from "./svg.js";
import { checkInputs, post, setStatus } from "./api.js";
import { resetBackward } from "./backward.js";
import { resetNeurons } from "./neurons.js";

const GATE_INFO = {
  i: "input gate σ: how much of g to write into the cell",
  f: "forget gate σ: how much of c_{t-1} to keep",
  g: "candidate tanh: the values that may be written",
  o: "output gate σ: how much of tanh(c_t) to show as h_t",
  r: "reset gate σ: how much of h_{t-1} the candidate sees",
  z: "update gate σ: how much of h_{t-1} to keep",
  n: "candidate tanh(x_n + r * h_n)",
};
const S = { data: null, t: 0, layer: 0, dir: 0 };
const $ = (id) => document.getElementById(id);

export async function runUnroll() {
  const body = { model: $("unroll-model").value, text: $("unroll-text").value };
  if (body.model.startsWith("toy:")) {  // the hidden size is the toy cells' only: a run has its own
    if (!checkInputs("unroll-hidden")) return;
    body.hidden = Number($("unroll-hidden").value) || 4;
  }
  const data = await post("/api/unroll", body);
  if (!data) return;
  Object.assign(S, { data, t: 0, layer: data.num_layers - 1, dir: 0 });
  const sel = $("unroll-layer");
  sel.replaceChildren();
  data.layers.forEach((dirs, l) => dirs.forEach((d, k) =>
    sel.append(html("option", { value: `${l}:${k}`, text: `layer ${l} ${d.direction}` }))));
  sel.value = `${S.layer}:0`;
  $("unroll-result").hidden = false;
  setStatus(`${data.model}: ${data.steps} steps of a ${data.num_layers}-layer ${data.directions === 2 ? "bidirectional " : ""}`
            + `${data.cell.toUpperCase()} (hidden ${data.hidden})`);
  render();
  resetBackward(body);  // the backward view of the same text, its default output
  resetNeurons(body, data);
}

export function setupUnroller() {
  $("unroll-go").addEventListener("click", runUnroll);
  $("unroll-text").addEventListener("keydown", (e) => { if (e.key === "Enter") runUnroll(); });
  $("step-back").addEventListener("click", () => step(-1));
  $("step-fwd").addEventListener("click", () => step(1));
  $("step-range").addEventListener("input", (e) => { S.t = Number(e.target.value); render(); });
  $("unroll-layer").addEventListener("change", (e) => {
    [S.layer, S.dir] = e.target.value.split(":").map(Number);
    render();
  });
  const toyOnly = () => { $("unroll-hidden-box").hidden = !$("unroll-model").value.startsWith("toy:"); };
  $("unroll-model").addEventListener("change", toyOnly);
  toyOnly();
  // ← / → step back / forward wherever the unroller shows (it is the landing page: no hash needed),
  // except while typing or choosing in a field (the slider has its own arrow keys)
  document.addEventListener("keydown", (e) => {
    if (!S.data || $("page-unroller").hidden || e.altKey || e.ctrlKey || e.metaKey) return;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName) || e.target.isContentEditable) return;
    const d = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!d) return;
    e.preventDefault();
    step(d);
  });
}

function step(d) {
  if (!S.data) return;
  S.t = Math.max(0, Math.min(S.data.steps - 1, S.t + d));
  render();
}

function render() {
  const d = S.data;
  $("step-range").max = d.steps - 1;
  $("step-range").value = S.t;
  const k = S.t + 1, back = d.layers[S.layer][S.dir].direction === "backward";
  $("step-label").textContent = `step t = ${S.t} of 0..${d.steps - 1}: token "${d.tokens[S.t]}" — cell ${k} `
    + `reads x${sub(k)} and h${sub(incoming(S.t, back))}, outputs h${sub(k)}`;
  $("step-back").disabled = S.t === 0;
  $("step-fwd").disabled = S.t === d.steps - 1;
  renderDiagram();
  renderDetail();
  renderOutput();
  renderReturns();
}

function renderDiagram() {
  const d = S.data, tr = d.layers[S.layer][S.dir], back = tr.direction === "backward";
  const W = 74, strip = 96, top = 20, box = 34, T = d.steps;
  const m = maxAbs(tr.h);
  const svg = el("svg", { width: T * W + 40, height: top + strip + box + 64, id: "diagram" });
  const y0 = top + strip + 10;
  for (let t = 0; t < T; t++) {
    const x = 20 + t * W;
    const seen = back ? t >= S.t : t <= S.t;
    const g = el("g", { class: `step${t === S.t ? " current" : ""}${seen ? "" : " future"}`, "data-testid": "step",
                        "data-step": t, transform: `translate(${x},0)` });
    const hs = tr.h[t], uh = strip / hs.length;
    hs.forEach((v, j) => g.append(el("rect", { x: 8, y: top + j * uh, width: W - 34, height: Math.max(uh, 0.5),
                                                fill: colorDiv(v, m), class: "strip" })));
    g.append(text(8, top - 5, `h${sub(t + 1)}`, { class: "tick", "data-testid": "h-label" }));
    g.append(el("rect", { x: 4, y: y0, width: W - 26, height: box, rx: 6, class: "cellbox" },
                [title(`step ${t}: ${d.cell.toUpperCase()} cell ${t + 1} reads x${sub(t + 1)} and `
                       + `h${sub(incoming(t, back))}, outputs h${sub(t + 1)}`)]));
    g.append(text(4 + (W - 26) / 2, y0 + box / 2 + 4, d.cell.toUpperCase(), { "text-anchor": "middle", class: "celltxt" }));
    g.append(el("line", { x1: 4 + (W - 26) / 2, x2: 4 + (W - 26) / 2, y1: y0 + box + 14, y2: y0 + box + 2,
                          class: "arrow" }));
    g.append(text(4 + (W - 26) / 2, y0 + box + 28, d.tokens[t], { "text-anchor": "middle", class: "token" }));
    g.append(text(4 + (W - 26) / 2, y0 + box + 42, `x${sub(t + 1)}`, { "text-anchor": "middle", class: "tick",
                                                                       "data-testid": "x-label" }));
    if (t < T - 1) {
      const [x1, x2] = back ? [W - 4, W - 22] : [W - 22, W - 4];
      g.append(el("line", { x1, x2, y1: y0 + box / 2, y2: y0 + box / 2, class: "arrow hflow" }));
    }
    g.addEventListener("click", () => { S.t = t; render(); });
    svg.append(g);
  }
  svg.append(el("defs", {}, [el("marker", { id: "head", viewBox: "0 0 6 6", refX: 5, refY: 3, markerWidth: 6,
    markerHeight: 6, orient: "auto" }, [el("path", { d: "M0,0 L6,3 L0,6 z", class: "arrowhead" })])]));
  const box_ = $("unroll-diagram");
  box_.replaceChildren(svg);
  const cur = svg.querySelector(".step.current");
  if (cur) box_.scrollLeft = Math.max(0, 20 + S.t * W - box_.clientWidth / 2);
}

// Subscripts count the cells from 1, as the caption "h₀ = zeros" does: step t (0-based, as in
// outputs[0, t]) is cell k = t + 1, which reads x_k and h_{k-1} and outputs h_k; the first cell reads
// h₀ = zeros. A backward direction runs from the last cell: cell k reads h_{k+1}, cell T reads
// h_{T+1} = zeros.
const sub = (n) => String(n).replace(/-/g, "₋").replace(/\d/g, (c) => "₀₁₂₃₄₅₆₇₈₉"[c]);
const incoming = (t, back) => (back ? t + 2 : t);  // the subscript of the state step t reads

// One vector as a heatmap strip; a long one wraps into rows of WRAP units (unit j at row j / WRAP).
const WRAP = 32;
function row(name, shape, values, opts = {}) {
  const n = values.length, wrap = n > WRAP;
  const cw = wrap ? 8 : Math.max(8, Math.min(opts.numbers ? 46 : 18, Math.floor(520 / n)));
  const rows = [];
  for (let i = 0; i < n; i += wrap ? WRAP : n) rows.push(values.slice(i, i + (wrap ? WRAP : n)));
  const color = opts.gate ? colorSeq : ((v) => colorDiv(v, opts.scale || 1));
  const per = wrap ? WRAP : n;
  const hm = heatmap(rows, { cell: [cw, wrap ? 8 : 18], color, numbers: opts.numbers, testid: opts.testid,
                             label: (r, c, v) => `${name}[${r * per + c}] = ${fmt(v, 6)}` });
  if (opts.id) {
    hm.id = opts.id;
    hm.querySelectorAll("rect.cell").forEach((r) => {
      const j = Number(r.dataset.row) * per + Number(r.dataset.col);
      r.setAttribute("data-unit", j);
      r.setAttribute("data-value", String(values[j]));
    });
  }
  const note = (opts.note || "") + (wrap ? ` (${n} units in rows of ${WRAP})` : "");
  const tid = (what) => (opts.key ? `${what}-${opts.key}` : undefined);
  return html("div", { class: "vrow" }, [
    html("div", { class: "vname" }, [html("b", { text: name, "data-testid": tid("name") }),
                                     html("span", { class: "shape", text: ` ${shape}` })]),
    hm, html("div", { class: "vnote", text: note, "data-testid": tid("note") })]);
}

function renderDetail() {
  const d = S.data, t = S.t, tr = d.layers[S.layer][S.dir], back = tr.direction === "backward";
  const H = d.hidden, prev = back ? t + 1 : t - 1, inRange = prev >= 0 && prev < d.steps;
  const k = t + 1, kin = incoming(t, back);
  const numbers = H <= 16;
  const inDim = S.layer === 0 ? d.input_dim : d.layers[S.layer - 1].length * H;
  const xVals = S.layer === 0 ? d.x[t] : d.layers[S.layer - 1].flatMap((dd) => dd.h[t]);
  const box = $("unroll-detail");
  box.replaceChildren(html("h3", { text: `Inside step ${t}, cell ${k} (layer ${S.layer}, ${tr.direction}): "${d.tokens[t]}"` }));
  box.append(row(`x${sub(k)}`, `(batch=1, input=${inDim})`, xVals, { numbers, scale: maxAbs([xVals]), key: "x",
    note: S.layer === 0 ? "the input: this token's embedding" : "the layer below's h at this step" }));
  const zeros = new Array(H).fill(0);
  box.append(row(`h${sub(kin)}`, `(batch=1, hidden=${H})`, inRange ? tr.h[prev] : zeros, { numbers, key: "h-in",
    id: "h-prev", note: inRange ? `the state carried in from the ${back ? "next" : "previous"} step`
      : `h${sub(kin)} = zeros: the initial state` }));
  if (tr.c) box.append(row(`c${sub(kin)}`, `(1, ${H})`, inRange ? tr.c[prev] : zeros, { numbers, key: "c-in",
    scale: maxAbs([tr.c[t]]), note: inRange ? "the cell state carried in" : `c${sub(kin)} = zeros: the initial cell state` }));
  for (const [g, vals] of Object.entries(tr.gates))
    box.append(row(g, `(1, ${H})`, vals[t], { numbers, gate: g !== "g" && g !== "n", note: GATE_INFO[g] }));
  if (tr.c) box.append(row(`c${sub(k)}`, `(1, ${H})`, tr.c[t],
    { numbers, scale: maxAbs([tr.c[t]]), key: "c-out", note: "c_t = f * c_{t-1} + i * g" }));
  const how = { lstm: "h_t = o * tanh(c_t)", gru: "h_t = (1 - z) * n + z * h_{t-1}",
                rnn: "h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)",
                rnn_relu: "h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)" }[d.cell];
  box.append(row(`h${sub(k)}`, `(batch=1, hidden=${H})`, tr.h[t], { numbers, id: "h-current", key: "h-out", note: how }));
}

function renderOutput() {
  const d = S.data, o = d.output, t = S.t, box = $("unroll-output");
  box.replaceChildren(html("h3", { text: "Output at this step" }), html("p", { class: "note", text: o.note }));
  if (o.kind === "classes" || o.kind === "tags") {
    const items = o.labels.map((label, k) => ({ label, value: o.probs[t][k] }))
      .sort((a, b) => b.value - a.value).slice(0, 8);
    box.append(bars(items, { testid: "step-probs" }));
  }
  if (o.kind === "classes") {
    const xs = d.tokens.map((_, i) => i);
    const series = o.labels.map((name, k) => ({ name, x: xs, y: o.probs.map((p) => p[k]), marker: true }));
    box.append(lineChart(series, { width: Math.min(900, 140 + 40 * d.steps), height: 220, ylim: [0, 1],
      xTickLabels: d.tokens, vline: t, ylabel: "probability", testid: "probs-over-time" }));
  } else if (o.kind === "next_token") {
    const items = o.top_tokens[t].map((label, k) => ({ label: JSON.stringify(label), value: o.probs[t][k] }));
    box.append(html("p", { text: `after "${d.tokens.slice(0, t + 1).join(d.tokens.length > 1 && d.tokens[0].length === 1 ? "" : " ")}" the model expects:` }));
    box.append(bars(items, { testid: "step-probs" }));
  }
}

function renderReturns() {
  const d = S.data, T = d.steps, H = d.hidden, L = d.num_layers, D = d.directions;
  const box = $("unroll-returns");
  box.replaceChildren(html("h3", { text: "What the RNN returns: outputs vs the final state" }));
  const cols = d.outputs.map((_, t) => t);
  const transpose = (rows) => rows[0].map((_, j) => rows.map((r) => r[j]));
  const small = D * H <= 16;
  const ch = small ? 18 : Math.max(1, Math.min(10, Math.floor(320 / (D * H))));
  const cw = Math.max(8, Math.min(small ? 46 : 40, Math.floor(900 / T)));
  box.append(html("p", { text: `outputs: shape (batch=1, time=${T}, dirs*hidden=${D * H}) — the top layer's `
    + `h_t at every step${D === 2 ? ", forward and backward side by side" : ""}. Columns are steps; the highlighted one is step ${S.t}.` }));
  box.append(heatmap(transpose(d.outputs), { cell: [cw, ch], colLabels: d.tokens, highlightCol: S.t,
    numbers: small, testid: "outputs", label: (r, c, v) => `outputs[0, ${c}, ${r}] = ${fmt(v, 6)}` }));
  const hnLabels = [];
  for (let l = 0; l < L; l++) for (let k = 0; k < D; k++) hnLabels.push(`layer ${l}${D === 2 ? (k ? " bwd" : " fwd") : ""}`);
  const hcw = Math.max(2, Math.min(46, Math.floor(900 / H)));
  const numbers = H <= 16;
  box.append(html("p", { text: `h_n: shape (layers*dirs=${L * D}, batch=1, hidden=${H}) — the last state of every `
    + `layer and direction: what a classifier or a decoder starts from.${D === 2 ? " The backward direction's last state is the one at step 0." : ""}` }));
  box.append(heatmap(d.h_n, { cell: [hcw, 16], rowLabels: hnLabels, numbers, testid: "h_n",
    label: (r, c, v) => `h_n[${r}, 0, ${c}] = ${fmt(v, 6)}` }));
  if (d.c_n) {
    box.append(html("p", { text: `c_n: shape (${L * D}, 1, ${H}) — the LSTM's final cell states (never part of outputs).` }));
    box.append(heatmap(d.c_n, { cell: [hcw, 16], rowLabels: hnLabels, numbers, color: (v) => colorDiv(v, maxAbs(d.c_n)) }));
  }
  const top = d.h_n.length - D, same = (a, b) => a.every((v, j) => Math.abs(v - b[j]) < 1e-6);
  const fwdOk = same(d.outputs[T - 1].slice(0, H), d.h_n[top]);
  let msg = `outputs[0, ${T - 1}, :${H}] ${fwdOk ? "==" : "!="} h_n[${top}]: the last output is the top layer's final forward state`;
  if (D === 2) msg += `; outputs[0, 0, ${H}:] ${same(d.outputs[0].slice(H), d.h_n[top + 1]) ? "==" : "!="} h_n[${top + 1}] (backward)`;
  if (L > 1) msg += `; h_n[${top > 1 ? "0.." : ""}${top - 1}] ${top > 1 ? "are the lower layers" : "is the lower layer"}, which outputs never shows`;
  box.append(html("p", { class: "check", "data-testid": "returns-check", text: msg }));
}
