// The backward view under the unroller: pick an output L; the same unrolled cells show ||dL/dh_t||
// (and ||dL/dc_t||) at every step, the gradient flowing right to left, the share of each path
// (gate) in what a step hands back, and the input tokens as a heat strip of their saliency.
import { colorDiv, el, fmt, html, PALETTE, text, title } from "./svg.js";
import { post, setStatus } from "./api.js";

const $ = (id) => document.getElementById(id);
const B = { req: null, data: null, sal: null, layer: 0, dir: 0 };
const W = 74;  // px per step: the forward diagram's
const PATH_INFO = { cell: "f·dL/dc_t (the cell's highway, into c)", skip: "z·dL/dh_t (the GRU's highway)",
                    W_hh: "W_hhᵀ·dL/da_t (the only path of a plain RNN)" };

export function setupBackward() {
  $("bw-go").addEventListener("click", () => runBackward());
  $("bw-position").addEventListener("change", () => { $("bw-target").value = ""; runBackward(); });
  $("bw-measure").addEventListener("change", () => runBackward());
  $("bw-target").addEventListener("keydown", (e) => { if (e.key === "Enter") runBackward(); });
  $("bw-layer").addEventListener("change", (e) => { [B.layer, B.dir] = e.target.value.split(":").map(Number); render(); });
}

// Called by the unroller after each unroll: the default output of the new text.
export function resetBackward(req) {
  B.req = req;
  $("bw-position").replaceChildren(html("option", { value: "", text: "default" }));
  $("bw-target").value = "";
  runBackward(true);
}

export async function runBackward(fresh = false) {
  if (!B.req) return;
  const said = fresh ? $("status").textContent : "";  // the unroller's line, kept once these calls are done
  const body = { ...B.req };
  const pos = $("bw-position").value, tgt = $("bw-target").value.trim(), m = $("bw-measure").value;
  if (pos !== "") body.position = pos === "all" ? "all" : Number(pos);
  if (tgt) body.target = tgt;
  if (m) body.measure = m;
  const data = await post("/api/backward", body);
  if (!data) return;
  const sal = await post("/api/saliency", body);
  Object.assign(B, { data, sal });
  if (fresh) {
    Object.assign(B, { layer: data.num_layers - 1, dir: 0 });
    const sel = $("bw-layer");
    sel.replaceChildren();
    data.layers.forEach((dirs, l) => dirs.forEach((d, k) =>
      sel.append(html("option", { value: `${l}:${k}`, text: `layer ${l} ${d.direction}` }))));
    sel.value = `${B.layer}:0`;
    const ps = $("bw-position");
    data.output.positions.forEach((name, i) => ps.append(html("option", { value: String(i), text: `${i}: ${name}` })));
    ps.append(html("option", { value: "all", text: "all: the summed loss" }));
  }
  const names = data.output.labels || data.output.top.map((t) => t.label);
  $("bw-targets").replaceChildren(...names.map((n) => html("option", { value: n })));
  $("bw-result").hidden = false;
  render();
  if (said) setStatus(said);
}

function render() {
  const d = B.data, o = d.output;
  const top = o.top.length ? "; at this output the model gives " + o.top.map((t) => `${t.label} ${fmt(t.prob, 3)}`).join(", ") : "";
  $("bw-what").textContent = `L = ${o.what} = ${fmt(o.value, 6)}${top}`;
  $("bw-what").dataset.value = String(o.value);
  renderFlow();
  renderSaliency();
}

// Bar heights on a log scale from the smallest non-zero norm shown to the largest.
function logScale(values, h) {
  const pos = values.filter((v) => v > 0);
  const hi = Math.log10(Math.max(...pos, 1e-300)), lo = Math.min(hi - 1, Math.log10(Math.min(...pos, 1e300)));
  return (v) => (v > 0 ? 3 + (h - 3) * (Math.log10(v) - lo) / (hi - lo || 1) : 0);
}

