"""The gradient views in a real browser (Playwright + Debian's headless Chromium, as in
test_web_browser.py): pick an output, move the vanishing demo's slider, select a span, click a unit;
what the page draws equals what the API returns. Skips where Playwright or Chromium is missing."""

import json
import os
import shutil
import socket
import threading
import time
import urllib.request

import pytest
from _tiny_text_models import LABELS, QUIET, TEXTS

WAIT = 90_000
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)), None)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    if CHROMIUM is None:
        pytest.skip("no Chromium found at /usr/bin/chromium or on PATH (apt-get install chromium)")
    import uvicorn

    from seqlab.pipelines import Classifier
    from seqlab.web.app import create_app

    d = tmp_path_factory.mktemp("bwbrowser")
    Classifier.fit((TEXTS, LABELS), hidden=6, embed=8, layers=2, cell="lstm", **QUIET).save(d / "clf" / "best")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(d, loopback_only=True), host="127.0.0.1", port=port,
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


def test_backward_saliency_neurons_and_vanishing_pages(server):
    from playwright.sync_api import expect, sync_playwright

    text = "not good at all"
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
        expect(page.locator("[data-testid=bw-step]")).to_have_count(4)

        page.select_option("#bw-position", "0")  # pick an output: p(positive)
        page.fill("#bw-target", "positive")
        page.select_option("#bw-measure", "prob")
        page.click("#bw-go")
        expect(page.locator("[data-testid=bw-what]")).to_contain_text("p(positive)")
        ref = api(server, "/api/backward", {"model": "clf", "text": text, "position": 0, "target": "positive",
                                            "measure": "prob"})
        top = ref["layers"][-1][0]["norm"]
        assert [float(v) for v in page.locator("[data-testid=bw-step]").evaluate_all(
            "els => els.map(e => e.dataset.dh)")] == top["dh"]
        assert [float(v) for v in page.locator("[data-testid=bw-step]").evaluate_all(
            "els => els.map(e => e.dataset.dc)")] == top["dc"]
        sal = api(server, "/api/saliency", {"model": "clf", "text": text, "position": 0, "target": "positive",
                                            "measure": "prob"})
        expect(page.locator("[data-testid=sal-ig]")).to_have_count(4)
        assert [float(v) for v in page.locator("[data-testid=sal-ig]").evaluate_all(
            "els => els.map(e => e.dataset.value)")] == sal["ig"]

        page.locator("[data-testid=nr-token]").nth(0).click()  # select a span, find its units
        page.locator("[data-testid=nr-token]").nth(1).click(modifiers=["Shift"])
        page.click("#nr-find")
        expect(page.locator("[data-testid=nr-unit]")).to_have_count(5)
        match = api(server, "/api/neurons/match", {"model": "clf", "text": text, "start": 0, "end": 2, "layer": 1,
                                                   "k": 5})
        assert [int(u) for u in page.locator("[data-testid=nr-unit]").evaluate_all(
            "els => els.map(e => e.dataset.unit)")] == [u["unit"] for u in match["units"]]
        page.locator("#h-current rect.cell").nth(3).click()  # click a unit: its trace over time
        page.wait_for_selector("[data-testid=nr-trace]")
        got = json.loads(page.locator("#nr-result svg").get_attribute("data-values"))
        assert got == api(server, "/api/neurons/trace", {"model": "clf", "text": text, "layer": 1, "unit": 3})["values"]

        page.goto(server + "/#gradients")  # the slider: the curve follows it
        page.wait_for_selector("[data-testid=vanishing]")
        page.locator("#van-rho").fill("1.5")
        page.locator("#van-rho").dispatch_event("input")
        expect(page.locator("#van-plot")).to_have_attribute("data-rho", "1.5")
        want = api(server, "/api/vanishing", {"cells": ["rnn", "lstm", "gru"], "rho": 1.5, "length": 60,
                                              "hidden": 32, "gate_bias": 1.0})
        last = json.loads(page.locator("#van-plot").get_attribute("data-last"))
        assert last == {c: v["norms"][-1] for c, v in want["cells"].items()}
        assert not errors, errors
        browser.close()
