"""The classifier learns what it should, and only what order-blind models cannot."""

import torch
import torch.nn.functional as F

from seqlab.data import BucketBatcher, Vocab, build_tokenizer, pad_batch
from seqlab.data.synthetic import contrast_sentiment
from seqlab.models import ClassifierConfig, EncoderConfig, TextClassifier


def _encode(rows, vocab=None):
    tok = build_tokenizer("word")
    toks = [tok.tokenize(t) for t, _ in rows]
    vocab = vocab or Vocab.build(toks)
    labels = Vocab.labels(["negative", "positive"])
    seqs = [torch.tensor(vocab.encode(t)) for t in toks]
    return seqs, torch.tensor(labels.encode([lb for _, lb in rows])), vocab


def _train(model, seqs, y, epochs, lr=1e-2, bs=32):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    batches = BucketBatcher(seqs, y, bs, shuffle=True, seed=0)
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        model.train()
        for b in batches:
            loss = F.cross_entropy(model(b.ids, b.lengths), b.targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def _accuracy(model, seqs, y):
    ids, lengths = pad_batch(seqs, 0)
    with torch.no_grad():
        return (model(ids, lengths).argmax(1) == y).float().mean().item()


def _model(vocab, cell, pooling="last", hidden=32, bidirectional=False):
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=len(vocab), embed_dim=16, hidden=hidden, cell=cell, bidirectional=bidirectional)
    return TextClassifier(ClassifierConfig(enc, 2, pooling))


def test_overfits_32_examples():
    rows = contrast_sentiment(32, seed=5)
    seqs, y, vocab = _encode(rows)
    model = _train(_model(vocab, "lstm", bidirectional=True), seqs, y, epochs=60, bs=8)
    assert _accuracy(model, seqs, y) == 1.0


def test_loss_is_the_same_padded_or_alone():
    rows = contrast_sentiment(6, seed=1)
    seqs, y, vocab = _encode(rows)
    for pooling in ("last", "mean", "max"):
        model = _model(vocab, "gru", pooling, bidirectional=True).double().eval()
        ids, lengths = pad_batch(seqs, 0, pad_to=20)
        batch_losses = F.cross_entropy(model(ids, lengths), y, reduction="none")
        alone = torch.stack([F.cross_entropy(model(s[None], torch.tensor([len(s)])), y[i : i + 1])
                             for i, s in enumerate(seqs)])
        torch.testing.assert_close(batch_losses, alone, rtol=0, atol=1e-12)


def test_order_sensitive_task_needs_a_recurrent_model():
    """'X was dull but Y was brilliant' vs 'X was brilliant but Y was dull': same words, other label.
    An LSTM learns it; a mean-of-embeddings model sees identical bags and stays near chance."""
    train = contrast_sentiment(1500, seed=11, contrast_only=True)
    test = contrast_sentiment(400, seed=12, contrast_only=True)
    seqs, y, vocab = _encode(train)
    tseqs, ty, _ = _encode(test, vocab)
    lstm = _train(_model(vocab, "lstm"), seqs, y, epochs=6)
    bow = _train(_model(vocab, "none", "mean"), seqs, y, epochs=6)
    assert _accuracy(lstm, tseqs, ty) > 0.95
    assert _accuracy(bow, tseqs, ty) < 0.62
