"""Language modelling: stream batching, carried-state evaluation, incremental sampling, the CLI."""

import json
import math
import random
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.cli import main
from seqlab.data.streams import StreamBatcher
from seqlab.decode import filter_logits, generate, sample_next
from seqlab.errors import UserError
from seqlab.models.encoder import EncoderConfig
from seqlab.models.language_model import LanguageModel, LMConfig, sequence_nll
from seqlab.pipelines.lm import LM as LMPipeline

torch.set_num_threads(1)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 300), batch=st.integers(1, 9), seq_len=st.integers(1, 40))
def test_streams_serve_every_target_once_in_order(n, batch, seq_len):
    ids = torch.arange(1000, 1000 + n)
    if (n - 1) // batch < 1:
        with pytest.raises(UserError, match="too few for"):
            StreamBatcher(ids, batch, seq_len)
        return
    sb = StreamBatcher(ids, batch, seq_len)
    for epoch in (0, 1):
        sb.set_epoch(epoch)
        chunks = list(sb)
        assert len(chunks) == len(sb)
        assert all(c.ids.shape == c.targets.shape and c.ids.shape[0] == batch and c.lengths is None for c in chunks)
        assert int(chunks[0].index[0]) == 0 and all(int(c.index[0]) > 0 for c in chunks[1:])
        inputs, targets = torch.cat([c.ids for c in chunks], 1), torch.cat([c.targets for c in chunks], 1)
        L = sb.stream_len
        for r in range(batch):  # each row is one contiguous stretch of the text, read in order
            assert torch.equal(inputs[r], ids[r * L:(r + 1) * L])
            assert torch.equal(targets[r], ids[r * L + 1:(r + 1) * L + 1])
        assert sorted(targets.flatten().tolist()) == ids[1:batch * L + 1].tolist()  # every target once
        assert n - 1 - batch * L < batch  # only a remainder too short for a row is left out
        for c in chunks:
            assert torch.equal(c.ids, ids[c.index[:, None] + torch.arange(c.ids.shape[1])])


def _lm(cell="lstm", layers=2, vocab=23, **kw):
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=vocab, embed_dim=12, hidden=12, layers=layers, cell=cell, **kw)
    return LanguageModel(LMConfig(enc, tie_weights=True, dropout=0.2)).eval()


@pytest.mark.parametrize("cell,kw", [("lstm", {}), ("gru", {}), ("rnn", {}),
                                     ("lstm", {"residual": True, "layer_norm": True})])
def test_carried_state_over_chunks_equals_one_call(cell, kw):
    model = _lm(cell, **kw).double()
    ids = torch.randint(4, 23, (97,), generator=torch.Generator().manual_seed(1))
    whole, n = sequence_nll(model, ids, chunk=10_000)
    for chunk in (1, 7, 50):
        total, m = sequence_nll(model, ids, chunk=chunk)
        assert m == n == 96 and math.isclose(total, whole, rel_tol=1e-12)
    with torch.no_grad():  # and the logits themselves, chunk by chunk with the state carried
        full, _ = model(ids[None])
        state, parts = None, []
        for s in range(0, 97, 13):
            out, state = model(ids[None, s:s + 13], state)
            parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=0, atol=1e-12)
    assert model.decoder.weight is model.encoder.embedding.weight  # embed == hidden: tied


def test_filter_logits_top_k_and_nucleus():
    z = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = lambda **kw: torch.isfinite(filter_logits(z, **kw))[0].tolist()  # noqa: E731
    assert kept(top_k=2) == [True, True, False, False]
    assert kept(top_p=0.8) == [True, True, False, False]
    assert kept(top_p=0.81) == [True, True, True, False]
    assert kept(top_p=0.01) == [True, False, False, False]
    assert kept(top_k=0, top_p=1.0) == [True] * 4
    for bad in ({"top_p": 0.0}, {"top_p": 1.5}, {"top_k": -1}):
        with pytest.raises(ValueError):
            filter_logits(z, **bad)
    with pytest.raises(ValueError):
        generate(_lm(), [5], 3, temperature=0.0)


