"""Data pipeline: text -> tokens -> ids -> padded, length-bucketed, packable batches."""

from seqlab.data.batching import Batch, BucketBatcher, pad_batch
from seqlab.data.readers import read_lines, read_table
from seqlab.data.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_json
from seqlab.data.vocab import Vocab

__all__ = [
    "Batch",
    "BucketBatcher",
    "Tokenizer",
    "Vocab",
    "build_tokenizer",
    "pad_batch",
    "read_lines",
    "read_table",
    "tokenizer_from_json",
]
