"""seqlab: recurrent sequence models, from the hidden state as memory to trained tools.

Subpackages, one idea each:
  seqlab.data    tokenizers, the one Vocab, file readers, batching (bucketing, padding, packing)
  seqlab.models  the shared RecurrentEncoder and the task heads built on it
  seqlab.train   the one Trainer, checkpoints, metrics
  seqlab.viz     plots
  seqlab.tasks   end-to-end tasks behind the `seqlab <task> ...` commands
"""

__version__ = "0.1.0"
