// The trained checkpoints' pages: generate, translate / QA, tag, forecast, training curves.
import { colorSeq, fmt, heatmap, html, lineChart, PALETTE } from "./svg.js";
import { checkInputs, get, post, setStatus } from "./api.js";

const $ = (id) => document.getElementById(id);

function slider(id, out, digits = 2) {
  const show = () => { $(out).textContent = Number($(id).value).toFixed(digits); };
  $(id).addEventListener("input", show);
  show();
}

async function generate() {
  if (!checkInputs("gen-seed")) return;
  const body = { model: $("gen-model").value, prime: $("gen-prime").value, length: Number($("gen-length").value),
                 temperature: Number($("gen-temp").value), top_k: Number($("gen-topk").value),
                 top_p: Number($("gen-topp").value), seed: Number($("gen-seed").value) };
  const r = await post("/api/generate", body);
  if (!r) return;
  const out = $("gen-output");
  out.replaceChildren(html("b", { text: r.prime }), document.createTextNode(r.text));
  setStatus(`${r.tokens.length} tokens sampled at temperature ${body.temperature}, top-k ${body.top_k || "all"}, `
            + `top-p ${body.top_p}, seed ${body.seed}`);
}

// The answer in large type and how sure the model is in small type under it. A QA answer below the
// threshold is "I don't know", as `seqlab qa ask` says, with the rejected best guess underneath.
function answerLines(r) {
  if (r.confidence === undefined) return [r.output, `mean log-probability ${fmt(r.mean_logprob, 3)}`];
  const thr = r.threshold;
  if (thr === null || thr === undefined) return [r.output, `confidence ${fmt(r.confidence, 3)}`];
  if (r.confidence >= thr) return [r.output, `confidence ${fmt(r.confidence, 3)} ≥ threshold ${fmt(thr, 3)}`];
  return ["I don't know", `best guess ${JSON.stringify(r.output)}, confidence ${fmt(r.confidence, 3)} < threshold `
          + `${fmt(thr, 3)}: below the threshold the model abstains`];
}

async function translate() {
  if (!checkInputs("s2s-beam")) return;
  const r = await post("/api/seq2seq", { model: $("s2s-model").value, text: $("s2s-text").value,
                                         beam: Number($("s2s-beam").value) });
  if (!r) return;
  const [answer, how] = answerLines(r);
  $("s2s-output").replaceChildren(html("div", { class: "answer", "data-testid": "s2s-answer", text: answer }),
                                  html("div", { class: "how", "data-testid": "s2s-how", text: how }));
  const box = $("s2s-attention");
  box.replaceChildren();
  if (!r.attention) {
    box.append(html("p", { class: "note", text: r.note || "this model has no attention" }));
    return;
  }
  box.append(html("p", { text: `attention: shape (output tokens + <eos> = ${r.tokens.length}, source tokens = `
    + `${r.src_tokens.length}); row i is what output token i read; each row sums to 1` }));
  const cw = Math.max(22, Math.min(56, Math.floor(700 / r.src_tokens.length)));
  box.append(heatmap(r.attention, { cell: [cw, 22], rowLabels: r.tokens, colLabels: r.src_tokens, color: colorSeq,
    numbers: true, rowLabelWidth: 110, testid: "attention",
    label: (i, j, v) => `${r.tokens[i]} ← ${r.src_tokens[j]}: ${fmt(v, 3)}` }));
}

async function tag() {
  const r = await post("/api/tag", { model: $("tag-model").value, text: $("tag-text").value });
  if (!r) return;
  const types = [...new Set(r.entities.map((e) => e.type))];
  const typeOf = new Array(r.tokens.length).fill(null);
  r.entities.forEach((e) => { for (let i = e.start; i < e.end; i++) typeOf[i] = e.type; });
  $("tag-output").replaceChildren(...r.tokens.map((w, i) => html("span", {
    class: "chip", "data-testid": "tag-chip",
    style: typeOf[i] ? `border-color:${PALETTE[types.indexOf(typeOf[i]) % PALETTE.length]}` : undefined,
  }, [html("span", { class: "w", text: w }), html("span", { class: "t", text: r.tags[i] })])));
  const cols = r.tag_names.map((_, k) => k).filter((k) => r.probs.some((p) => p[k] > 0.01));
  const box = $("tag-probs");
  box.replaceChildren(html("p", { text: `p(tag | sentence) per token${r.crf ? " (CRF marginals, model tag scheme)" : ""}`
    + `; tags below 1% everywhere are hidden` }));
  box.append(heatmap(r.probs.map((p) => cols.map((k) => p[k])), { cell: [46, 20], rowLabels: r.tokens,
    colLabels: cols.map((k) => r.tag_names[k]), color: colorSeq, numbers: true, rowLabelWidth: 100, testid: "tag-probs",
    label: (i, j, v) => `${r.tokens[i]} / ${r.tag_names[cols[j]]}: ${fmt(v, 4)}` }));
}

