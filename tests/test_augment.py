import numpy as np
import pytest
from conftest import write_raw

from lenet_mnist.augment import materialise as materialise_from
from lenet_mnist.data import load_trainset, read_part
from lenet_mnist.errors import LenetError
from lenet_mnist.params import SCHEMA, Validator
from lenet_mnist.prepare import prepare
from lenet_mnist.preview import preview
from lenet_mnist.split import split
from lenet_mnist.streams import torch_stream
from lenet_mnist.subsample import subsample


def materialise(images, policy, seed=0):
    return materialise_from(images, policy, torch_stream(seed, "views"))


def policy(**settings):
    """A policy with the schema's defaults filled in, as load_params gives it."""
    filled = dict(settings)
    Validator({**SCHEMA["$defs"]["policy"], "$defs": SCHEMA["$defs"]}).validate(filled)
    return filled


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    images = np.zeros((64, 28, 28), dtype=np.uint8)
    for i in range(64):  # an asymmetric stroke: an L, at a random place
        r, c = rng.integers(4, 14, 2)
        images[i, r : r + 10, c : c + 2] = 255
        images[i, r + 8 : r + 10, c : c + 8] = 255
    return images


def test_no_policy_gives_the_originals(digits):
    views = materialise(digits, policy())
    assert views.shape == (1, 64, 28, 28) and np.array_equal(views[0], digits)


def test_views_are_deterministic_and_keep_the_originals_first(digits):
    p = policy(rotation=15, translate=0.1, scale=[0.9, 1.1], shear=10, views=4, originals=True)
    a, b = materialise(digits, p, seed=3), materialise(digits, p, seed=3)
    assert a.shape == (4, 64, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, b)  # the same bytes on a rerun
    assert np.array_equal(a[0], digits)
    assert not np.array_equal(a[1], a[2])  # each view is a new draw
    assert not np.array_equal(a, materialise(digits, p, seed=4))  # each seed draws its own


def test_a_flip_mirrors_exactly_and_only_half_the_time(digits):
    views = materialise(digits, policy(hflip=True, views=8))
    mirrored = views == digits[:, :, ::-1][None]  # left to right
    same = views == digits[None]
    flipped = mirrored.all(axis=(2, 3))
    assert (flipped | same.all(axis=(2, 3))).all()  # pixel centres map onto pixel centres
    assert 0.3 < flipped.mean() < 0.7


def test_rotation_and_shift_move_the_ink_but_keep_most_of_it(digits):
    views = materialise(digits, policy(rotation=20, translate=0.1, views=2), seed=1).astype(float)
    ink = digits.astype(float).sum(axis=(1, 2))
    assert np.all(np.abs(views.sum(axis=(2, 3)) / ink - 1) < 0.15)  # bilinear resampling, no cropping
    assert not np.array_equal(views[0], digits)
    ys, xs = np.mgrid[:28, :28]
    centre = lambda im: np.array([(im * ys).sum(), (im * xs).sum()]) / im.sum()  # noqa: E731
    shifts = [np.abs(centre(v) - centre(d.astype(float))).max() for v, d in zip(views[0], digits)]
    assert max(shifts) < 0.1 * 28 + 3  # translation bound, plus what a 20 degree turn moves the centre


def test_zooming_in_spreads_the_ink(digits):
    views = materialise(digits, policy(scale=[1.5, 1.5]))
    assert views.astype(float).sum() > 1.8 * digits.astype(float).sum()  # 1.5^2 = 2.25, less what leaves the frame


def test_elastic_distortion_is_smooth_and_deterministic(digits):
    p = policy(elastic={"alpha": 8, "sigma": 4}, views=2)
    a = materialise(digits, p)
    assert np.array_equal(a, materialise(digits, p)) and not np.array_equal(a[0], digits)


def test_prepare_keeps_the_labels_with_their_images_and_the_preview_draws_them(tmp_path):
    raw = write_raw(tmp_path / "raw", n_train=200, n_test=10)
    params = {
        "split": {"val_size": 40, "seed": 0},
        "subsample": {"fractions": [0.5]},
        "policies": {"p": policy(rotation=10, views=3, originals=True)},
    }
    split(params, raw, tmp_path / "train.npy", tmp_path / "val.npy")
    subsample(params, "0.5", 2, raw, tmp_path / "train.npy", tmp_path / "val.npy", tmp_path / "subset.npz")
    prepare(params, "p", "0.5", 2, raw, tmp_path / "train.npy", tmp_path / "subset.npz", tmp_path / "t.npz")
    views, labels, _ = load_trainset(tmp_path / "t.npz", {"policy": "p", "fraction": "0.5", "seed": 2})
    subset = np.load(tmp_path / "subset.npz")["indices"]
    images, all_labels = read_part(raw, "train")
    assert views.shape == (3, 80, 28, 28)
    assert np.array_equal(labels, all_labels[subset]) and np.array_equal(views[0], images[subset])
    assert np.array_equal(views[1:], materialise(images[subset], params["policies"]["p"], seed=2)[1:])
    preview(raw, tmp_path / "t.npz", tmp_path / "preview.png")
    assert (tmp_path / "preview.png").read_bytes()[:4] == b"\x89PNG"


def test_a_set_prepared_for_another_seed_is_refused(tmp_path):
    raw = write_raw(tmp_path / "raw", n_train=200, n_test=10)
    params = {"split": {"val_size": 40, "seed": 0}, "subsample": {"fractions": [0.5]}, "policies": {"p": policy()}}
    split(params, raw, tmp_path / "train.npy", tmp_path / "val.npy")
    subsample(params, "0.5", 1, raw, tmp_path / "train.npy", tmp_path / "val.npy", tmp_path / "subset.npz")
    prepare(params, "p", "0.5", 1, raw, tmp_path / "train.npy", tmp_path / "subset.npz", tmp_path / "t.npz")
    with pytest.raises(LenetError, match=r"t.npz: prepared for .*'seed': 1.*, not for .*'seed': 0"):
        load_trainset(tmp_path / "t.npz", {"policy": "p", "fraction": "0.5", "seed": 0})
