"""Convert a tuned lens between tuned-lens's pickle and the safetensors file Loupe reads.

A tuned-lens folder (from the tuned-lens package or its published lenses) holds
`config.json` and `params.pt`, a PyTorch pickle of the translators' state dict
(`0.weight`, `0.bias`, `1.weight`, ...). Loupe never unpickles files (unpickling
can run code), so convert once, with your own PyTorch:

    python3 tools/convert_tuned_lens.py LENS_DIR            # writes LENS_DIR/params.safetensors
    python3 tools/convert_tuned_lens.py LENS_DIR --to-pt    # the reverse, for the tuned-lens package

The tensor names stay as they are; config.json is left alone. The pickle is
read with torch.load(weights_only=True), which refuses anything but tensors.
Needs PyTorch only (the safetensors file is written and read here directly).
"""

import argparse
import json
import os
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
BY_NAME = {v: k for k, v in DTYPES.items()}


def save_safetensors(tensors, path):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors, key=lambda n: (int(n.split(".")[0]) if n.split(".")[0].isdigit() else 0, n)):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in DTYPES:
            raise SystemExit(f"{name}: dtype {t.dtype} is not a floating-point type the lens can hold")
        blob = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = BY_NAME[info["dtype"]]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.uint8).view(dtype).reshape(info["shape"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lens_dir", help="folder with config.json and params.pt (or params.safetensors with --to-pt)")
    ap.add_argument("--to-pt", action="store_true", help="write params.pt from params.safetensors instead")
    args = ap.parse_args()
    pt = os.path.join(args.lens_dir, "params.pt")
    st = os.path.join(args.lens_dir, "params.safetensors")
    if not os.path.exists(os.path.join(args.lens_dir, "config.json")):
        sys.exit(f"{args.lens_dir}: no config.json; is this a tuned-lens folder?")
    if args.to_pt:
        torch.save(load_safetensors(st), pt)
        print(f"wrote {pt}")
        return
    state = torch.load(pt, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        sys.exit(f"{pt}: not a state dict of tensors")
    save_safetensors(state, st)
    print(f"wrote {st} ({len(state)} tensors)")


if __name__ == "__main__":
    main()
