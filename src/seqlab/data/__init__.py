"""Data pipeline: text -> tokens -> ids -> padded, length-bucketed, packable batches."""

from seqlab.data.batching import Batch, BucketBatcher, pad_batch
from seqlab.data.conll import TaggedCorpus, read_conll
from seqlab.data.features import FeatureBatcher, FeatureSet, read_features
from seqlab.data.pairs import PairBatcher, Pairs, read_pairs_table, read_parallel
from seqlab.data.readers import read_lines, read_table
from seqlab.data.timeseries import Scaler, TimeSeries, read_series
from seqlab.data.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_json
from seqlab.data.vocab import Vocab
from seqlab.data.windows import WindowBatcher

__all__ = [
    "Batch",
    "BucketBatcher",
    "FeatureBatcher",
    "FeatureSet",
    "PairBatcher",
    "Pairs",
    "Scaler",
    "TaggedCorpus",
    "TimeSeries",
    "Tokenizer",
    "Vocab",
    "WindowBatcher",
    "build_tokenizer",
    "pad_batch",
    "read_conll",
    "read_features",
    "read_lines",
    "read_pairs_table",
    "read_parallel",
    "read_series",
    "read_table",
    "tokenizer_from_json",
]