def test_incremental_generation_equals_rerunning_the_prefix():
    model = _lm("lstm").double()
    prime, kw = [5, 9, 4, 11], {"temperature": 0.8, "top_k": 6, "top_p": 0.95}
    got = generate(model, prime, 25, num=3, generator=torch.Generator().manual_seed(3), **kw)
    gen, seq = torch.Generator().manual_seed(3), torch.tensor([prime] * 3)
    with torch.no_grad():
        for _ in range(25):  # the slow way: read the whole prefix again for every new token
            logits, _ = model(seq)
            seq = torch.cat([seq, sample_next(logits[:, -1], generator=gen, **kw)[:, None]], 1)
    assert got.shape == (3, 25) and torch.equal(got, seq[:, len(prime):])
    assert not torch.equal(got[0], got[1])  # the samples differ from each other
    again = generate(model, prime, 25, num=3, generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(got, again)
    greedy = generate(model, prime, 25, num=2, greedy=True)
    top1 = generate(model, prime, 25, num=2, top_k=1, generator=torch.Generator().manual_seed(9))
    assert torch.equal(greedy, top1) and torch.equal(greedy[0], greedy[1])


TINY = ["--embed", "48", "--hidden", "48", "--seq-len", "24", "--batch", "8", "--dropout", "0",
        "--save-every", "0", "--patience", "0", "--lr", "0.01"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    lines = ["the cat sat on the mat.", "a dog ran in the fog.", "we sing all day long."]
    rnd = random.Random(0)
    (d / "text.txt").write_text("\n".join(rnd.choice(lines) for _ in range(330)) + "\n")
    return d


@pytest.fixture(scope="module")
def run(corpus):
    out = corpus / "run"
    assert main(["lm", "train", "--data", str(corpus / "text.txt"), *TINY, "--epochs", "7", "--out", str(out)]) == 0
    return out


def test_a_tiny_char_lm_learns_far_below_the_unigram_entropy(run, corpus, capsys):
    steps = json.loads((run / "results.json").read_text())["steps"]
    assert steps >= 250
    capsys.readouterr()
    assert main(["lm", "eval", "--model", str(run), "--data", str(corpus / "text.txt"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    ids = LMPipeline.load(run).encode((corpus / "text.txt").read_text())
    p = torch.bincount(ids).double()
    p = p[p > 0] / p.sum()
    unigram = float(-(p * p.log2()).sum())
    assert unigram > 3.5 and m["bits_per_char"] < 0.25 * unigram, (m, unigram)
    assert math.isclose(m["perplexity"], math.exp(m["loss"])) and m["unk_rate"] == 0


def test_cli_generate_streams_reproducible_samples(run, capsys):
    gen = ["lm", "generate", "--model", str(run), "--length", "40"]
    outs = []
    for _ in range(2):
        capsys.readouterr()
        assert main(gen + ["--prime", "the c", "--seed", "4", "--top-p", "0.9"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0].startswith("the c") and len(outs[0]) == len("the c") + 40 + 1
    assert main(gen + ["--greedy", "--prime", "the c"]) == 0
    assert capsys.readouterr().out.startswith("the cat sat on the mat.")
    assert main(gen + ["--num", "3", "--seed", "1", "--temperature", "0.5"]) == 0
    assert capsys.readouterr().out.count("=== sample") == 3


def test_word_level_maps_unknown_prime_words_to_unk(corpus, capsys):
    out = corpus / "words"
    assert main(["lm", "train", "--data", str(corpus / "text.txt"), "--level", "word", *TINY, "--epochs", "1",
                 "--out", str(out)]) == 0
    pipe = LMPipeline.load(out)
    assert pipe.encode_prime("the zebra") == [pipe.vocab.eos_id, pipe.vocab.stoi["the"], pipe.vocab.unk_id]
    capsys.readouterr()
    assert main(["lm", "generate", "--model", str(out), "--prime", "the zebra", "--length", "5", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("the zebra ")


def test_bad_input_is_one_clear_line(run, corpus, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "short.txt").write_text("the cat sat on the mat.\n" * 3)
    train = ["lm", "train", *TINY, "--out", str(tmp_path / "out"), "--data"]
    gen = ["lm", "generate", "--model", str(run), "--prime", "the", "--temperature"]
    cases = [
        (train + [str(tmp_path / "empty.txt")], "empty.txt: the file is empty"),
        (train + [str(tmp_path / "short.txt")], r"short.txt: the training text has \d+ char tokens, fewer than one"),
        (train + [str(corpus / "text.txt"), "--bidirectional"], "--bidirectional"),
        (gen + ["0"], "--temperature must be greater than 0"),
        (gen + ["-1"], "--temperature must be greater than 0"),
        (gen + ["1", "--top-p", "0"], r"--top-p must be in \(0, 1\]"),
        (gen + ["1", "--top-p", "1.5"], r"--top-p must be in \(0, 1\]"),
        (["lm", "generate", "--model", str(run), "--prime", "the Xylo€"],
         r"--prime has characters the model never saw in training \('X', '€'\)"),
        (["classify", "predict", "--model", str(run), "hi"], "is a 'lm' checkpoint, not 'classify'"),
    ]
    for argv, msg in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("seqlab: error: ") and len(err.strip().splitlines()) == 1, err
        assert re.search(msg, err), (msg, err)
        assert not (tmp_path / "out").exists(), "a failed run left output behind"


def test_training_step_carries_the_state_detached_and_resets_each_epoch():
    from seqlab.pipelines.lm import CarriedStateStep

    model = _lm("lstm", layers=1)
    ids = torch.randint(4, 23, (200,), generator=torch.Generator().manual_seed(2))
    chunks = list(StreamBatcher(ids, 4, 10))
    step = CarriedStateStep()
    loss0 = step(model, chunks[0])
    state = step.state
    assert not state[0].requires_grad and state[0].shape == (1, 4, 12)
    with torch.no_grad():
        _, expect = model(chunks[0].ids)
        logits, _ = model(chunks[1].ids, expect)
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 23), chunks[1].targets.reshape(-1))
    loss1 = step(model, chunks[1])  # starts from chunk 0's final state, not from zeros
    torch.testing.assert_close(loss1, want)
    loss1.backward()  # the gradient stops at the chunk boundary (the carried state is a leaf)
    assert torch.equal(step(model, chunks[0]), loss0)  # a new epoch: zeros again


def test_resume_inside_an_epoch_continues_the_carried_state(tmp_path):
    from seqlab.pipelines.lm import CarriedStateStep
    from seqlab.train import TrainConfig, Trainer

    ids = torch.randint(4, 23, (400,), generator=torch.Generator().manual_seed(5))

    class Killed(CarriedStateStep):
        def __init__(self, at):
            super().__init__()
            self.calls, self.at = 0, at

        def __call__(self, model, batch):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            return super().__call__(model, batch)

    def fit(out, at=0, resume=False):
        torch.manual_seed(0)
        model = _lm("lstm", layers=2)
        cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-2, save_every=0, seed=3, device="cpu")
        Trainer(model, cfg, out, Killed(at), None, log=lambda s: None).fit(StreamBatcher(ids, 4, 10), resume)
        return model.state_dict()

    whole = fit(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "b", at=6)  # inside the first epoch (10 chunks), with a carried state
    resumed = fit(tmp_path / "b", resume=True)
    for k, v in whole.items():
        assert torch.equal(v, resumed[k]), k


def test_a_fresh_tied_model_starts_near_uniform():
    """N(0, 1) embeddings used as output weights would give logits of size ~sqrt(hidden) at step 0
    (a loss far above ln(vocab) and slow learning); the model starts near the uniform distribution."""
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(EncoderConfig(vocab_size=70, embed_dim=256, hidden=256), tie_weights=True))
    ids = torch.randint(4, 70, (8, 50))
    with torch.no_grad():
        logits, _ = model(ids)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 70), ids.reshape(-1))
    assert logits.std() < 0.5 and abs(float(loss) - math.log(70)) < 0.1
    assert model.decoder.weight is model.encoder.embedding.weight
    assert torch.all(model.encoder.embedding.weight[0] == 0)  # the PAD row