function renderFlow() {
  const d = B.data, tr = d.layers[B.layer][B.dir], back = tr.direction === "backward", T = d.steps;
  const n = tr.norm, hasC = n.dc !== null, barH = 70, top = 8;
  const rows = hasC ? 2 : 1, y0 = top + rows * (barH + 14) + 6, box = 30, shareY = y0 + box + 34;
  const svg = el("svg", { width: T * W + 40, height: shareY + 40, id: "bw-svg" });
  const paths = Object.keys(n.via);
  const scaleH = logScale(n.dh.concat(hasC ? n.dc : []), barH);
  const pos = d.output.position;
  const caption = html("p", { class: "note", text: `‖dL/dh_t‖ (red)${hasC ? " and ‖dL/dc_t‖ (orange)" : ""} at every `
    + `step of layer ${B.layer} ${tr.direction}, log scale; the gradient flows `
    + (back ? "left to right (this direction reads the text right to left)" : "right to left") });
  for (let t = 0; t < T; t++) {
    const x = 20 + t * W;
    const g = el("g", { class: `bstep${pos === t && d.output.positions.length === T ? " current" : ""}`,
                        transform: `translate(${x},0)`, "data-testid": "bw-step", "data-step": t,
                        "data-dh": String(n.dh[t]), "data-dc": hasC ? String(n.dc[t]) : "" });
    const bar = (row, v, cls, name) => {
      const yb = top + row * (barH + 14) + barH, hgt = scaleH(v);
      g.append(el("rect", { x: 12, y: yb - hgt, width: W - 42, height: hgt, class: cls },
                  [title(`${name} at step ${t} ("${d.tokens[t]}"): ${v}`)]));
      g.append(text(12 + (W - 42) / 2, yb + 11, v > 0 ? v.toExponential(1) : "0", { "text-anchor": "middle", class: "tick" }));
    };
    bar(0, n.dh[t], "bar-dh", "‖dL/dh_t‖");
    if (hasC) bar(1, n.dc[t], "bar-dc", "‖dL/dc_t‖");
    g.append(el("rect", { x: 4, y: y0, width: W - 26, height: box, rx: 6, class: "cellbox" }));
    g.append(text(4 + (W - 26) / 2, y0 + box / 2 + 4, d.cell.toUpperCase(), { "text-anchor": "middle", class: "celltxt" }));
    g.append(text(4 + (W - 26) / 2, y0 + box + 14, d.tokens[t], { "text-anchor": "middle", class: "token" }));
    // what step t hands back to the step it read its state from, split by path
    const prevOk = back ? t < T - 1 : t > 0, vals = paths.map((k) => n.via[k][t]);
    const sum = vals.reduce((a, b) => a + b, 0);
    if (prevOk && sum > 0) {
      let acc = 0;
      vals.forEach((v, i) => {
        const w = (W - 26) * v / sum;
        g.append(el("rect", { x: 4 + acc, y: shareY, width: Math.max(0, w), height: 12, fill: PALETTE[i % PALETTE.length],
                              class: "share", "data-path": paths[i], "data-value": String(v) },
                    [title(`path ${paths[i]} at step ${t}: ‖${v.toExponential(3)}‖ (${fmt(100 * v / sum, 1)}%)`)]));
        acc += w;
      });
      const ax = back ? [W - 22, W + 2] : [4, -20];
      g.append(el("line", { x1: ax[0], x2: ax[1], y1: y0 + box / 2, y2: y0 + box / 2, class: "arrow bflow" }));
    }
    svg.append(g);
  }
  svg.append(el("defs", {}, [el("marker", { id: "bhead", viewBox: "0 0 6 6", refX: 5, refY: 3, markerWidth: 6,
    markerHeight: 6, orient: "auto" }, [el("path", { d: "M0,0 L6,3 L0,6 z", class: "bhead" })])]));
  const legend = html("div", { class: "legend-row" }, [html("span", { class: "note",
    text: "what each step hands back to the one before (share of each path's norm): " })]);
  paths.forEach((k, i) => legend.append(html("span", { class: "key", style: `border-color:${PALETTE[i % PALETTE.length]}`,
    text: PATH_INFO[k] || `gate ${k}: W_hh,${k}ᵀ·dL/d${k}_t` })));
  $("bw-diagram").replaceChildren(caption, svg, legend);
}

function strip(label, tokens, values, testid) {
  const m = Math.max(1e-300, ...values.map(Math.abs));
  return html("div", { class: "strip-row" }, [html("span", { class: "strip-label", text: label }),
    ...tokens.map((tok, i) => html("span", { class: "tok", "data-testid": testid, "data-value": String(values[i]),
      style: `background:${colorDiv(values[i], m)}`, title: `${tok}: ${values[i]}` },
    [html("b", { text: tok }), html("small", { text: fmt(values[i], 4) })]))]);
}

function renderSaliency() {
  const s = B.sal;
  if (!s) return;
  const sum = s.ig.reduce((a, b) => a + b, 0);
  $("bw-saliency").replaceChildren(
    html("p", { text: `Which input tokens L depends on (red raises L, blue lowers it). Integrated gradients from all-zero `
      + `input vectors (L = ${fmt(s.baseline_value, 6)}) to the text: they add up to L − L(baseline) = `
      + `${fmt(s.value - s.baseline_value, 6)} (sum ${fmt(sum, 6)}, ${s.steps} steps)` }),
    strip("integrated gradients", s.tokens, s.ig, "sal-ig"), strip("gradient × input", s.tokens, s.gxi, "sal-gxi"));
}
