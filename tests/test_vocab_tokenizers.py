import pytest

from seqlab.data import Vocab, build_tokenizer, tokenizer_from_json
from seqlab.data.vocab import BOS, EOS, PAD, UNK
from seqlab.errors import UserError


def test_vocab_specials_frequency_order_and_limits():
    v = Vocab.build([["b", "a", "a"], ["c", "a", "b"]], min_freq=1)
    assert v.itos[:4] == [PAD, UNK, BOS, EOS]
    assert v.itos[4:] == ["a", "b", "c"]  # by frequency, ties alphabetical
    assert Vocab.build([["b", "a", "a"], ["c", "a", "b"]], min_freq=2).itos[4:] == ["a", "b"]
    assert Vocab.build([["b", "a", "a"], ["c", "a", "b"]], max_size=5).itos[4:] == ["a"]
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)


def test_vocab_unknown_tokens_and_json_round_trip():
    v = Vocab.build([["x", "y"]])
    assert v.encode(["y", "never-seen"]) == [v.stoi["y"], v.unk_id]
    assert v.decode(v.encode(["x", "y"])) == ["x", "y"]
    assert Vocab.from_json(v.to_json()) == v


def test_label_vocab_has_no_specials_and_rejects_unknown_labels():
    labels = Vocab.labels(["pos", "neg", "pos"])
    assert labels.itos == ["neg", "pos"]
    assert labels.encode(["pos", "neg"]) == [1, 0]
    with pytest.raises(UserError, match="unknown label 'meh'"):
        labels.encode(["meh"])


def test_word_tokenizer_keeps_contractions_and_splits_punctuation():
    tok = build_tokenizer("word")
    assert tok.tokenize("It isn't bad, is it?") == ["It", "isn't", "bad", ",", "is", "it", "?"]
    assert tok.tokenize("it 's not good") == ["it", "'s", "not", "good"]
    assert build_tokenizer("word", lowercase=True).tokenize("Good") == ["good"]


def test_char_tokenizer_round_trips():
    tok = build_tokenizer("char")
    assert tok.tokenize("ab c") == ["a", "b", " ", "c"]
    assert tok.detokenize(tok.tokenize("ab c")) == "ab c"


def test_subword_tokenizer_learns_from_text_and_survives_json():
    texts = ["the cat sat on the mat", "the dog sat on the log", "cats and dogs"] * 20
    tok = build_tokenizer("subword", texts, vocab_size=60)
    pieces = tok.tokenize("the cats sat")
    assert len(pieces) >= 3 and tok.detokenize(pieces) == "the cats sat"
    again = tokenizer_from_json(tok.to_json())
    assert again.tokenize("a dog on a mat") == tok.tokenize("a dog on a mat")
