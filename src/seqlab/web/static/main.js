// Page routing (#unroller, #generate, ...) and the model lists.
import { get } from "./api.js";
import { setupPages } from "./pages.js";
import { setupUnroller } from "./unroller.js";
import { setupBackward } from "./backward.js";
import { setupNeurons } from "./neurons.js";
import { setupSpeech } from "./speech.js";
import { redraw, setupVanishing } from "./vanishing.js";
import { html } from "./svg.js";

const PAGES = ["unroller", "generate", "translate", "tag", "forecast", "speech", "curves", "gradients"];

function route() {
  const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "unroller";
  for (const p of PAGES) document.getElementById(`page-${p}`).hidden = p !== page;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.hash === `#${page}`));
  if (page === "gradients" && !document.getElementById("van-plot").children.length) redraw();
}

async function start() {
  const r = await get("/api/models");
  const models = r ? r.models : [];
  const sel = document.getElementById("unroll-model");
  const toys = html("optgroup", { label: "toy cells (NumPy, from scratch, 2-d word vectors)" },
    (r ? r.toys : []).map((t) => html("option", { value: t.name, text: `${t.cell.toUpperCase()} toy` })));
  const text = models.filter((m) => m.has_checkpoint && ["classify", "lm", "translate", "qa", "tag"].includes(m.task)
                                    && m.cell && m.cell !== "none");
  const trained = html("optgroup", { label: `trained checkpoints under ${r && r.root ? r.root : "--models"}` },
    text.map((m) => html("option", { value: m.name,
      text: `${m.name} (${m.task}, ${m.layers}x${m.bidirectional ? "bi" : ""}${(m.cell || "").toUpperCase()} ${m.hidden})` })));
  sel.replaceChildren(toys, trained);
  sel.value = "toy:lstm";
  setupUnroller();
  setupBackward();
  setupNeurons();
  setupVanishing();
  setupPages(models);
  setupSpeech(models);
  document.getElementById("models-root").textContent = r && r.root ? r.root : "(none: start with --models DIR)";
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "1";
}

start();
