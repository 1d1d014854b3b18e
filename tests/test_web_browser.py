"""The unroller and the generation page in a real browser: the test starts `seqlab serve`'s app on a
free loopback port and drives Debian's headless Chromium with Playwright. Skips, saying why, only
where Playwright or a Chromium binary is missing (`make setup` installs both)."""

import json
import os
import random
import shutil
import socket
import threading
import time
import urllib.request

import pytest

from seqlab.cli import main
from seqlab.data.synthetic import contrast_sentiment, write_csv

WAIT = 90_000  # ms; generous, for a busy test machine
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)), None)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    if CHROMIUM is None:
        pytest.skip("no Chromium found at /usr/bin/chromium or on PATH (apt-get install chromium; `make setup` does)")
    import uvicorn

    from seqlab.web.app import create_app

    d = tmp_path_factory.mktemp("browser")
    write_csv(contrast_sentiment(48, seed=1), d / "train.csv")
    q = ["--embed", "8", "--hidden", "6", "--epochs", "1", "--batch", "16", "--save-every", "0", "--threads", "1"]
    assert main(["classify", "train", "--train", str(d / "train.csv"), *q, "--out", str(d / "models" / "clf")]) == 0
    rnd = random.Random(0)
    (d / "text.txt").write_text("\n".join(rnd.choice(["the cat sat.", "a dog ran."]) for _ in range(40)) + "\n")
    assert main(["lm", "train", "--data", str(d / "text.txt"), "--seq-len", "16", *q[:6], *q[8:],
                 "--batch", "4", "--out", str(d / "models" / "lm")]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(d / "models", loopback_only=True), host="127.0.0.1", port=port,
                                        log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def api(url, path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def test_unroller_and_generation_in_chromium(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    text = "the plot was not good"
    ref = api(server, "/api/unroll", {"model": "clf", "text": text})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(WAIT)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server + "/#unroller")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#unroll-model", "clf")
        page.fill("#unroll-text", text)
        page.click("#unroll-go")
        steps = page.locator("[data-testid=step]")
        expect(steps).to_have_count(ref["steps"], timeout=WAIT)
        assert ref["steps"] == 5 and steps.count() == 5
        top = ref["layers"][-1][0]["h"]  # the page opens on the top layer, forward direction
        for _ in range(3):
            page.click("#step-fwd")
        expect(page.locator("#step-label")).to_contain_text('t = 3 of 0..4: token "not"', timeout=WAIT)
        unit = page.locator("#h-current rect[data-unit='2']")
        assert float(unit.get_attribute("data-value")) == pytest.approx(top[3][2], abs=1e-6)
        page.click("#step-back")
        expect(page.locator("#step-label")).to_contain_text("t = 2 of", timeout=WAIT)
        assert float(unit.get_attribute("data-value")) == pytest.approx(top[2][2], abs=1e-6)
        assert page.locator(".step.future").count() == 2  # steps not yet taken are greyed
        expect(page.locator("[data-testid=returns-check]")).to_contain_text("outputs[0, 4, :6] == h_n[0]", timeout=WAIT)
        page.screenshot(path=str(tmp_path / "unroller.png"), full_page=True)

        page.goto(server + "/#generate")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#gen-model", "lm")
        page.fill("#gen-prime", "the")
        page.click("#gen-go")
        page.wait_for_selector("#gen-output b")
        got = page.text_content("#gen-output")
        want = api(server, "/api/generate", {"model": "lm", "prime": "the", "length": 200, "temperature": 0.8,
                                             "top_k": 0, "top_p": 1.0, "seed": 0})
        assert got == "the" + want["text"] and len(want["tokens"]) == 200
        page.screenshot(path=str(tmp_path / "generate.png"), full_page=True)
        browser.close()
    assert errors == []
    assert (tmp_path / "unroller.png").stat().st_size > 10_000 and (tmp_path / "generate.png").exists()


def _page(p, errors):
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(WAIT)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text
            else None)  # Chromium logs every 4xx fetch; those are the point here
    return browser, page


def test_arrow_keys_labels_and_errors_on_the_plain_url(server):
    """The URL `serve` prints (no #unroller): ← / → step; the labels count cells from 1 after h₀ = zeros;
    an out-of-range hidden size, a 422 and an unseen prime read as sentences naming the page's field."""
    from playwright.sync_api import expect, sync_playwright

    ref = api(server, "/api/unroll", {"model": "toy:lstm", "text": "not good at all", "hidden": 4})
    errors, unrolls = [], []
    with sync_playwright() as p:
        browser, page = _page(p, errors)
        page.on("request", lambda r: unrolls.append(r) if r.url.endswith("/api/unroll") else None)
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.evaluate("location.hash") == ""
        page.click("#unroll-go")  # the landing page's defaults: the LSTM toy on "not good at all"
        expect(page.locator("[data-testid=step]")).to_have_count(4, timeout=WAIT)
        label = page.locator("#step-label")
        expect(label).to_contain_text("t = 0 of 0..3", timeout=WAIT)
        name = lambda key: page.text_content(f"[data-testid=name-{key}]")  # noqa: E731
        assert page.locator("[data-testid=h-label]").all_text_contents() == ["h₁", "h₂", "h₃", "h₄"]
        assert page.locator("[data-testid=x-label]").all_text_contents() == ["x₁", "x₂", "x₃", "x₄"]
        assert [name(k) for k in ("x", "h-in", "c-in", "c-out", "h-out")] == ["x₁", "h₀", "c₀", "c₁", "h₁"]
        assert page.text_content("[data-testid=note-h-in]").startswith("h₀ = zeros")
        assert page.text_content("[data-testid=note-c-in]").startswith("c₀ = zeros")
        h = ref["layers"][0][0]["h"]
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("ArrowRight")
        expect(label).to_contain_text("t = 1 of 0..3: token \"good\"", timeout=WAIT)
        assert [name(k) for k in ("x", "h-in", "c-in", "c-out", "h-out")] == ["x₂", "h₁", "c₁", "c₂", "h₂"]
        assert "carried in from the previous step" in page.text_content("[data-testid=note-h-in]")
        prev = page.locator("#h-prev rect[data-unit='1']")  # h₁ read by cell 2 is cell 1's output
        assert float(prev.get_attribute("data-value")) == pytest.approx(h[0][1], abs=1e-6)
        page.keyboard.press("ArrowRight")
        expect(label).to_contain_text("t = 2 of", timeout=WAIT)
        page.keyboard.press("ArrowLeft")
        expect(label).to_contain_text("t = 1 of", timeout=WAIT)
        assert page.locator(".step.current").get_attribute("data-step") == "1"

        hidden = page.locator("#unroll-hidden")
        assert (hidden.get_attribute("min"), hidden.get_attribute("max")) == ("1", "16")
        n = len(unrolls)
        hidden.fill("20")
        page.click("#unroll-go")
        status = page.locator("#status")
        expect(status).to_have_text("hidden size must be between 1 and 16 for the toy cells", timeout=WAIT)
        assert status.get_attribute("class") == "error" and len(unrolls) == n  # refused before any request
        assert page.evaluate("document.getElementById('unroll-hidden').checkValidity()") is False
        hidden.fill("4")

        # this server's 422 line and FastAPI's own list of errors both read as one sentence
        page.evaluate("import('/static/api.js').then((m) => m.post('/api/generate', {model: 'lm', length: 900}))")
        expect(status).to_have_text("length must be at most 500", timeout=WAIT)
        said = page.evaluate("""import('/static/api.js').then((m) => m.errorMessage(422, {detail: [
            {type: 'less_than_equal', loc: ['body', 'hidden'], msg: 'Input should be less than or equal to 16',
             input: 20, ctx: {le: 16}},
            {type: 'missing', loc: ['body', 'text'], msg: 'Field required', input: {}}]}))""")
        assert said == "hidden size must be at most 16; text is missing"

        page.goto(server + "/#generate")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#gen-model", "lm")
        page.fill("#gen-prime", "Zé")  # neither is in "the cat sat." / "a dog ran."
        page.click("#gen-go")
        expect(status).to_contain_text("prime text has characters the model never saw", timeout=WAIT)
        assert "--" not in status.text_content() and "'é'" in status.text_content()
        browser.close()
    assert errors == []


def test_qa_abstains_in_words_and_forecast_legend_is_outside_the_data(server):
    """The QA page says "I don't know" (the rejected guess small underneath) and asks with "Ask"; the
    forecast chart's history and actual lines look different, legend included, and the legend sits
    above the plotted area. The answers are stubbed (no QA or forecast run is trained here)."""
    from playwright.sync_api import expect, sync_playwright

    listed = json.loads(urllib.request.urlopen(server + "/api/models").read())
    listed["models"] += [{"name": "qa", "task": "qa", "has_checkpoint": True, "has_metrics": False},
                         {"name": "tr", "task": "translate", "has_checkpoint": True, "has_metrics": False},
                         {"name": "fc", "task": "forecast", "has_checkpoint": True, "has_metrics": False}]
    qa = {"model": "qa", "task": "qa", "output": "kindergarten", "confidence": -1.052, "threshold": -0.089,
          "attention": None, "tokens": [], "src_tokens": [], "note": "a classify-mode QA model picks a training answer"}
    t = [f"2001-{i:02d}" for i in range(1, 13)]
    fc = {"model": "fc", "targets": ["y"], "origin": t[8], "horizon": 4, "history_times": t[:8],
          "history": [[v] for v in (1, 2, 3, 4, 5, 6, 7, 8)], "forecast_times": t[8:],
          "mean": [[v] for v in (9, 10, 11, 12)], "actual": [[v] for v in (9.5, 10.5, 10, 12.5)],
          "intervals": {"0.8": {"lo": [[8], [9], [10], [11]], "hi": [[10], [11], [12], [13]]},
                        "0.95": {"lo": [[7], [8], [9], [10]], "hi": [[11], [12], [13], [14]]}}}
    errors = []
    with sync_playwright() as p:
        browser, page = _page(p, errors)
        page.route("**/api/models", lambda route: route.fulfill(json=listed))
        page.route("**/api/seq2seq", lambda route: route.fulfill(json=qa))
        page.route("**/api/forecast", lambda route: route.fulfill(json=fc))
        page.goto(server + "/#translate")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#s2s-model", "tr")
        expect(page.locator("#s2s-go")).to_have_text("Translate", timeout=WAIT)
        page.select_option("#s2s-model", "qa")
        expect(page.locator("#s2s-go")).to_have_text("Ask", timeout=WAIT)
        page.fill("#s2s-text", "where do small children learn?")
        page.click("#s2s-go")
        answer = page.locator("[data-testid=s2s-answer]")
        expect(answer).to_have_text("I don't know", timeout=WAIT)
        how = page.text_content("[data-testid=s2s-how]")
        assert '"kindergarten"' in how and "-1.052 < threshold -0.089" in how
        assert "kindergarten" not in answer.text_content()
        size = lambda sel: float(page.eval_on_selector(sel, "e => parseFloat(getComputedStyle(e).fontSize)"))  # noqa: E731
        assert size("[data-testid=s2s-answer]") > size("[data-testid=s2s-how]")

        page.goto(server + "/#forecast")
        page.wait_for_selector("body[data-ready='1']")
        page.click("#fc-go")
        chart = page.locator("[data-testid=forecast]")
        expect(chart).to_have_count(1, timeout=WAIT)
        swatch = lambda n: chart.locator(f".legend-item[data-name='{n}'] .swatch")  # noqa: E731
        style = lambda n: (swatch(n).get_attribute("stroke"), swatch(n).get_attribute("stroke-dasharray"))  # noqa: E731
        assert style("history") != style("actual") and style("history")[0] != style("actual")[0]
        lines = {chart.locator("polyline.series").nth(i).locator("title").text_content():
                 chart.locator("polyline.series").nth(i).get_attribute("stroke") for i in range(3)}
        assert lines["history"] == style("history")[0] and lines["actual"] == style("actual")[0]
        area = chart.locator("rect.plotarea").bounding_box()
        names = ["history", "forecast", "actual", "95% interval", "80% interval"]
        assert chart.locator(".legend-item").count() == len(names)
        for n in names:
            box = chart.locator(f".legend-item[data-name='{n}']").bounding_box()
            assert box["y"] + box["height"] <= area["y"], n  # above the plotted area, not over the data
        browser.close()
    assert errors == []
