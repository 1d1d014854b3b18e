"""The CRF against brute force: every tag path of tiny sentences enumerated in float64."""

import itertools
import math

import pytest
import torch

from seqlab.models.crf import CRF, lengths_to_mask

K = 3
LENGTHS = [1, 2, 4, 3]  # unsorted, with padding up to 4


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    crf = CRF(K).double()
    with torch.no_grad():
        for p in (crf.transitions, crf.start, crf.end):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    em = torch.randn(len(LENGTHS), max(LENGTHS), K, generator=g, dtype=torch.float64)
    mask = lengths_to_mask(torch.tensor(LENGTHS), max(LENGTHS))
    return crf, em, mask


def _score(crf, em_row, path):
    """The score of one path written out term by term (independent of the CRF's code)."""
    s = crf.start[path[0]] + crf.end[path[-1]]
    for t, y in enumerate(path):
        s = s + em_row[t, y]
        if t:
            s = s + crf.transitions[path[t - 1], y]
    return s


def _all_paths(crf, em, b):
    n = LENGTHS[b]
    paths = list(itertools.product(range(K), repeat=n))
    return paths, torch.stack([_score(crf, em[b], p) for p in paths])


def test_forward_algorithm_equals_brute_force_enumeration():
    crf, em, mask = _setup()
    log_z = crf.log_partition(em, mask)
    for b in range(len(LENGTHS)):
        _, scores = _all_paths(crf, em, b)
        assert len(scores) == K ** LENGTHS[b]
        torch.testing.assert_close(log_z[b], torch.logsumexp(scores, 0), rtol=0, atol=1e-12)


def test_path_score_and_probabilities_sum_to_one():
    crf, em, mask = _setup(1)
    for b in range(len(LENGTHS)):
        paths, scores = _all_paths(crf, em, b)
        tags = torch.full((len(paths), max(LENGTHS)), -100, dtype=torch.long)
        tags[:, : LENGTHS[b]] = torch.tensor(paths)
        batch_em = em[b : b + 1].expand(len(paths), -1, -1)
        batch_mask = mask[b : b + 1].expand(len(paths), -1)
        torch.testing.assert_close(crf.path_score(batch_em, tags, batch_mask), scores, rtol=0, atol=1e-12)
        nll = crf.nll(batch_em, tags, batch_mask)
        assert (nll > 0).all()
        assert math.isclose(float(torch.exp(-nll.detach()).sum()), 1.0, abs_tol=1e-12)


def test_viterbi_equals_brute_force_argmax():
    for seed in range(5):
        crf, em, mask = _setup(seed)
        best = crf.decode(em, mask)
        assert best.shape == (len(LENGTHS), max(LENGTHS))
        for b, n in enumerate(LENGTHS):
            paths, scores = _all_paths(crf, em, b)
            assert best[b, :n].tolist() == list(paths[int(scores.argmax())])
            assert (best[b, n:] == -100).all()


def test_padding_changes_nothing():
    """Each sentence alone (no padding) gives the same log Z, NLL and best path as in the padded batch,
    whatever the padded emission scores hold."""
    crf, em, mask = _setup(2)
    em = em.masked_fill(~mask[..., None], 1e3)  # garbage at padded steps
    tags = torch.randint(0, K, mask.shape).masked_fill(~mask, -100)
    log_z, nll, best = crf.log_partition(em, mask), crf.nll(em, tags, mask), crf.decode(em, mask)
    for b, n in enumerate(LENGTHS):
        one = em[b : b + 1, :n]
        m1 = torch.ones(1, n, dtype=torch.bool)
        torch.testing.assert_close(crf.log_partition(one, m1)[0], log_z[b], rtol=0, atol=1e-12)
        torch.testing.assert_close(crf.nll(one, tags[b : b + 1, :n], m1)[0], nll[b], rtol=0, atol=1e-12)
        assert crf.decode(one, m1)[0].tolist() == best[b, :n].tolist()


def test_gradient_of_log_z_is_the_tag_marginals():
    """d log Z / d emissions[t, k] = p(y_t = k): each step's marginals sum to 1, padding gets 0."""
    crf, em, mask = _setup(3)
    em.requires_grad_(True)
    crf.log_partition(em, mask).sum().backward()
    torch.testing.assert_close(em.grad.sum(-1), mask.double(), rtol=0, atol=1e-12)
    b = 2
    paths, scores = _all_paths(crf, em.detach(), b)
    probs = torch.softmax(scores, 0)
    marg = torch.zeros(LENGTHS[b], K, dtype=torch.float64)
    for p, pr in zip(paths, probs):
        marg[torch.arange(LENGTHS[b]), torch.tensor(p)] += pr
    torch.testing.assert_close(em.grad[b, : LENGTHS[b]], marg, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [1, 5])
def test_training_the_crf_alone_learns_transitions(n):
    """With uninformative emissions, the CRF must learn from transitions alone that 0 1 0 1 ... follows."""
    torch.manual_seed(0)
    crf = CRF(2)
    tags = torch.tensor([[i % 2 for i in range(n)]] * 4)
    em = torch.zeros(4, n, 2)
    mask = torch.ones(4, n, dtype=torch.bool)
    opt = torch.optim.Adam(crf.parameters(), lr=0.1)
    for _ in range(100):
        opt.zero_grad()
        crf.nll(em, tags, mask).mean().backward()
        opt.step()
    assert crf.decode(em, mask).tolist() == tags.tolist()
