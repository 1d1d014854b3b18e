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

CELL_NAMES = ("rnn", "rnn_relu", "lstm", "gru")


def make_cell(name: str, input_size: int, hidden: int, layers: int = 1, seed: int = 0):
    """A scratch layer by name ('rnn', 'rnn_relu', 'lstm', 'gru'), float64."""
    if name in ("rnn", "rnn_relu"):
        return RNN(input_size, hidden, layers, nonlinearity="relu" if name == "rnn_relu" else "tanh", seed=seed)
    if name == "lstm":
        return LSTM(input_size, hidden, layers, seed=seed)
    if name == "gru":
        return GRU(input_size, hidden, layers, seed=seed)
    raise ValueError(f"unknown cell {name!r}; choose one of {', '.join(CELL_NAMES)}")


__all__ = [
    "CELL_NAMES", "make_cell", "GRU", "LSTM", "RNN", "Adagrad", "Adam", "OutputLayer", "Recurrent",
    "clip_grad_norm", "gradcheck", "softmax_cross_entropy",
]
