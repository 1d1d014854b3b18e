"""The vanilla RNN in NumPy, and the machinery every scratch cell shares.

One step of a recurrent cell reads the input x_t and the previous state h_{t-1}:

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)          (or relu instead of tanh)

The same weights are used at every step, so the state is the network's memory. Training needs
backpropagation through time (BPTT): run the steps forward keeping what each one saw, then walk
back from the last step to the first, handing the gradient of h_t on to h_{t-1}.

`Recurrent` holds what RNN, LSTM and GRU have in common; a cell only says how one step goes forward
and backward. Two things are done once per layer instead of once per step, because they do not
depend on the recurrence:
    the input projection  xi = x @ W_ih^T + b_ih            for all time steps at once, and
    the weight gradients  dW_ih = sum_t d_xi_t^T x_t,  dW_hh = sum_t d_hh_t^T h_{t-1}.
Only the part that must be sequential (hh = h_{t-1} @ W_hh^T + b_hh, then the gates) is looped over
time; everything is vectorised over the batch.

Parameters are a dict of arrays with PyTorch's names and layout (weight_ih_l0 (gates*hidden, input),
weight_hh_l0 (gates*hidden, hidden), bias_ih_l0, bias_hh_l0, then _l1 ...), so they copy 1:1 to and
from the state_dict of a unidirectional, batch_first `torch.nn.RNN/LSTM/GRU`.
"""

from __future__ import annotations

import copy

import numpy as np

PARAM_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _flat(a: np.ndarray) -> np.ndarray:
    """(batch, time, n) -> (batch*time, n)."""
    return a.reshape(-1, a.shape[-1])


def sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-a)) elementwise, without overflow for large negative a."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


