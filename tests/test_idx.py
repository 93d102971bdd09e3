import re
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenet_mnist.idx import IdxError, decode_idx, encode_idx, read_idx


def test_round_trip_keeps_shape_and_bytes(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(2, 28, 28)
    data = encode_idx(images)
    assert data[:4] == bytes([0, 0, 8, 3])  # the magic number of MNIST's image files
    assert data[4:16] == (2).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_idx(path), images)


def test_labels_are_one_dimensional():
    labels = np.array([7, 2, 1], dtype=np.uint8)
    assert encode_idx(labels)[:4] == bytes([0, 0, 8, 1])
    np.testing.assert_array_equal(decode_idx(encode_idx(labels)), labels)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "truncated IDX header"),
        (b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00" * 4, "wrong magic number"),
        (b"\x01\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "wrong magic number"),
        (b"\x00\x00\x08\x03" + (1).to_bytes(4, "big"), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x00" * 4, "4 data bytes, but dimensions (5,) need 5"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x00" * 6, "6 data bytes"),
    ],
)
def test_malformed_bytes_give_one_clean_error(data, message):
    with pytest.raises(IdxError, match=re.escape(message)) as info:
        decode_idx(data, name="f-idx1-ubyte")
    assert str(info.value).startswith("f-idx1-ubyte: ") and "\n" not in str(info.value)


def test_only_uint8_arrays_are_written():
    with pytest.raises(ValueError):
        encode_idx(np.zeros(3, dtype=np.float32))


def decodes_or_refuses_cleanly(data):
    """decode_idx's contract: the array that encode_idx would write as these bytes, or IdxError."""
    try:
        array = decode_idx(data, name="f-idx3-ubyte")
    except IdxError as e:
        assert str(e).startswith("f-idx3-ubyte: ") and "\n" not in str(e)
    else:
        assert array.dtype == np.uint8 and encode_idx(array) == data


@given(st.binary(max_size=80))
def test_any_bytes_give_an_array_or_the_clean_error(data):
    decodes_or_refuses_cleanly(data)


@given(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 4), min_size=1, max_size=6), st.binary(max_size=80))
def test_any_dimensions_give_an_array_or_the_clean_error(dims, payload):
    """Well-formed magic numbers, so that the dimensions and the payload are what varies; the
    product of the dimensions may pass 2**64."""
    decodes_or_refuses_cleanly(bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload)


def test_dimensions_whose_product_wraps_around_are_refused():
    data = bytes([0, 0, 8, 4]) + struct.pack(">4I", *[2**16] * 4)  # 2**64 images: 0 in int64
    with pytest.raises(IdxError, match=re.escape("0 data bytes, but dimensions (65536, 65536, 65536, 65536)")):
        decode_idx(data, name="f")
