"""Dynamic evaluation of a language model (Krause et al. 2018, "Dynamic Evaluation of Neural Sequence Models").

The text is read in segments of `segment` tokens with the state carried, as in static evaluation; each
segment is scored first, with the weights as they are, and only then used for one gradient step, so every
token is still predicted from the tokens before it alone. The model adapts to the text it reads (names,
style, recurring phrases), which lowers the loss of long texts. The update is RMS-normalised (RMSprop on
the segment's mean loss, bias-corrected), the variant the paper found best.

The figure is not comparable with static evaluation (most papers and nanoGPT report static loss);
report it as "dynamic evaluation" next to the static one.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from seqlab.models.language_model import LanguageModel, detach_state


def dynamic_nll(model: LanguageModel, ids: torch.Tensor, segment: int = 50, lr: float = 1e-3,
                beta: float = 0.99) -> tuple[torch.Tensor, int]:
    """Per-segment negative log-likelihoods (nats) of ids[1:] under dynamic evaluation, and their count.

    ids (n,) with n >= 2 is read as one sequence (batch 1); segment k covers targets
    ids[k*segment+1 : (k+1)*segment+1] and is scored with weights updated on segments 0..k-1 only.
    Returns (float64 tensor (num_segments,), n - 1); total = result.sum(). `model` is not changed
    (a copy adapts). lr = 0 gives static evaluation.
    """
    if ids.dim() != 1 or len(ids) < 2:
        raise ValueError("ids must be 1-d with at least 2 tokens")
    m = copy.deepcopy(model)
    m.eval()  # no dropout: the adaptation is the only change
    device = next(m.parameters()).device
    params = [p for p in m.parameters() if p.requires_grad]
    sq = [torch.zeros_like(p) for p in params]
    state, n, out = None, len(ids) - 1, []
    for k, start in enumerate(range(0, n, segment), 1):
        end = min(start + segment, n)
        x = ids[start:end].to(device)[None, :]  # (1, t)
        y = ids[start + 1 : end + 1].to(device)
        with torch.enable_grad():
            logits, state = m(x, state)
            loss = F.cross_entropy(logits[0].to(torch.promote_types(logits.dtype, torch.float32)), y, reduction="sum")
            out.append(float(loss.detach().double()))  # scored before the weights see these targets
            if lr > 0:
                grads = torch.autograd.grad(loss / (end - start), params, allow_unused=True)
        state = detach_state(state)
        if lr > 0:
            with torch.no_grad():
                for p, g, v in zip(params, grads, sq):
                    if g is None:
                        continue
                    v.mul_(beta).addcmul_(g, g, value=1 - beta)
                    p.sub_(lr * g / ((v / (1 - beta**k)).sqrt() + 1e-8))
    return torch.tensor(out, dtype=torch.float64), n
