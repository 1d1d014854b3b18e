// JSON API calls; errors show as one line in the status bar.
export function setStatus(msg, error = false) {
  const s = document.getElementById("status");
  s.textContent = msg;
  s.className = error ? "error" : "";
}

export async function post(url, body) {
  return call(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

export async function get(url) {
  return call(url, {});
}

async function call(url, init) {
  setStatus("working…");
  document.body.classList.add("busy");
  try {
    const r = await fetch(url, init);
    const data = await r.json().catch(() => ({ detail: r.statusText }));
    if (!r.ok) {
      setStatus(`${r.status}: ${typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)}`, true);
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
