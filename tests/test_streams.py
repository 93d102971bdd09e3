import zlib

import numpy as np
import pytest

from lenet_mnist import streams
from lenet_mnist.streams import PURPOSES, numpy_stream, stream_seed, torch_stream


def test_each_seed_and_purpose_has_its_own_stream():
    seeds = {(seed, purpose): stream_seed(seed, purpose) for seed in range(20) for purpose in PURPOSES}
    assert len(set(seeds.values())) == len(seeds)


def test_a_stream_is_the_same_in_every_process_and_for_numpy_and_torch():
    # SeedSequence's own algorithm over (seed, crc32 of the name): nothing of this process's state.
    expected = np.random.SeedSequence([7, zlib.crc32(b"views")]).generate_state(1, np.uint64)[0]
    assert stream_seed(7, "views") == int(expected)
    assert numpy_stream(7, "subset").integers(1 << 30) == numpy_stream(7, "subset").integers(1 << 30)
    assert torch_stream(7, "order").initial_seed() == stream_seed(7, "order")


def test_adding_a_purpose_shifts_no_other_stream(monkeypatch):
    before = {purpose: stream_seed(3, purpose) for purpose in PURPOSES}
    monkeypatch.setattr(streams, "PURPOSES", ("dropout", *PURPOSES))
    assert {purpose: stream_seed(3, purpose) for purpose in PURPOSES} == before
    assert stream_seed(3, "dropout") not in before.values()


def test_an_unknown_purpose_is_refused():
    with pytest.raises(ValueError, match="unknown purpose 'subsets'"):
        stream_seed(0, "subsets")
