"""Seq2seq model and decoding: masked attention, batched search, overfitting, teacher forcing."""

import random

import pytest
import torch

from seqlab.data.pairs import PairBatcher
from seqlab.decode.seq2seq_search import beam_search, decode, greedy_search, replace_unk
from seqlab.models.encoder import EncoderConfig
from seqlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, TeacherForcing, decoder_inputs, seq2seq_loss

torch.set_num_threads(1)
PAD, BOS, EOS = 0, 2, 3


def make_model(attention="additive", cell="gru", bidirectional=True, input_feed=False, seed=0, hidden=16,
               vocab=20, **kw) -> Seq2Seq:
    torch.manual_seed(seed)
    enc = EncoderConfig(vocab_size=vocab, embed_dim=12, hidden=hidden, cell=cell, bidirectional=bidirectional)
    cfg = Seq2SeqConfig(enc, vocab, dec_embed=12, dec_cell=cell, attention=attention, input_feed=input_feed, **kw)
    return Seq2Seq(cfg).eval()


def random_batch(lengths, vocab=20, seed=1):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(4, vocab, (n,), generator=g) for n in lengths]
    ids = torch.zeros(len(seqs), max(lengths), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    return seqs, ids, torch.tensor(lengths)


def toy_pairs(n, seed=0):
    """Reverse a random word sequence and map each word to another vocabulary (ids 4..13 -> 14..23)."""
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        s = [rng.randrange(4, 14) for _ in range(rng.randint(2, 6))]
        src.append(torch.tensor(s))
        tgt.append(torch.tensor([x + 10 for x in reversed(s)] + [EOS]))
    return src, tgt


@pytest.mark.parametrize("attention", ["dot", "general", "additive"])
@pytest.mark.parametrize("input_feed", [False, True])
def test_padding_gets_exactly_zero_attention(attention, input_feed):
    model = make_model(attention, input_feed=input_feed)
    _, src, lengths = random_batch([7, 3, 5, 1])
    tgt_in = torch.randint(4, 20, (4, 6))
    logits, attn = model(src, lengths, tgt_in)
    assert logits.shape == (4, 6, 20) and attn.shape == (4, 6, 7)
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(attn[b, :, n:], torch.zeros_like(attn[b, :, n:]))  # exactly 0, not small
        assert (attn[b, :, :n] > 0).all()
    torch.testing.assert_close(attn.sum(-1), torch.ones(4, 6))
    for h in decode(model, [src[b, :n] for b, n in enumerate(lengths.tolist())], beam=3, max_len=5,
                    return_attention=True):
        torch.testing.assert_close(h.attention.sum(-1), torch.ones(h.attention.shape[0]))


def test_one_call_over_all_steps_equals_stepping():
    """Teacher forcing 1 without input feeding runs all target steps in one call; it must match
    the step-by-step decoder fed the same gold tokens."""
    model = make_model("additive", cell="lstm")
    _, src, lengths = random_batch([6, 4, 2])
    tgt_in = torch.randint(4, 20, (3, 5))
    fast, fast_attn = model(src, lengths, tgt_in)
    mem, state = model.encode(src, lengths)
    steps, attn = [], []
    for t in range(5):
        lg, state, w = model.step(tgt_in[:, t], state, mem)
        steps.append(lg)
        attn.append(w)
    torch.testing.assert_close(fast, torch.stack(steps, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_attn, torch.stack(attn, 1), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("attention,cell,input_feed", [("additive", "gru", False), ("dot", "lstm", True),
                                                      ("none", "rnn", False)])
def test_batched_greedy_equals_one_sentence_at_a_time(attention, cell, input_feed):
    model = make_model(attention, cell=cell, input_feed=input_feed)
    seqs, src, lengths = random_batch([9, 2, 5, 7, 1, 4])
    batched = greedy_search(model, src, lengths, max_len=12, return_attention=attention != "none")
    for s, hb in zip(seqs, batched):
        alone = greedy_search(model, s[None], torch.tensor([len(s)]), max_len=12, return_attention=True)[0]
        assert hb.tokens == alone.tokens and hb.finished == alone.finished
        assert hb.score == pytest.approx(alone.score, abs=1e-4)
        if hb.attention is not None:
            torch.testing.assert_close(hb.attention, alone.attention, atol=1e-5, rtol=1e-4)


def test_batched_beam_equals_one_sentence_at_a_time():
    model = make_model("general", cell="gru")
    seqs, src, lengths = random_batch([8, 3, 6, 1])
    batched = beam_search(model, src, lengths, beam=4, max_len=10, alpha=0.7)
    for s, hb in zip(seqs, batched):
        alone = beam_search(model, s[None], torch.tensor([len(s)]), beam=4, max_len=10, alpha=0.7)[0]
        assert hb.tokens == alone.tokens and hb.score == pytest.approx(alone.score, abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_size_one_equals_greedy(seed):
    model = make_model("additive", seed=seed)
    _, src, lengths = random_batch([5, 8, 2, 6, 3], seed=seed)
    greedy = greedy_search(model, src, lengths, max_len=9, return_attention=True)
    beam1 = beam_search(model, src, lengths, beam=1, max_len=9, alpha=0.0, return_attention=True)
    for g, b in zip(greedy, beam1):
        assert g.tokens == b.tokens and g.finished == b.finished
        assert g.score == pytest.approx(b.score, abs=1e-5)
        torch.testing.assert_close(g.attention, b.attention)


def _train(model, src, tgt, steps, ratio=1.0, lr=0.01, batch=25):
    batches = PairBatcher(src, tgt, batch, PAD, shuffle=True, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses, step = [], 0
    while step < steps:
        for b in batches:
            logits, _ = model(b.ids, b.lengths, decoder_inputs(b.targets, BOS, PAD), ratio)
            loss = seq2seq_loss(logits, b.targets)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            step += 1
        batches.set_epoch(step)
    return losses


def test_overfits_50_pairs_to_exact_match_100_percent():
    src, tgt = toy_pairs(50)
    model = make_model("additive", vocab=24, hidden=32)
    _train(model, src, tgt, steps=300)
    hyps = decode(model, src, beam=1, max_len=10)
    exact = sum(h.tokens == t[:-1].tolist() and h.finished for h, t in zip(hyps, tgt))
    assert exact == 50
    assert all(h.tokens == t[:-1].tolist() for h, t in zip(decode(model, src, beam=5, max_len=10), tgt))


@pytest.mark.parametrize("ratio", [1.0, 0.0])
def test_teacher_forcing_one_and_zero_both_train(ratio):
    src, tgt = toy_pairs(50, seed=1)
    model = make_model("additive", vocab=24, hidden=32, seed=1)
    losses = _train(model, src, tgt, steps=60, ratio=ratio)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)


def test_teacher_forcing_schedules():
    assert TeacherForcing(0.9).ratio(1000) == 0.9
    lin = TeacherForcing(1.0, 0.2, "linear", 100)
    assert [lin.ratio(s) for s in (0, 50, 100, 500)] == pytest.approx([1.0, 0.6, 0.2, 0.2])
    exp = TeacherForcing(1.0, 0.0, "exponential", 100)
    vals = [exp.ratio(s) for s in (0, 10, 50, 100)]
    assert vals[0] == 1.0 and all(a > b for a, b in zip(vals, vals[1:])) and vals[-1] < 0.01
    with pytest.raises(ValueError):
        TeacherForcing(1.0, 0.5, "cosine", 10)
    timed = TeacherForcing(1.0, 0.5, "linear", 0)  # --time without epochs: no step count, the clock decides
    assert [timed.ratio(7, f) for f in (0.0, 0.5, 1.0, 1.5)] == pytest.approx([1.0, 0.75, 0.5, 0.5])
    assert lin.ratio(10, time_frac=0.5) == pytest.approx(0.6)  # whichever runs out first


@pytest.mark.parametrize("enc_layers,dec_layers,cell,dec_cell", [(2, 1, "lstm", "gru"), (1, 2, "gru", "lstm"),
                                                                 (2, 2, "gru", "rnn")])
def test_bridge_from_any_encoder_to_any_decoder(enc_layers, dec_layers, cell, dec_cell):
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=20, embed_dim=8, hidden=6, layers=enc_layers, cell=cell, bidirectional=True)
    model = Seq2Seq(Seq2SeqConfig(enc, 15, dec_embed=8, dec_hidden=10, dec_layers=dec_layers, dec_cell=dec_cell,
                                  attention="general")).eval()
    _, src, lengths = random_batch([4, 2])
    mem, state = model.encode(src, lengths)
    assert state.h.shape == (dec_layers, 2, 10) and mem.keys.shape == (2, 4, 12)
    assert (state.c is not None) == (dec_cell == "lstm")
    logits, attn = model(src, lengths, torch.full((2, 3), BOS))
    assert logits.shape == (2, 3, 15) and attn.shape == (2, 3, 4)


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="dot attention needs"):
        make_model("dot", dec_hidden=7)
    with pytest.raises(ValueError, match="needs an attention"):
        make_model("none", input_feed=True)
    with pytest.raises(ValueError, match="recurrent cell"):
        Seq2Seq(Seq2SeqConfig(EncoderConfig(vocab_size=5, cell="none"), 5))


def test_loss_ignores_padding_and_label_smoothing_raises_it():
    logits = torch.randn(2, 4, 9)
    targets = torch.tensor([[5, 6, EOS, -100], [7, EOS, -100, -100]])
    ref = torch.nn.functional.cross_entropy(torch.cat([logits[0, :3], logits[1, :2]]), torch.tensor([5, 6, 3, 7, 3]))
    torch.testing.assert_close(seq2seq_loss(logits, targets), ref)
    assert decoder_inputs(targets, BOS, PAD).tolist() == [[BOS, 5, 6, EOS], [BOS, 7, EOS, PAD]]
    sharp = torch.full((1, 1, 9), -20.0)
    sharp[0, 0, 5] = 20.0
    assert seq2seq_loss(sharp, torch.tensor([[5]]), 0.1) > seq2seq_loss(sharp, torch.tensor([[5]]))


def test_unk_replacement_takes_the_most_attended_source_word():
    attn = torch.tensor([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    assert replace_unk(["le", "<unk>", "<unk>"], ["the", "cat", "Zorglub"], attn) == ["le", "Zorglub", "the"]
    assert replace_unk(["<unk>"], ["x"], None) == ["<unk>"]
