"""Moved: the seq2seq pipeline shared by translation and QA lives in `seqlab.pipelines.seq2seq`
(the recipe in `seqlab.pipelines.translate` and `seqlab.pipelines.qa`). This module keeps old imports working."""

from seqlab.pipelines.seq2seq import Output, Seq2SeqPipeline, SourceTruncated

TASK = "translate"

__all__ = ["TASK", "Output", "Seq2SeqPipeline", "SourceTruncated"]
