"""Hugging Face checkpoint folders: config.json plus weights in one safetensors file
or in shards listed by model.safetensors.index.json."""

import json
import os

import torch

from models import build_model
from safetensors_io import load_file, save_file


def write_weights(folder, tensors, shards=None):
    """Write tensors as model.safetensors, or, with `shards` (a list of key-prefix tuples,
    one per shard), as model-0000i-of-0000n.safetensors plus the index json. Returns the file names."""
    meta = {"format": "pt"}
    if not shards:
        save_file(tensors, os.path.join(folder, "model.safetensors"), meta)
        return ["model.safetensors"]
    n = len(shards)
    files, weight_map, total = [], {}, 0
    left = dict(tensors)
    for i, prefixes in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        part = {k: v for k, v in tensors.items() if k.startswith(prefixes)}
        for k, v in part.items():
            left.pop(k)
            weight_map[k] = fname
            total += v.numel() * v.element_size()
        save_file(part, os.path.join(folder, fname), meta)
        files.append(fname)
    assert not left, f"tensors in no shard: {sorted(left)}"
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    return files + ["model.safetensors.index.json"]


def read_weights(folder):
    """Every tensor of the folder's weights, as stored (dtypes unchanged)."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fname in files:
        out.update(load_file(os.path.join(folder, fname)))
    return out


def read_config(folder):
    with open(os.path.join(folder, "config.json")) as f:
        return json.load(f)


def load_model(folder, dtype=torch.float32):
    """The reference model of an HF folder, its weights upcast to `dtype`."""
    model = build_model(read_config(folder)).to(dtype)
    model.load_hf_state_dict(read_weights(folder))
    return model.eval()
