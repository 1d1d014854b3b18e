"""Export to TorchScript and ONNX: every task's graphs equal the eager model to 1e-5 on padded batches
of 1 and 7 sequences at two lengths, and `predict` through an exported file prints what it prints
from the checkpoint directory."""

from __future__ import annotations

import json

import pytest
import torch

from seqlab.cli import main
from seqlab.export.export import eager_model, export
from seqlab.export.graphs import sample_inputs, specs
from seqlab.export.runtime import Graphs
from seqlab.models.classifier import ClassifierConfig
from seqlab.models.encoder import EncoderConfig
from seqlab.models.forecaster import ForecasterConfig
from seqlab.models.language_model import LMConfig
from seqlab.models.seq2seq import Seq2SeqConfig
from seqlab.models.tagger import TaggerConfig
from seqlab.train import TrainConfig, save_checkpoint
from seqlab.train.checkpoint import task_meta


def enc(**kw) -> EncoderConfig:
    return EncoderConfig(**{"vocab_size": 23, "embed_dim": 6, "hidden": 5, **kw})


MODELS = {  # name: (task, model config, data)
    "classify-bilstm-last": ("classify", ClassifierConfig(enc(cell="lstm", layers=2, bidirectional=True), 3), {}),
    "classify-lstm-max-bag": ("classify", ClassifierConfig(enc(cell="lstm"), 2, "max", bag=True, bag_buckets=31),
                                        {}),
    "classify-lstm-concat-backward": ("classify", ClassifierConfig(enc(cell="lstm", layers=2), 2, "concat",
                                                                   backward=True), {}),
    "classify-features-gru-mean": ("classify", ClassifierConfig(enc(vocab_size=0, input_dim=3, cell="gru",
                                                                    residual=True, layer_norm=True), 2, "mean"), {}),
    "lm-lstm-2layers": ("lm", LMConfig(enc(cell="lstm", layers=2, embed_dim=5)), {}),
    "lm-gru": ("lm", LMConfig(enc(cell="gru")), {}),
    "translate-bigru-additive": ("translate", Seq2SeqConfig(enc(cell="gru", bidirectional=True), 19, 6), {}),
    "translate-lstm-general-feed": ("translate", Seq2SeqConfig(enc(cell="lstm", layers=2), 19, 6, dec_cell="lstm",
                                                               dec_layers=2, attention="general", input_feed=True), {}),
    "qa-gru-none": ("qa", Seq2SeqConfig(enc(cell="gru"), 19, 6, attention="none"), {"mode": "seq2seq"}),
    "tag-charlstm-crf-case": ("tag", TaggerConfig(enc(vocab_size=0, input_dim=6 + 4 + 8, bidirectional=True), 23, 6, 5,
                                                  "lstm", 12, 3, 4, 8, crf=True), {}),
    "tag-lm-forward-backward": ("tag", TaggerConfig(enc(vocab_size=0, input_dim=6 + 5 + 5, bidirectional=True), 23, 6,
                                                    5, lm=enc(), lm_back=enc(cell="gru")), {}),
    "tag-charcnn": ("tag", TaggerConfig(enc(vocab_size=0, input_dim=6 + 4, cell="gru"), 23, 6, 5, "cnn", 12, 3, 4), {}),
    "forecast-direct-gaussian": ("forecast", ForecasterConfig(enc(vocab_size=0, input_dim=1), 1, 0, 4), {}),
    "forecast-seq2seq-covariates": ("forecast", ForecasterConfig(enc(vocab_size=0, input_dim=3, cell="gru"), 1, 2, 4,
                                                                 "seq2seq", "none", "mean"), {}),
    "forecast-window-norm-season": ("forecast", ForecasterConfig(enc(vocab_size=0, input_dim=1), 1, 0, 6,
                                                                 window_norm="season", season=12), {}),
    "forecast-window-scaled-median": ("forecast", ForecasterConfig(enc(vocab_size=0, input_dim=1, cell="gru"), 1, 0, 4,
                                                                   ensemble=3, input_scale="window", point="median"),
                                      {}),
}


