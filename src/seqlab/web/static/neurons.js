// Neuron search under the unroller (LSTMVis-style): select a span of the text and get the units most
// on inside it and off outside; click a unit (a cell of h_t in "Inside step t") to trace it over
// time; list a unit's top-activating contexts across lines of text pasted in.
import { html, lineChart, PALETTE } from "./svg.js";
import { post } from "./api.js";

const $ = (id) => document.getElementById(id);
const N = { req: null, tokens: [], sel: null };

function layerOf() {  // the unroller's "show" choice -> (layer, unit offset of the direction)
  const [l, k] = ($("unroll-layer").value || "0:0").split(":").map(Number);
  return { layer: l, dir: k };
}

export function resetNeurons(req, data) {
  N.req = { model: req.model, ...(req.hidden ? { hidden: req.hidden } : {}) };
  N.tokens = data.tokens;
  N.hidden = data.hidden;
  N.sel = null;
  drawTokens();
  $("nr-result").replaceChildren();
}

function drawTokens() {
  $("nr-tokens").replaceChildren(...N.tokens.map((t, i) => {
    const on = N.sel && i >= N.sel[0] && i < N.sel[1];
    const chip = html("span", { class: `tok sel${on ? " on" : ""}`, "data-testid": "nr-token", "data-i": i }, [html("b", { text: t })]);
    chip.addEventListener("click", (e) => {
      if (e.shiftKey && N.sel) N.sel = [Math.min(N.sel[0], i), Math.max(N.sel[1], i + 1)];
      else N.sel = [i, i + 1];
      drawTokens();
    });
    return chip;
  }));
}

function chart(tokens, series, testid) {
  return lineChart(series, { width: Math.min(900, 160 + 46 * tokens.length), height: 220, xTickLabels: tokens,
                             ylabel: "h_t of the unit", testid });
}

async function findUnits() {
  if (!N.req || !N.sel) { $("nr-result").replaceChildren(html("p", { class: "note", text: "click a token (shift-click to extend) to select a span first" })); return; }
  const { layer } = layerOf();
  const r = await post("/api/neurons/match", { ...N.req, text: $("unroll-text").value, start: N.sel[0], end: N.sel[1],
                                               layer, k: 5 });
  if (!r) return;
  const series = r.units.map((u, i) => ({ name: `unit ${u.unit}`, x: r.tokens.map((_, t) => t),
                                          y: r.activations[String(u.unit)], color: PALETTE[i % PALETTE.length], marker: true }));
  $("nr-result").replaceChildren(
    html("p", { text: `layer ${r.layer}: the units most on inside "${r.tokens.slice(N.sel[0], N.sel[1]).join(" ")}" and off outside `
      + "(score = mean inside − mean outside):" }),
    html("ol", {}, r.units.map((u) => html("li", { "data-testid": "nr-unit", "data-unit": u.unit, "data-score": String(u.score),
      text: `unit ${u.unit}: score ${u.score.toFixed(4)} (inside ${u.inside.toFixed(4)}, outside ${u.outside === null ? "—" : u.outside.toFixed(4)})` }))),
    chart(r.tokens, series, "nr-match"));
  $("nr-unit").value = r.units[0].unit;
}

export async function traceUnit(unit) {
  if (!N.req) return;
  const { layer } = layerOf();
  const r = await post("/api/neurons/trace", { ...N.req, text: $("unroll-text").value, layer, unit });
  if (!r) return;
  $("nr-unit").value = unit;
  $("nr-result").replaceChildren(html("p", { text: `unit ${unit} of layer ${r.layer} over the text:` }),
    chart(r.tokens, [{ name: `unit ${unit}`, x: r.tokens.map((_, t) => t), y: r.values, marker: true }], "nr-trace"));
  $("nr-result").lastChild.dataset.values = JSON.stringify(r.values);
}

async function contexts() {
  const unit = Number($("nr-unit").value), corpus = $("nr-corpus").value;
  if (!N.req || !corpus.trim()) { $("nr-contexts").replaceChildren(html("p", { class: "note", text: "paste some lines of text first" })); return; }
  const r = await post("/api/neurons/contexts", { ...N.req, corpus, unit, layer: layerOf().layer, k: 10 });
  if (!r) return;
  $("nr-contexts").replaceChildren(html("p", { text: `where unit ${unit} is highest across ${corpus.split("\n").filter((l) => l.trim()).length} lines:` }),
    html("table", { class: "contexts" }, r.contexts.map((c) => html("tr", { "data-testid": "nr-context", "data-value": String(c.value) }, [
      html("td", { class: "num", text: c.value.toFixed(4) }), html("td", { class: "left", text: c.left.join(" ") }),
      html("td", {}, [html("b", { text: c.token })]), html("td", { text: c.right.join(" ") }),
      html("td", { class: "note", text: `line ${c.line + 1}` })]))));
}

export function setupNeurons() {
  $("nr-find").addEventListener("click", findUnits);
  $("nr-go").addEventListener("click", contexts);
  // a click on a unit of h_t in the step detail traces that unit (its index within the layer's directions)
  $("unroll-detail").addEventListener("click", (e) => {
    const rect = e.target.closest("rect[data-unit]");
    if (!rect) return;
    traceUnit(Number(rect.dataset.unit) + layerOf().dir * (N.hidden || 0));
  });
}
