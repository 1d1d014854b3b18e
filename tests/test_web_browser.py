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
