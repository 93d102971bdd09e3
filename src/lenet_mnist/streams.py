"""A seed's random streams: each purpose (the training subset, the augmented views, the initial
weights, the batch order) draws from its own stream, derived from (seed, purpose name), so that a
seed owns all its randomness, its numbers never depend on what trains beside it, and adding a
purpose shifts no other purpose's stream."""

import zlib

import numpy as np

PURPOSES = ("subset", "views", "init", "order")


def stream_seed(seed, purpose):
    """A 64-bit seed for `purpose` of `seed`: numpy's SeedSequence over (seed, crc32 of the name)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r} (allowed: {', '.join(PURPOSES)})")
    key = zlib.crc32(purpose.encode())
    return int(np.random.SeedSequence([seed, key]).generate_state(1, np.uint64)[0])


def numpy_stream(seed, purpose):
    return np.random.default_rng(stream_seed(seed, purpose))


def torch_stream(seed, purpose):
    import torch  # here, so that the stages that draw numpy streams alone start without torch

    return torch.Generator().manual_seed(stream_seed(seed, purpose))
