"""seqlab: recurrent sequence models, from the hidden state as memory to trained tools.

Subpackages, one idea each:
  seqlab.data    tokenizers, the one Vocab, file readers, batching (bucketing, padding, packing)
  seqlab.models  the shared RecurrentEncoder and the task heads built on it
  seqlab.train   the one Trainer, checkpoints, metrics
  seqlab.viz     plots
  seqlab.pipelines  one pipeline per task (fit / predict / evaluate / save / load): the library
  seqlab.tasks   the `seqlab <task> ...` commands, a thin view of the pipelines

`seqlab.load(path)` opens any checkpoint or exported model as its task's pipeline.
"""

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """The pipeline of any seqlab checkpoint directory or exported .onnx/.pt file."""
    from seqlab.pipelines.registry import load as _load

    return _load(path, device)
