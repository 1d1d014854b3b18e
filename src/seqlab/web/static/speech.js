// The speech page: one recording through a CTC recogniser (/api/speech): the spectrogram, the per-step CTC
// posteriors (blank dashed), the decoded alignment and the encoder's hidden states, on one time axis.
import { colorDiv, el, fmt, heatmap, html, lineChart, maxAbs, PALETTE, text, title } from "./svg.js";
import { get, post, postFile, setStatus } from "./api.js";

const $ = (id) => document.getElementById(id);
const WIDTH = 820;  // pixels the recording's duration spans in every panel

const transpose = (rows) => (rows.length ? rows[0].map((_, j) => rows.map((r) => r[j])) : []);

// A panel; `indent`: its figure starts where the posteriors chart's plot area does (one time axis for all).
function panel(heading, body, indent = true) {
  return html("div", { class: "panel" }, [html("h3", { text: heading }),
                                          indent ? html("div", { class: "sp-axis" }, [body]) : body]);
}

// Each decoded label over the encoder steps Viterbi gives it, as labelled segments on the time axis.
function alignment(r, pps) {
  const H = 36, svg = el("svg", { width: WIDTH + 2, height: H, class: "alignment", "data-testid": "sp-alignment" });
  svg.append(el("rect", { x: 0, y: 0, width: WIDTH, height: H, class: "track" }));
  r.alignment.forEach((a, k) => {
    const x = a.start * pps, w = Math.max(2, (a.end - a.start) * pps);
    svg.append(el("g", { class: "segment", "data-label": a.label }, [
      el("rect", { x, y: 4, width: w, height: H - 8, fill: PALETTE[k % PALETTE.length], opacity: 0.55 }),
      text(x + w / 2, H / 2 + 5, a.label, { "text-anchor": "middle", class: "token" }),
      title(`${a.label}: ${fmt(a.start, 2)}–${fmt(a.end, 2)} s (steps ${a.step_start}–${a.step_end - 1})`)]));
  });
  return svg;
}

function show(r) {
  const box = $("sp-result");
  const dur = Math.max(r.frames.length * r.frame_s, r.probs.length * r.step_s);
  const pps = WIDTH / dur;  // pixels per second
  const words = r.words.map((w) => `${w.word} ${fmt(w.confidence, 2)}`).join("  ") || "(nothing)";
  const said = html("div", { class: "answer", "data-testid": "sp-text", text: r.text || "(nothing)" });
  const how = html("div", { class: "how", text: `${r.source}: words with confidence ${words}; `
    + `${r.frames.length} frames of ${Math.round(r.frame_s * 1000)} ms, ${r.probs.length} encoder steps of `
    + `${Math.round(r.step_s * 1000)} ms` });
  const mels = transpose(r.frames).reverse();  // low channels at the bottom
  const m = maxAbs(mels);
  const spec = heatmap(mels, { cell: [r.frame_s * pps, 4], color: (v) => colorDiv(v, m), testid: "sp-spectrogram",
    label: (i, j, v) => `channel ${mels.length - 1 - i}, ${fmt(j * r.frame_s, 2)} s: ${fmt(v, 2)}` });
  const t = r.probs.map((_, i) => (i + 0.5) * r.step_s);
  const shown = r.units.map((_, k) => k).filter((k) => k === 0 || Math.max(...r.probs.map((p) => p[k])) > 0.1);
  const series = shown.map((k, i) => ({ name: k === 0 ? "blank" : r.units[k] === " " ? "␣" : r.units[k], x: t,
    y: r.probs.map((p) => p[k]), color: k === 0 ? "#555" : PALETTE[(i - 1) % PALETTE.length],
    dash: k === 0 ? "5 3" : undefined, width: k === 0 ? 1.2 : 2 }));
  series.push({ x: [0, dur], y: [NaN, NaN] });  // no line: the x axis spans the recording, as the other panels do
  const probs = lineChart(series, { width: WIDTH + 70, height: 240, ylim: [0, 1], xlabel: "time (s)",
                                    ylabel: "p(label | step)", testid: "sp-posteriors" });
  const hidden = transpose(r.hidden);
  const states = heatmap(hidden, { cell: [r.step_s * pps, Math.max(2, Math.min(6, 360 / hidden.length))],
    color: (v) => colorDiv(v, 1), testid: "sp-hidden",
    label: (i, j, v) => `unit ${i}, step ${j} (${fmt(j * r.step_s, 2)} s): ${fmt(v, 3)}` });
  box.replaceChildren(html("div", { id: "sp-said" }, [said, how]),
    panel(`Log-mel spectrogram as the model reads it (normalised; ${r.frames[0].length} channels)`, spec),
    panel("CTC posteriors per encoder step: blank (dashed) and every label that passes 10%", probs, false),
    panel("Decoded alignment: the steps the Viterbi alignment gives each label", alignment(r, pps)),
    panel(`Encoder hidden states, top layer (${hidden.length} units${r.directions > 1 ? ", both directions" : ""})`,
          states));
  box.hidden = false;
  setStatus(`decoded ${JSON.stringify(r.text)} from ${r.source}`);
}

async function clips() {
  const model = $("sp-model").value, sel = $("sp-clip");
  if (!model) return;
  const r = await get(`/api/speech/clips?model=${encodeURIComponent(model)}`);
  const names = r ? r.clips : [];
  sel.replaceChildren(...names.map((c) => html("option", { value: c, text: c })));
  if (!names.length) sel.append(html("option", { value: "", text: "no WAV in this run (upload one)" }));
}

async function showClip() {
  if (!$("sp-clip").value) { setStatus("pick a clip, or upload a WAV file", true); return; }
  const r = await post("/api/speech", { model: $("sp-model").value, clip: $("sp-clip").value });
  if (r) show(r);
}

async function upload() {
  const file = $("sp-file").files[0];
  if (!file) { setStatus("choose a WAV file first", true); return; }
  const r = await postFile(`/api/speech/upload?model=${encodeURIComponent($("sp-model").value)}`, file);
  if (r) show(r);
}

export function setupSpeech(models) {
  const sel = $("sp-model");
  const runs = models.filter((m) => m.has_checkpoint && m.task === "speech");
  sel.replaceChildren(...runs.map((m) => html("option", { value: m.name, text: `${m.name} (speech)` })));
  if (!runs.length) sel.append(html("option", { value: "", text: "no speech run under --models" }));
  sel.addEventListener("change", clips);
  $("sp-go").addEventListener("click", showClip);
  $("sp-upload").addEventListener("click", upload);
  clips();
}
