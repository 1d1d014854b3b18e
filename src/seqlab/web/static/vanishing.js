// The live vanishing / exploding demo: sliders for the spectral radius of W_hh and the sequence
// length (and clipping on / off); the curve of ||dL/dh_t|| against the distance from the loss is
// redrawn as they move. The numbers come from the scratch NumPy cells' BPTT (/api/vanishing).
import { html, lineChart, PALETTE } from "./svg.js";
import { post } from "./api.js";

const $ = (id) => document.getElementById(id);
const CELLS = ["rnn", "rnn_relu", "lstm", "gru"];
let busy = false, again = false;

function body() {
  const b = { cells: CELLS.filter((c) => $(`van-${c}`).checked), rho: Number($("van-rho").value),
              length: Number($("van-length").value), hidden: Number($("van-hidden").value) || 32,
              gate_bias: Number($("van-bias").value) };
  if ($("van-clip-on").checked) b.clip = Number($("van-clip").value) || 1;
  return b;
}

function show() {
  $("van-rho-v").textContent = Number($("van-rho").value).toFixed(2);
  $("van-length-v").textContent = $("van-length").value;
  $("van-bias-v").textContent = Number($("van-bias").value).toFixed(1);
}

// One request at a time; moves made meanwhile are folded into one more request when it returns.
export async function redraw() {
  show();
  if (busy) { again = true; return; }
  const b = body();
  if (!b.cells.length) return;
  busy = true;
  const r = await post("/api/vanishing", b);
  busy = false;
  if (r) draw(r);
  if (again) { again = false; redraw(); }
}

function draw(r) {
  const names = Object.keys(r.cells);
  const series = names.map((c) => ({
    name: `${c.toUpperCase()} (×${r.cells[c].factor === null ? "?" : r.cells[c].factor.toFixed(3)} per step)`,
    x: r.distance, y: r.cells[c].norms.map((v) => (v > 0 ? Math.log10(v) : NaN)),
    color: PALETTE[CELLS.indexOf(c) % PALETTE.length] }));
  if (r.clip !== null) series.push({ name: `clip = ${r.clip}`, x: [0, r.length - 1],
                                     y: [Math.log10(r.clip), Math.log10(r.clip)], color: "#000", dash: "4 3", width: 1 });
  const box = $("van-plot");
  box.replaceChildren(lineChart(series, { width: 860, height: 380, xlabel: "distance from the loss, T − t (steps back)",
    ylabel: "log10 mean ‖dL/dh_t‖", testid: "vanishing" }));
  box.dataset.rho = String(r.rho);
  box.dataset.length = String(r.length);
  box.dataset.last = JSON.stringify(Object.fromEntries(names.map((c) => [c, r.cells[c].norms[r.length - 1]])));
  $("van-note").replaceChildren(html("span", { text: `spectral radius ρ(W_hh) = ${r.rho}, ${r.length} steps, hidden `
    + `${r.hidden}, ${r.clip === null ? "no clipping" : `per-step clipping at ${r.clip}`}: below the 0 line the gradient `
    + "that reaches h_t has shrunk; a straight falling line is geometric vanishing, a rising one explosion." }));
}

export function setupVanishing() {
  for (const id of ["van-rho", "van-length", "van-bias", "van-hidden", "van-clip"]) $(id).addEventListener("input", redraw);
  for (const id of ["van-clip-on", ...CELLS.map((c) => `van-${c}`)]) $(id).addEventListener("change", redraw);
  show();
}
