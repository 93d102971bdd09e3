"""The IDX format of the raw MNIST files: a magic number, the dimensions, then the bytes."""

import math
import struct

import numpy as np

from lenet_mnist.errors import LenetError

UNSIGNED_BYTE = 0x08


class IdxError(LenetError):
    """The bytes are not a well-formed IDX file of unsigned bytes."""


def encode_idx(array):
    """IDX bytes of a uint8 array (MNIST uses only this element type)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX writes uint8 arrays of 1 to 255 dimensions, not {array.dtype} of {array.ndim}")
    header = struct.pack(">HBB", 0, UNSIGNED_BYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def decode_idx(data, name="IDX data"):
    """The uint8 array in IDX bytes; IdxError naming `name` for anything else."""
    if len(data) < 4:
        raise IdxError(f"{name}: truncated IDX header ({len(data)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != UNSIGNED_BYTE or ndim == 0:
        raise IdxError(
            f"{name}: wrong magic number 0x{data[:4].hex()} (allowed: 0x000008NN, unsigned bytes in NN>0 dimensions)"
        )
    start = 4 + 4 * ndim
    if len(data) < start:
        raise IdxError(f"{name}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {start})")
    shape = struct.unpack(f">{ndim}I", data[4:start])
    size = math.prod(shape)  # Python integers: numpy's int64 product can wrap around to a small size
    if len(data) - start != size:
        raise IdxError(f"{name}: {len(data) - start} data bytes, but dimensions {shape} need {size}")
    try:
        return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape)
    except ValueError:  # an empty array whose other dimensions numpy cannot index
        raise IdxError(f"{name}: dimensions {shape} are too large for an array") from None


def read_idx(path):
    return decode_idx(path.read_bytes(), name=str(path))
