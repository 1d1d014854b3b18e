// JSON API calls; errors show as one readable line in the status bar.
export function setStatus(msg, error = false) {
  const s = document.getElementById("status");
  s.textContent = msg;
  s.className = error ? "error" : "";
}

export async function post(url, body) {
  return call(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

// A file (a WAV upload) as the request body.
export async function postFile(url, file) {
  return call(url, { method: "POST", headers: { "content-type": file.type || "application/octet-stream" }, body: file });
}

export async function get(url) {
  return call(url, {});
}

// The request fields as the page names them.
const FIELDS = { hidden: "hidden size", top_k: "top-k", top_p: "top-p", prime: "prime text", text: "text",
                 model: "model", beam: "beam", length: "length", temperature: "temperature", seed: "seed",
                 origin: "origin", history: "history", run: "run" };
const PHRASES = [
  [/^Input should be less than or equal to (.+)$/, "must be at most $1"],
  [/^Input should be greater than or equal to (.+)$/, "must be at least $1"],
  [/^Input should be less than (.+)$/, "must be below $1"],
  [/^Input should be greater than (.+)$/, "must be above $1"],
  [/^String should have at most (\d+) characters?$/, "must be at most $1 characters long"],
  [/^String should have at least 1 character$/, "must not be empty"],
  [/^String should have at least (\d+) characters$/, "must be at least $1 characters long"],
  [/^Input should be a valid integer.*$/, "must be a whole number"],
  [/^Input should be a valid number.*$/, "must be a number"],
  [/^Input should be a valid string.*$/, "must be text"],
  [/^Field required$/, "is missing"],
  [/^Extra inputs are not permitted$/, "is not a field this page sends"],
];

function phrase(field, msg) {
  const name = FIELDS[field] || field.replace(/_/g, " ");
  for (const [re, out] of PHRASES) if (re.test(msg)) return `${name} ${msg.replace(re, out)}`;
  return field ? `${name}: ${msg.charAt(0).toLowerCase()}${msg.slice(1)}` : msg;
}

// A 422 body as one sentence naming the fields: FastAPI's own list of errors ({loc, msg}) or this
// server's one line ("hidden: Input should be less than or equal to 16; text: ...").
export function validationSentence(detail) {
  const parts = Array.isArray(detail)
    ? detail.map((e) => phrase((e.loc || []).filter((x) => x !== "body" && x !== "query").join("."), e.msg || "invalid"))
    : String(detail).split("; ").map((p) => {
      const m = /^([\w.]+): (.*)$/.exec(p);
      return m ? phrase(m[1], m[2]) : p;
    });
  return parts.join("; ");
}

export function errorMessage(status, data) {
  const detail = data && data.detail !== undefined ? data.detail : "";
  if (status === 422) return validationSentence(detail);
  const text = typeof detail === "string" ? detail : validationSentence(detail);
  return status >= 500 ? `server error (${status}): ${text}` : text || `request failed (${status})`;
}

// Check number inputs against their own min / max before a request: the first out-of-range one
// shows "<data-name> must be between <min> and <max> <data-hint>" and is focused; false then.
export function checkInputs(...ids) {
  for (const id of ids) {
    const e = document.getElementById(id);
    if (!e || e.checkValidity()) continue;
    const range = e.min !== "" && e.max !== "" ? `between ${e.min} and ${e.max}`
      : e.min !== "" ? `at least ${e.min}` : `at most ${e.max}`;
    const whole = e.validity.stepMismatch || e.validity.badInput ? "a whole number " : "";
    setStatus(`${e.dataset.name || id} must be ${whole}${range}${e.dataset.hint ? " " + e.dataset.hint : ""}`, true);
    e.focus();
    return false;
  }
  return true;
}

async function call(url, init) {
  setStatus("working…");
  document.body.classList.add("busy");
  try {
    const r = await fetch(url, init);
    const data = await r.json().catch(() => ({ detail: r.statusText }));
    if (!r.ok) {
      setStatus(errorMessage(r.status, data), true);
      return null;
    }
    setStatus("");
    return data;
  } catch (e) {
    setStatus(`request failed: ${e}`, true);
    return null;
  } finally {
    document.body.classList.remove("busy");
  }
}
