"""Models: one shared `RecurrentEncoder` and small task heads on top of it."""

from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.models.encoder import EncoderConfig, EncoderOutput, RecurrentEncoder

__all__ = ["ClassifierConfig", "EncoderConfig", "EncoderOutput", "RecurrentEncoder", "TextClassifier"]
