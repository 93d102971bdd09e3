import numpy as np
import pytest

from lenet_mnist.errors import LenetError
from lenet_mnist.subsample import check_stratified, subsample_indices

FRACTIONS = [0.001, 0.01, 0.05, 0.2, 0.33, 0.5, 0.8, 0.999, 1.0]


@pytest.fixture
def labels():
    """Imbalanced classes, as MNIST's are (from 4.5% to 13% here)."""
    rng = np.random.default_rng(3)
    weights = np.linspace(1, 3, 10)
    return rng.choice(10, size=6000, p=weights / weights.sum()).astype(np.uint8)


@pytest.fixture
def train(labels):
    return np.sort(np.random.default_rng(4).permutation(len(labels))[:5000])


def test_subsets_are_nested(train, labels):
    subsets = [set(subsample_indices(train, labels, f, seed=0)) for f in FRACTIONS]
    for smaller, larger in zip(subsets, subsets[1:]):
        assert smaller < larger


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_subsets_are_stratified_and_inside_the_training_split(train, labels, fraction):
    subset = subsample_indices(train, labels, fraction, seed=0)
    assert len(subset) == round(fraction * len(train)) and len(set(subset)) == len(subset)
    assert set(subset) <= set(train)
    for c in range(10):
        exact = fraction * np.count_nonzero(labels[train] == c)
        assert abs(np.count_nonzero(labels[subset] == c) - exact) <= 1


def test_every_subset_size_is_stratified(train, labels):
    """Not only the listed fractions: every subset size keeps each class within 1 of its exact share."""
    classes, counts = np.unique(labels[train], return_counts=True)
    for k in range(1, len(train) + 1, 7):
        chosen = labels[subsample_indices(train, labels, k / len(train), seed=5)]
        got = np.array([np.count_nonzero(chosen == c) for c in classes])
        assert np.all(np.abs(got - counts * len(chosen) / len(train)) <= 1), k


def test_subsets_are_deterministic_per_seed(train, labels):
    a = subsample_indices(train, labels, 0.2, seed=0)
    np.testing.assert_array_equal(a, subsample_indices(train, labels, 0.2, seed=0))
    assert not np.array_equal(a, subsample_indices(train, labels, 0.2, seed=1))


def test_the_check_refuses_an_unstratified_subset(labels):
    with pytest.raises(LenetError, match="exact share"):
        check_stratified(np.zeros(100, dtype=np.uint8), labels)