async function forecast() {
  if (!checkInputs("fc-history")) return;
  const body = { model: $("fc-model").value, history: Number($("fc-history").value) };
  if ($("fc-origin").value.trim()) body.origin = $("fc-origin").value.trim();
  const r = await post("/api/forecast", body);
  if (!r) return;
  const box = $("fc-plot");
  box.replaceChildren();
  const nh = r.history_times.length, times = r.history_times.concat(r.forecast_times);
  const hx = times.slice(0, nh).map((_, i) => i), fx = r.forecast_times.map((_, i) => nh + i);
  r.targets.forEach((name, j) => {
    // history grey and solid, forecast blue with dots, actual orange and dashed: told apart in the legend too
    const series = [{ name: "history", x: hx, y: r.history.map((v) => v[j]), color: "#555" },
                    { name: "forecast", x: fx, y: r.mean.map((v) => v[j]), color: "#1f77b4", marker: true }];
    if (r.actual.length) series.push({ name: "actual", x: fx.slice(0, r.actual.length), y: r.actual.map((v) => v[j]),
                                       color: "#ff7f0e", dash: "5 3", width: 2 });
    const bands = Object.entries(r.intervals).reverse().map(([lv, b]) => ({
      name: `${Math.round(Number(lv) * 100)}% interval`, x: fx, lo: b.lo.map((v) => v[j]), hi: b.hi.map((v) => v[j]),
      color: "#1f77b4", opacity: Number(lv) > 0.9 ? 0.15 : 0.3 }));
    box.append(html("h4", { text: `${name}: forecast from ${r.origin}, horizon ${r.horizon}` }));
    box.append(lineChart(series, { bands, width: 860, height: 300, xTickLabels: times, vline: nh - 0.5,
                                   testid: "forecast", ylabel: name }));
  });
}

async function curves() {
  const runs = [...document.querySelectorAll("#curve-runs input:checked")].map((c) => c.value);
  if (!runs.length) { setStatus("tick at least one run", true); return; }
  const r = await get("/api/curves?" + runs.map((x) => "run=" + encodeURIComponent(x)).join("&"));
  if (!r) return;
  const box = $("curve-plots");
  box.replaceChildren();
  const color = (name) => PALETTE[runs.indexOf(name) % PALETTE.length];  // one colour per run in every chart
  const loss = r.runs.map((run) => ({ name: run.name, x: run.steps.map((s) => s[0]), y: run.steps.map((s) => s[1]),
                                      color: color(run.name) }));
  box.append(lineChart(loss.filter((s) => s.x.length), { width: 640, height: 300, xlabel: "optimizer step",
                                                          ylabel: "training loss", testid: "loss-curves" }));
  const keys = [...new Set(r.runs.flatMap((run) => run.epochs.flatMap((e) => Object.keys(e))))]
    .filter((k) => k.startsWith("dev_")).sort();
  for (const key of keys) {
    const series = r.runs.map((run) => {
      const es = run.epochs.filter((e) => key in e);
      return { name: run.name, x: es.map((e) => e.epoch), y: es.map((e) => e[key]), marker: true, color: color(run.name) };
    }).filter((s) => s.x.length);
    box.append(lineChart(series, { width: 420, height: 260, xlabel: "epoch", ylabel: key }));
  }
  // per-layer gradient norms (grad_norms.jsonl): one line per layer of each run, log scale
  const grads = r.runs.flatMap((run) => Object.entries(run.grad_norms || {}).map(([layer, pts], i) => ({
    name: r.runs.length > 1 ? `${run.name} ${layer}` : layer, x: pts.map((p) => p[0]),
    y: pts.map((p) => Math.log10(p[1])), color: PALETTE[i % PALETTE.length],
    dash: runs.indexOf(run.name) > 0 ? "5 3" : undefined })));
  if (grads.length) box.append(lineChart(grads, { width: 640, height: 300, xlabel: "optimizer step",
    ylabel: "log10 gradient norm (before clipping)", testid: "grad-norms" }));
}

export function setupPages(models) {
  const fill = (id, tasks) => {
    const sel = $(id);
    sel.replaceChildren(...models.filter((m) => m.has_checkpoint && tasks.includes(m.task)
      && (m.task !== "qa" || id !== "tag-model")).map((m) => html("option", { value: m.name, text: `${m.name} (${m.task})` })));
    if (!sel.children.length) sel.append(html("option", { value: "", text: `no ${tasks.join("/")} run under --models` }));
  };
  fill("gen-model", ["lm"]);
  fill("s2s-model", ["translate", "qa"]);
  const taskOf = Object.fromEntries(models.map((m) => [m.name, m.task]));
  const askOrTranslate = () => {  // the QA page asks a question; the translation page translates a source
    const qa = taskOf[$("s2s-model").value] === "qa";
    $("s2s-go").textContent = qa ? "Ask" : "Translate";
    $("s2s-text-name").textContent = qa ? "question" : "source";
  };
  $("s2s-model").addEventListener("change", askOrTranslate);
  askOrTranslate();
  fill("tag-model", ["tag"]);
  fill("fc-model", ["forecast"]);
  const runs = $("curve-runs");
  runs.replaceChildren(...models.filter((m) => m.has_metrics).map((m, i) => html("label", {}, [
    html("input", { type: "checkbox", value: m.name, ...(i < 2 ? { checked: "" } : {}) }), ` ${m.name}`])));
  slider("gen-temp", "gen-temp-v");
  slider("gen-topk", "gen-topk-v", 0);
  slider("gen-topp", "gen-topp-v");
  slider("gen-length", "gen-length-v", 0);
  $("gen-go").addEventListener("click", generate);
  $("s2s-go").addEventListener("click", translate);
  $("s2s-text").addEventListener("keydown", (e) => { if (e.key === "Enter") translate(); });
  $("tag-go").addEventListener("click", tag);
  $("tag-text").addEventListener("keydown", (e) => { if (e.key === "Enter") tag(); });
  $("fc-go").addEventListener("click", forecast);
  $("curve-go").addEventListener("click", curves);
}