def checkpoint(tmp_path, name: str):
    task, cfg, data = MODELS[name]
    torch.manual_seed(0)
    config = {"task": task, "model": cfg.to_json(), "data": data}
    _, model = eager_model(config)
    path = tmp_path / name
    save_checkpoint(path, model, task_meta(task, cfg.to_json(), data, TrainConfig(), {}))
    return path, model


@pytest.mark.parametrize("name", list(MODELS))
def test_exported_graphs_equal_the_eager_model(tmp_path, name):
    path, model = checkpoint(tmp_path, name)
    kind, _ = eager_model(json.loads((path / "config.json").read_text()))
    model.eval()
    eager = {g.name: g.module for g in specs(kind, model)}
    for suffix in (".onnx", ".pt"):
        out = tmp_path / f"m{suffix}"
        assert export(path, out)["max_difference"] < 1e-5
        graphs = Graphs(out)
        for batch in (1, 7):
            for time in (4, 9):
                for graph, args in sample_inputs(kind, model, batch, time, seed=time).items():
                    with torch.no_grad():
                        want = eager[graph](*args)
                    got = graphs.run(graph, *args)
                    assert len(got) == len(want)
                    for w, g in zip(want, got):
                        assert g.shape == w.shape, (suffix, graph, batch, time)
                        assert torch.allclose(g.to(w.dtype), w, atol=1e-5, rtol=0), (suffix, graph, batch, time)


