"""The safetensors format, written out by hand (no safetensors package needed).

Layout of a file:
    8 bytes   little-endian u64 N, the length of the header
    N bytes   JSON: {name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
                     optional "__metadata__": {str: str}}
              padded with spaces so that the data starts at a multiple of 8
    rest      the tensors' bytes, little-endian, row-major, back to back;
              data_offsets are relative to the start of this region
"""

import json
import struct

import numpy as np
import torch

# safetensors dtype -> (torch dtype, bytes per element, numpy dtype used for the raw bytes)
DTYPES = {
    "F64": (torch.float64, 8, "<f8"),
    "F32": (torch.float32, 4, "<f4"),
    "F16": (torch.float16, 2, "<f2"),
    "BF16": (torch.bfloat16, 2, "<i2"),  # numpy has no bfloat16: move the raw 16-bit patterns
    "I64": (torch.int64, 8, "<i8"),
    "I32": (torch.int32, 4, "<i4"),
    "I16": (torch.int16, 2, "<i2"),
    "I8": (torch.int8, 1, "i1"),
    "U8": (torch.uint8, 1, "u1"),
    "BOOL": (torch.bool, 1, "u1"),
}
TORCH_TO_NAME = {v[0]: k for k, v in DTYPES.items()}


def _raw_bytes(t: torch.Tensor) -> bytes:
    """The tensor's elements as little-endian bytes, row-major."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    elif t.dtype == torch.bool:
        t = t.to(torch.uint8)
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")


def save_file(tensors, path, metadata=None):
    """Write {name: tensor} to `path` in the safetensors format.

    Tensors are written in the order of the dict (the format sorts nothing);
    `metadata` is an optional {str: str} stored under "__metadata__".
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    items = []
    for name, t in tensors.items():
        if t.dtype not in TORCH_TO_NAME:
            raise ValueError(f"tensor {name!r}: dtype {t.dtype} has no safetensors name")
        dtype = TORCH_TO_NAME[t.dtype]
        nbytes = t.numel() * DTYPES[dtype][1]
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        items.append((name, t, nbytes))
        offset += nbytes
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name, t, nbytes in items:
            data = _raw_bytes(t)
            assert len(data) == nbytes, name
            f.write(data)


def save_file_streaming(path, specs, make, metadata=None):
    """Write a safetensors file one tensor at a time, so that no more than one is held in memory.

    specs: [(name, torch dtype, shape)] in file order; make(name) returns that tensor (any dtype
    castable to the spec's). Returns the number of data bytes written.
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dtype, shape in specs:
        count = 1
        for n in shape:
            count *= n
        nbytes = count * DTYPES[TORCH_TO_NAME[dtype]][1]
        header[name] = {"dtype": TORCH_TO_NAME[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name, dtype, shape in specs:
            t = make(name).to(dtype)
            assert list(t.shape) == list(shape), (name, list(t.shape), list(shape))
            f.write(_raw_bytes(t))
            del t
    return offset


def read_header(path):
    """(header dict without __metadata__, metadata dict or None, byte offset of the data)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    meta = header.pop("__metadata__", None)
    return header, meta, 8 + n


def load_file(path):
    """Read a safetensors file into {name: tensor} (in file order, dtypes as stored)."""
    header, _, start = read_header(path)
    out = {}
    with open(path, "rb") as f:
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            dtype = info["dtype"]
            if dtype not in DTYPES:
                raise ValueError(f"tensor {name!r}: unsupported dtype {dtype}")
            tdtype, width, npdtype = DTYPES[dtype]
            b, e = info["data_offsets"]
            shape = info["shape"]
            count = int(np.prod(shape)) if shape else 1
            if e - b != count * width:
                raise ValueError(f"tensor {name!r}: {e - b} bytes for shape {shape} of {dtype}")
            f.seek(start + b)
            arr = np.frombuffer(f.read(e - b), dtype=npdtype).reshape(shape).copy()
            t = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("=")))
            if dtype == "BF16":
                t = t.view(torch.bfloat16)
            elif dtype == "BOOL":
                t = t.to(torch.bool)
            out[name] = t
    return out
