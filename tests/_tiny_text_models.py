"""Tiny, barely trained text models of every task the backward view and saliency read (a second or
two each on one CPU thread): their gradients are checked, not their accuracy."""

from seqlab.pipelines import LM, Classifier, Tagger, Translator

QUIET = dict(epochs=1, batch=8, save_every=0, log=lambda s: None)
TEXTS = ["not good at all", "very good indeed", "good fun", "not bad at all", "bad film", "really bad"] * 4
LABELS = ["negative", "positive", "positive", "positive", "negative", "negative"] * 4
PAIRS = [("i am cold .", "j'ai froid ."), ("you are tall .", "tu es grand ."), ("he is cold .", "il a froid .")] * 6
TAGGED = [("Mary lives in Berlin .".split(), "B-PER O O B-LOC O".split()),
          ("Acme hired John Smith .".split(), "B-ORG O B-PER I-PER O".split()),
          ("Paris is big .".split(), "B-LOC O O O".split())] * 4


def tiny_models() -> dict:
    """name -> pipeline: a 2-layer LSTM classifier, a GRU language model (words), a bidirectional GRU
    translator with attention, a bidirectional LSTM CRF tagger, a bidirectional 2-layer RNN classifier."""
    return {
        "classify": Classifier.fit((TEXTS, LABELS), hidden=6, embed=8, layers=2, cell="lstm", **QUIET),
        "classify_bi_rnn": Classifier.fit((TEXTS, LABELS), hidden=5, embed=4, layers=2, cell="rnn",
                                          bidirectional=True, pooling="mean", **QUIET),
        "lm": LM.fit("\n".join(TEXTS) + "\n", level="word", cell="gru", hidden=8, embed=8, seq_len=6, **QUIET),
        "translate": Translator.fit(PAIRS, hidden=8, embed=8, bidirectional=True, cell="gru", **QUIET),
        "tag": Tagger.fit(TAGGED, hidden=6, embed=8, char_features="none", crf=True, **QUIET),
    }
