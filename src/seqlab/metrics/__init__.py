"""Every metric seqlab reports, in one place: classification, regression, language modelling, tagging
(conlleval-exact), seq2seq (sacrebleu) and forecasting (MASE, sMAPE, coverage)."""

from seqlab.metrics import regression
from seqlab.metrics.classification import classification_metrics, format_confusion

__all__ = ["classification_metrics", "format_confusion", "regression"]
