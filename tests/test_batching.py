import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.data import BucketBatcher, pad_batch


def _seqs(lengths):
    return [torch.arange(1, n + 1) for n in lengths]


def test_pad_batch_shapes_and_values():
    ids, lengths = pad_batch(_seqs([3, 1, 2]), pad_id=0)
    assert ids.shape == (3, 3) and lengths.tolist() == [3, 1, 2]
    assert ids.tolist() == [[1, 2, 3], [1, 0, 0], [1, 2, 0]]
    assert pad_batch(_seqs([2]), 0, pad_to=5)[0].shape == (1, 5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=200), st.integers(1, 17), st.booleans(), st.booleans())
def test_every_example_is_served_exactly_once(lengths, bs, shuffle, bucket):
    b = BucketBatcher(_seqs(lengths), torch.arange(len(lengths)), bs, shuffle=shuffle, bucket=bucket, pool=3)
    seen = torch.cat([batch.index for batch in b]).sort().values
    assert seen.tolist() == list(range(len(lengths)))
    for batch in b:  # targets travel with their examples
        assert torch.equal(batch.targets, batch.index)
        assert batch.ids.shape == (len(batch), int(batch.lengths.max()))
    assert len(list(b)) == len(b)


def test_order_depends_only_on_seed_and_epoch():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4] * 10
    a = BucketBatcher(_seqs(lengths), None, 4, shuffle=True, seed=3)
    b = BucketBatcher(_seqs(lengths), None, 4, shuffle=True, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert [x.tolist() for x in a.batch_indices()] == [x.tolist() for x in b.batch_indices()]
    b.set_epoch(3)
    assert [x.tolist() for x in a.batch_indices()] != [x.tolist() for x in b.batch_indices()]


def test_bucketing_cuts_padding():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (2000,), generator=g).tolist()

    def padded_steps(bucket):
        b = BucketBatcher(_seqs(lengths), None, 32, shuffle=True, bucket=bucket, pool=50)
        return sum(batch.ids.numel() for batch in b)

    real = sum(lengths)
    assert padded_steps(True) < 1.1 * real < padded_steps(False)


def test_per_step_targets_are_padded_with_ignore_index():
    b = BucketBatcher(_seqs([2, 4]), _seqs([2, 4]), 2, bucket=False)
    batch = next(iter(b))
    assert batch.targets.tolist() == [[1, 2, -100, -100], [1, 2, 3, 4]]
