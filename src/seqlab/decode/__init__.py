"""Decoding: turning a trained language model's next-token distributions into text."""

from seqlab.decode.sampling import filter_logits, generate, sample_next

__all__ = ["filter_logits", "generate", "sample_next"]