class Recurrent:
    """A stack of `num_layers` recurrent layers; subclasses define `gates`, `states`, `cell`, `cell_backward`.

    gates: how many hidden-sized blocks the weights stack (RNN 1, GRU 3, LSTM 4).
    states: how many arrays the state has (h; or h and c for the LSTM).
    """

    gates = 1
    states = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dtype=np.float64, seed: int = 0):
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(hidden_size)  # PyTorch's init: every parameter ~ U(-k, k)
        self.params: dict[str, np.ndarray] = {}
        for name, shape in self.param_shapes().items():
            self.params[name] = rng.uniform(-k, k, shape).astype(self.dtype)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every parameter, in PyTorch's state_dict order."""
        g = self.gates * self.hidden_size
        shapes = {}
        for layer in range(self.num_layers):
            n_in = self.input_size if layer == 0 else self.hidden_size
            shapes[f"weight_ih_l{layer}"] = (g, n_in)
            shapes[f"weight_hh_l{layer}"] = (g, self.hidden_size)
            shapes[f"bias_ih_l{layer}"] = (g,)
            shapes[f"bias_hh_l{layer}"] = (g,)
        return shapes

    # ---- parameters ---------------------------------------------------------------------------

    def parameters(self) -> list[np.ndarray]:
        """The parameter arrays themselves (updating them in place updates the layer)."""
        return list(self.params.values())

    def named_parameters(self) -> list[tuple[str, np.ndarray]]:
        return list(self.params.items())

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of the parameters, keyed as in the matching torch module's state_dict."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_torch_state_dict(self, state: dict) -> None:
        """Copy weights from a torch state_dict given as numpy arrays (e.g. t.detach().numpy())."""
        shapes = self.param_shapes()
        missing, extra = set(shapes) - set(state), set(state) - set(shapes)
        if missing or extra:
            raise KeyError(f"state_dict mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for name, shape in shapes.items():
            value = np.asarray(state[name], dtype=self.dtype)
            if value.shape != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {value.shape}")
            self.params[name][...] = value  # in place, so optimizers holding the arrays see the new values

    load_state_dict = load_torch_state_dict

    def astype(self, dtype) -> Recurrent:
        """A copy of this layer with parameters (and computation) in `dtype`."""
        other = copy.deepcopy(self)
        other.dtype = np.dtype(dtype)
        other.params = {k: v.astype(other.dtype) for k, v in self.params.items()}
        return other

    def _layer(self, layer: int) -> tuple[np.ndarray, ...]:
        return tuple(self.params[f"{kind}_l{layer}"] for kind in PARAM_KINDS)

    # ---- one step (the cells override these) --------------------------------------------------

    def cell(self, xi: np.ndarray, hh: np.ndarray, state: tuple) -> tuple[tuple, tuple]:
        """One step. xi = W_ih x_t + b_ih and hh = W_hh h_{t-1} + b_hh, both (batch, gates*hidden);
        state = (h_{t-1},) or (h_{t-1}, c_{t-1}), each (batch, hidden).
        Returns the new state (h_t first) and what cell_backward needs."""
        raise NotImplementedError

    def cell_backward(self, d_state: tuple, step_cache: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
        """Back through one step. d_state: gradients of the new state, each (batch, hidden).
        Returns (d_xi, d_hh) (batch, gates*hidden) and the gradient of the previous state along the
        paths that skip hh (for LSTM's c and GRU's z * h_{t-1}; zeros for h in a plain RNN)."""
        raise NotImplementedError

    # ---- the stack over time ------------------------------------------------------------------

    # ---- the public forward/backward of single-state cells (RNN, GRU); the LSTM overrides them ----

    def forward(self, x, h0=None):
        """x (batch, time, input), h0 (layers, batch, hidden) or None (zeros).
        Returns outputs (batch, time, hidden), h_n (layers, batch, hidden), cache."""
        outputs, (h_n,), cache = self._forward(x, (h0,))
        return outputs, h_n, cache

    def backward(self, d_outputs, d_state, cache):
        """d_outputs (batch, time, hidden) or None; d_state = d h_n (layers, batch, hidden) or None.
        Returns grads (dict keyed like params), dx (batch, time, input), d_h0 (layers, batch, hidden)."""
        grads, dx, (d_h0,) = self._backward(d_outputs, (d_state,), cache)
        return grads, dx, d_h0

    def _initial(self, given, batch: int) -> np.ndarray:
        shape = (self.num_layers, batch, self.hidden_size)
        if given is None:
            return np.zeros(shape, self.dtype)
        given = np.asarray(given, dtype=self.dtype)
        if given.shape != shape:
            raise ValueError(f"initial state must have shape (layers, batch, hidden) = {shape}, got {given.shape}")
        return given

    def _forward(self, x: np.ndarray, state0: tuple) -> tuple[np.ndarray, tuple, list]:
        """x (batch, time, input); state0: per state array (layers, batch, hidden) or None.
        Returns outputs (batch, time, hidden), final states (each (layers, batch, hidden)), cache."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1] == 0:
            raise ValueError(f"x must be (batch, time >= 1, {self.input_size}), got {x.shape}")
        batch, time, _ = x.shape
        state0 = [self._initial(s, batch) for s in state0]
        finals = [[] for _ in range(self.states)]
        cache, inp = [], x
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer(layer)
            xi = inp @ w_ih.T + b_ih  # (batch, time, gates*hidden): the input part of every step
            state = tuple(s[layer] for s in state0)
            hs, steps = [], []
            for t in range(time):
                state, step_cache = self.cell(xi[:, t], state[0] @ w_hh.T + b_hh, state)
                hs.append(state[0])
                steps.append(step_cache)
            out = np.stack(hs, axis=1)
            h_prev = np.concatenate([state0[0][layer][:, None], out[:, :-1]], axis=1)  # h_{t-1} at every t
            cache.append((inp, h_prev, steps))
            for i, s in enumerate(state):
                finals[i].append(s)
            inp = out
        return inp, tuple(np.stack(f) for f in finals), cache

    def _backward(self, d_outputs, d_state: tuple, cache: list, *, return_d_hidden: bool = False,
                  clip_d_hidden: float | None = None) -> tuple:
        """BPTT. d_outputs (batch, time, hidden) or None; d_state: per state (layers, batch, hidden) or None.
        Returns grads keyed like params, dx (batch, time, input), and d_state0 (each (layers, batch, hidden)).

        Two options for looking inside BPTT (see vanishing.py); both off by default:
          return_d_hidden: also return d_hidden (batch, time, hidden), dL/dh_t of the top layer at every
              step: what reaches h_t from the output at t and from all later steps (for the LSTM the
              gradient of h_t alone; c_t's is separate).
          clip_d_hidden: at every step of the top layer, scale each sequence's dL/dh_t down to this norm
              if it is larger, before it flows on to step t-1 (per-step clipping; it changes the gradients).
        """
        batch, time = cache[0][0].shape[:2]
        zeros = np.zeros((self.num_layers, batch, self.hidden_size), self.dtype)
        d_final = [zeros if d is None else np.asarray(d, self.dtype) for d in d_state]
        if d_outputs is None:
            d_outputs = np.zeros((batch, time, self.hidden_size), self.dtype)
        d_inp = np.asarray(d_outputs, self.dtype)
        grads, d_state0 = {}, [[None] * self.num_layers for _ in range(self.states)]
        for layer in reversed(range(self.num_layers)):
            w_ih, w_hh, _, _ = self._layer(layer)
            inp, h_prev, steps = cache[layer]
            d_xi = np.zeros((batch, time, w_ih.shape[0]), self.dtype)
            d_hh = np.zeros_like(d_xi)
            ds = tuple(d[layer] for d in d_final)
            top = layer == self.num_layers - 1
            if top and return_d_hidden:
                d_hidden = np.zeros((batch, time, self.hidden_size), self.dtype)
            for t in reversed(range(time)):
                ds = (ds[0] + d_inp[:, t],) + ds[1:]  # h_t feeds the layer above and the next step
                if top and clip_d_hidden is not None:
                    norm = np.linalg.norm(ds[0], axis=-1, keepdims=True)
                    ds = (ds[0] * np.minimum(1.0, clip_d_hidden / np.maximum(norm, 1e-300)),) + ds[1:]
                if top and return_d_hidden:
                    d_hidden[:, t] = ds[0]
                d_xi[:, t], d_hh[:, t], skip = self.cell_backward(ds, steps[t])
                ds = (skip[0] + d_hh[:, t] @ w_hh,) + tuple(skip[1:])
            for i, d in enumerate(ds):
                d_state0[i][layer] = d
            # sum over batch and time as one matrix product (np.einsum would not use BLAS here)
            grads[f"weight_ih_l{layer}"] = _flat(d_xi).T @ _flat(inp)
            grads[f"weight_hh_l{layer}"] = _flat(d_hh).T @ _flat(h_prev)
            grads[f"bias_ih_l{layer}"] = d_xi.sum(axis=(0, 1))
            grads[f"bias_hh_l{layer}"] = d_hh.sum(axis=(0, 1))
            d_inp = d_xi @ w_ih  # gradient of this layer's input = the layer below's outputs
        grads = {name: grads[name] for name in self.params}  # state_dict order
        d_state0 = tuple(np.stack(d) for d in d_state0)
        return (grads, d_inp, d_state0, d_hidden) if return_d_hidden else (grads, d_inp, d_state0)


class RNN(Recurrent):
    """Elman RNN, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), as `torch.nn.RNN(batch_first=True)`.

    nonlinearity: 'tanh' (default) or 'relu'.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 dtype=np.float64, seed: int = 0):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, dtype, seed)

    def cell(self, xi, hh, state):
        a = xi + hh
        h = np.tanh(a) if self.nonlinearity == "tanh" else np.maximum(a, 0)
        return (h,), h

    def cell_backward(self, d_state, h):
        dh = d_state[0]
        da = dh * (1 - h * h) if self.nonlinearity == "tanh" else dh * (h > 0)
        return da, da, (np.zeros_like(dh),)
