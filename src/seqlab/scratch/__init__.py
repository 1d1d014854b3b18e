"""seqlab.scratch: recurrent networks from scratch in NumPy, forward *and* backward by hand.

The same cells as torch.nn.RNN/LSTM/GRU, written out step by step with backpropagation through time,
so every gradient is visible. Parameters use PyTorch's names and layout and copy 1:1 both ways;
the tests check gradients against finite differences and outputs and gradients against torch.

  rnn.py       RNN (tanh or relu) and `Recurrent`, the stacking and BPTT loop the cells share
  lstm.py      LSTM (gates i, f, g, o)
  gru.py       GRU (gates r, z, n)
  gradcheck.py central finite differences against the hand-written backward
  optim.py     output layer, softmax cross-entropy, gradient clipping, Adam, Adagrad
"""

from seqlab.scratch.gradcheck import gradcheck
from seqlab.scratch.gru import GRU
from seqlab.scratch.lstm import LSTM
from seqlab.scratch.optim import Adagrad, Adam, OutputLayer, clip_grad_norm, softmax_cross_entropy
from seqlab.scratch.rnn import RNN, Recurrent

__all__ = [
    "GRU", "LSTM", "RNN", "Adagrad", "Adam", "OutputLayer", "Recurrent",
    "clip_grad_norm", "gradcheck", "softmax_cross_entropy",
]