def _tiny_classifier(tmp_path):
    rows = "".join(f"{'good fine great' if i % 2 else 'bad awful poor'} film {i},{'pos' if i % 2 else 'neg'}\n"
                   for i in range(40))
    (tmp_path / "t.csv").write_text("text,label\n" + rows)
    assert main(["classify", "train", "--train", str(tmp_path / "t.csv"), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--hidden", "8", "--embed", "8", "--device", "cpu", "--bidirectional"]) == 0
    return tmp_path / "run"


def test_cli_export_then_predict_prints_what_the_checkpoint_prints(tmp_path, capsys):
    run = _tiny_classifier(tmp_path)
    texts = ["good film", "an awful , poor film with unknown words", "great"]
    capsys.readouterr()
    assert main(["classify", "predict", "--model", str(run), "--json", *texts]) == 0
    want = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for name in ("m.onnx", "m.pt"):
        assert main(["export", "--model", str(run), "--out", str(tmp_path / name)]) == 0
        assert "largest difference" in capsys.readouterr().out
        assert main(["classify", "predict", "--model", str(tmp_path / name), "--json", *texts]) == 0
        got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [g["label"] for g in got] == [w["label"] for w in want]
        for g, w in zip(got, want):
            for k in w["probs"]:
                assert abs(g["probs"][k] - w["probs"][k]) < 1e-5


def test_exported_file_of_another_task_and_bad_names_are_user_errors(tmp_path, capsys):
    path, _ = checkpoint(tmp_path, "lm-gru")
    assert main(["export", "--model", str(path), "--out", str(tmp_path / "lm.onnx")]) == 0
    capsys.readouterr()
    assert main(["classify", "predict", "--model", str(tmp_path / "lm.onnx"), "hello"]) == 2
    assert "is a 'lm' model, not 'classify'" in capsys.readouterr().err
    assert main(["export", "--model", str(path), "--out", str(tmp_path / "lm.bin")]) == 2
    assert "ending in .onnx" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_text("not a model")
    assert main(["lm", "generate", "--model", str(tmp_path / "junk.onnx")]) == 2
    assert "not a model written by `seqlab export`" in capsys.readouterr().err


def _pipelines(tmp_path) -> dict:
    """Checkpoints (random weights, real tokenizers and vocabularies) of lm, translate and tag."""
    from seqlab.data import Vocab, build_tokenizer
    from seqlab.models.language_model import LanguageModel
    from seqlab.models.seq2seq import Seq2Seq
    from seqlab.models.tagger import Tagger
    from seqlab.pipelines.lm import LM as LMPipeline
    from seqlab.pipelines.lm import text_tokens
    from seqlab.pipelines.seq2seq import Seq2SeqPipeline
    from seqlab.pipelines.tag import Tagger as TagPipeline

    torch.manual_seed(0)
    text = "the cat sat on the mat.\nthe dog ate the bone.\n"
    tok = build_tokenizer("char", text.split("\n"), False, 100)
    v = Vocab.build([text_tokens(tok, text)], 1, None)
    lm = LMPipeline(tok, v, LanguageModel(LMConfig(enc(vocab_size=len(v), cell="lstm", layers=2, embed_dim=8,
                                                       hidden=8))), {"level": "char", "encoding": "utf-8"})
    src, tgt = ["le chat dort .", "le chien mange ."], ["the cat sleeps .", "the dog eats ."]
    st, tt = build_tokenizer("word", src, False, 100), build_tokenizer("word", tgt, False, 100)
    sv, tv = Vocab.build([st.tokenize(s) for s in src], 1, None), Vocab.build([tt.tokenize(t) for t in tgt], 1, None)
    s2s = Seq2Seq(Seq2SeqConfig(enc(vocab_size=len(sv), cell="gru", bidirectional=True), len(tv), 6,
                                pad_id=tv.pad_id, bos_id=tv.bos_id, eos_id=tv.eos_id))
    tr = Seq2SeqPipeline("translate", st, tt, sv, tv, s2s, {"lowercase": True, "nfkc": False, "split_punct": True,
                                                            "max_src_len": 20, "max_tgt_len": 8})
    words = Vocab.build([["john", "lives", "in", "paris"]], 1, None)
    chars, tags = Vocab.build(list("JohnlivesParis")), Vocab.labels(["NNP", "VBZ", "IN"])
    tagger = Tagger(TaggerConfig(enc(vocab_size=0, input_dim=6 + 4 + 8, bidirectional=True), len(words), 6, len(tags),
                                 "lstm", len(chars), 3, 4, 8, crf=True))
    tag = TagPipeline(words, chars, tags, tagger, {"scheme": "none", "model_scheme": "none", "lowercase": True,
                                                   "encoding": "utf-8", "format": "conll", "word_col": None,
                                                   "tag_col": None})
    for name, pipe in (("lm", lm), ("translate", tr), ("tag", tag)):
        save_checkpoint(tmp_path / name, pipe.model, pipe.meta(TrainConfig()))
    return {"lm": ["lm", "generate", "--prime", "the", "--length", "40", "--greedy"],
            "translate": ["translate", "predict", "--beam", "3", "le chat mange .", "le chien dort le chat"],
            "tag": ["tag", "predict", "John lives in Paris", "Paris lives"]}


def test_predict_commands_print_the_same_through_exported_models(tmp_path, capsys):
    commands = _pipelines(tmp_path)
    y = [10 + 5 * __import__("math").sin(i / 2) for i in range(60)]
    (tmp_path / "s.csv").write_text("y\n" + "".join(f"{v:.4f}\n" for v in y))
    assert main(["forecast", "train", "--data", str(tmp_path / "s.csv"), "--no-time", "--target", "y", "--test", "8",
                 "--horizon", "4", "--lookback", "12", "--out", str(tmp_path / "forecast"), "--hidden", "8",
                 "--epochs", "1", "--save-every", "0", "--dev", "0"]) == 0
    commands["forecast"] = ["forecast", "predict"]  # the training series, from the model's settings
    for task, cmd in commands.items():
        capsys.readouterr()
        assert main([*cmd, "--model", str(tmp_path / task)]) == 0
        want = capsys.readouterr().out
        assert want.strip()
        for suffix in (".onnx", ".ts"):
            assert main(["export", "--model", str(tmp_path / task), "--out", str(tmp_path / f"{task}{suffix}")]) == 0
            capsys.readouterr()
            assert main([*cmd, "--model", str(tmp_path / f"{task}{suffix}")]) == 0
            assert capsys.readouterr().out == want, (task, suffix)
