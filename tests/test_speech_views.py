"""A speech run outside training: exported to ONNX / TorchScript, drawn by `seqlab plot speech`, and served
by the speech page of `seqlab serve` (the tiny tone recogniser of test_speech_pipeline)."""

import numpy as np
import pytest
import torch

from seqlab.cli import main

pytest.importorskip("soundfile")
pytest.importorskip("jiwer")
from test_speech_pipeline import FAST, tones  # noqa: E402,F401  (the generated "words" and the fast settings)


@pytest.fixture(scope="module")
def run(tones, tmp_path_factory):  # noqa: F811
    """A trained CTC recogniser saved as a run directory (and its pipeline)."""
    from seqlab.pipelines import Recognizer

    out = tmp_path_factory.mktemp("speech-run") / "run"
    rec = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_where="index<2", out=out,
                         log=lambda s: None, **(FAST | {"layers": 2}))
    return out, rec


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_the_exported_acoustic_model_equals_torch_and_transcribes_the_same(run, tones, tmp_path, suffix):  # noqa: F811
    from seqlab.export.export import export
    from seqlab.export.runtime import Graphs
    from seqlab.pipelines import Recognizer

    out, rec = run
    r = export(out, tmp_path / f"asr{suffix}")
    assert r["task"] == "speech" and r["max_difference"] < 1e-4
    clips = sorted(tones.glob("*_0.wav")) + sorted(tones.glob("*_1.wav"))
    frames = rec.frames(clips)
    x = torch.nn.utils.rnn.pad_sequence(frames, batch_first=True)
    lengths = torch.tensor([len(f) for f in frames])
    with torch.no_grad():
        want, want_len = rec.model.eval()(x, lengths)
    got, got_len = Graphs(tmp_path / f"asr{suffix}").run("forward", x, lengths)
    assert torch.equal(got_len, want_len) and got.shape == want.shape
    valid = torch.arange(x.shape[1] // 3 + 1)[None, :] < want_len[:, None]
    assert float((got - want).abs()[valid].max()) < 1e-4
    exported = Recognizer.load(tmp_path / f"asr{suffix}")
    assert exported.predict(clips) == rec.predict(clips) == [p.name.split("_")[0] for p in clips]
    (a,), (b,) = exported.transcribe(clips[0], beam=4), rec.transcribe(clips[0], beam=4)
    assert a["text"] == b["text"] and [w["word"] for w in a["words"]] == [w["word"] for w in b["words"]]
    assert [w["confidence"] for w in a["words"]] == pytest.approx([w["confidence"] for w in b["words"]], abs=1e-5)
    with pytest.raises(Exception, match="checkpoint directory"):
        exported.inspect(clips[0])


def test_cli_export_of_a_speech_run_then_predict(run, tones, tmp_path, capsys):  # noqa: F811
    out, _ = run
    clip = str(sorted(tones.glob("ca_*_0.wav"))[0])
    assert main(["speech", "predict", "--model", str(out), clip]) == 0
    want = capsys.readouterr().out
    assert main(["export", "--model", str(out), "--out", str(tmp_path / "asr.onnx")]) == 0
    assert "task speech" in capsys.readouterr().out
    assert main(["speech", "predict", "--model", str(tmp_path / "asr.onnx"), clip]) == 0
    assert capsys.readouterr().out == want and want.startswith("ca\t")
    assert main(["speech", "predict", "--model", str(tmp_path / "asr.onnx"), clip, "--stream"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unidirectional" in err


def test_plot_speech_draws_four_panels_whose_alignment_spells_the_transcript(run, tones, tmp_path, capsys):  # noqa: F811
    import matplotlib.pyplot as plt

    from seqlab.viz.speech_plot import speech_figure

    out, rec = run
    clip = sorted(tones.glob("ba_*_0.wav"))[0]
    view = rec.inspect(clip)
    fig = speech_figure(view)
    axes = fig.axes
    assert len(axes) == 4
    titles = [ax.get_title() for ax in axes]
    assert titles[0].startswith("log-mel spectrogram") and titles[1].startswith("CTC posteriors")
    assert titles[2].startswith("decoded alignment") and titles[3].startswith("encoder hidden states")
    assert "both directions" in titles[3] and fig._suptitle.get_text() == "decoded: 'ba'"
    assert axes[0].images[0].get_array().shape == view["frames"].T.shape
    assert axes[3].images[0].get_array().shape == view["hidden"].T.shape
    labels = [t.get_text() for t in axes[2].texts]
    assert "".join(labels).replace("␣", " ") == view["text"] == rec.predict(clip) == "ba"
    assert len(axes[2].patches) == len(labels)  # one shaded segment per decoded label
    legend = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert legend[0] == "blank" and {"a", "b"} <= set(legend)
    blank = axes[1].lines[0].get_ydata()
    np.testing.assert_allclose(blank, np.exp(view["log_probs"][:, 0]), rtol=1e-6)
    plt.close(fig)
    png = tmp_path / "ba.png"
    assert main(["plot", "speech", "--model", str(out), "--wav", str(clip), "--out", str(png)]) == 0
    assert capsys.readouterr().out.startswith("ba\n") and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", "speech", "--model", str(out), "--wav", str(tmp_path / "none.wav"), "--out", str(png)]) == 2
    assert "no such audio file" in capsys.readouterr().err


def test_the_speech_api_returns_posteriors_and_an_alignment_that_spells_the_transcript(run, tones):  # noqa: F811
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from seqlab.web.app import create_app

    out, rec = run
    client = TestClient(create_app(out.parent))
    listed = client.get("/api/speech/clips", params={"model": "run"}).json()["clips"]
    assert listed and all(c.startswith("examples/") and c.endswith(".wav") for c in listed)
    clip = listed[0]
    r = client.post("/api/speech", json={"model": "run", "clip": clip})
    assert r.status_code == 200, r.text
    v = r.json()
    want = rec.inspect(out / clip)
    assert v["text"] == want["text"] == rec.predict(out / clip) == clip.split("/")[1].split("_")[0]
    probs = np.array(v["probs"])
    np.testing.assert_allclose(probs, np.exp(want["log_probs"]), atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert np.array(v["frames"]).shape == want["frames"].shape and np.array(v["hidden"]).shape == want["hidden"].shape
    assert "".join(a["label"] for a in v["alignment"]).replace("␣", " ") == v["text"]
    assert all(0 <= a["start"] < a["end"] <= len(probs) * v["step_s"] + 1e-9 for a in v["alignment"])
    assert v["units"][0] == "<blank>" and v["words"][0]["word"] == v["text"]
    up = client.post("/api/speech/upload", params={"model": "run"}, content=(out / clip).read_bytes(),
                     headers={"content-type": "audio/wav"})
    assert up.status_code == 200 and up.json()["probs"] == v["probs"] and up.json()["source"] == "upload"
    bad = client.post("/api/speech/upload", params={"model": "run"}, content=b"RIFF....not a wav at all")
    assert bad.status_code == 400 and "the uploaded file" in bad.json()["detail"]
    assert "seqlab-upload" not in bad.json()["detail"]
    assert client.post("/api/speech", json={"model": "run", "clip": "../run/best/config.json"}).status_code == 403
    assert client.post("/api/speech", json={"model": "run", "clip": "best/vocab.json"}).status_code == 404
    assert client.post("/api/speech", json={"model": "nope", "clip": clip}).status_code == 404
    big = client.post("/api/speech/upload", params={"model": "run"}, content=b"\0" * (3 * 1024 * 1024))
    assert big.status_code == 413
    assert client.post("/api/tag", json={"model": "run", "text": "x" * 70_000}).status_code == 413  # others: 64 KiB


def test_the_speech_page_in_chromium(run, tmp_path):
    """Pick a clip of the run, then upload one: the transcript, the alignment's labels and every panel drawn."""
    import os
    import shutil
    import socket
    import threading
    import time

    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    chromium = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)), None)
    if chromium is None:
        pytest.skip("no Chromium found at /usr/bin/chromium or on PATH (apt-get install chromium; `make setup` does)")
    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from seqlab.web.app import create_app

    out, rec = run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(out.parent, loopback_only=True), host="127.0.0.1", port=port,
                                        log_level="error"))
    threading.Thread(target=srv.run, daemon=True).start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    errors = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{port}/#speech")
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_selector("#sp-clip option[value^='examples/']", state="attached")
            clip = page.locator("#sp-clip").input_value()
            want = rec.inspect(out / clip)
            page.click("#sp-go")
            expect(page.locator("[data-testid=sp-text]")).to_have_text(want["text"])
            segments = page.locator("[data-testid=sp-alignment] .segment")
            assert [segments.nth(i).get_attribute("data-label") for i in range(segments.count())] == list(want["text"])
            frames, dim = want["frames"].shape
            assert page.locator("[data-testid=sp-spectrogram] rect.cell").count() == frames * dim
            assert page.locator("[data-testid=sp-hidden] rect.cell").count() == want["hidden"].size
            assert page.locator("[data-testid=sp-posteriors] .series").count() >= 3  # blank + the letters
            other = next(p for p in sorted((out / "examples").glob("*.wav")) if p.name.split("_")[0] != want["text"])
            page.set_input_files("#sp-file", str(other))
            page.click("#sp-upload")
            expect(page.locator("[data-testid=sp-text]")).to_have_text(rec.predict(other))
            page.screenshot(path=str(tmp_path / "speech.png"), full_page=True)
            browser.close()
    finally:
        srv.should_exit = True
    assert errors == [] and (tmp_path / "speech.png").stat().st_size > 10_000


def test_a_classifier_head_run_exports_as_a_classifier_over_frames(tones, tmp_path):  # noqa: F811
    from seqlab.export.export import export
    from seqlab.pipelines import Recognizer

    clf = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_speaker="x", head="classify",
                         out=tmp_path / "clf", log=lambda s: None, **(FAST | {"epochs": 12}))
    assert export(tmp_path / "clf", tmp_path / "clf.onnx")["max_difference"] < 1e-4
    clips = sorted(tones.glob("*_1.wav"))
    again = Recognizer.load(tmp_path / "clf.onnx")
    assert again.head == "classify" and again.predict(clips) == clf.predict(clips)
