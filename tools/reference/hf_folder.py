"""Hugging Face checkpoint folders: config.json plus weights in one safetensors file
or in shards listed by model.safetensors.index.json."""

import contextlib
import json
import os

import torch
import torch.nn as nn

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


@contextlib.contextmanager
def _no_init():
    """Build modules without drawing random weights (they are about to be overwritten); the
    untouched storage costs no memory until the checkpoint's values are copied in."""
    saved = nn.Linear.reset_parameters, nn.Embedding.reset_parameters
    nn.Linear.reset_parameters = nn.Embedding.reset_parameters = lambda self: None
    try:
        yield
    finally:
        nn.Linear.reset_parameters, nn.Embedding.reset_parameters = saved


def load_model(folder, dtype=torch.float32):
    """The reference model of an HF folder, its weights upcast to `dtype`.

    A sharded checkpoint whose tensor names are the model's own (Llama-style, Gemma) is read one
    shard at a time, each tensor converted as it is copied in, so that loading needs the model
    plus one shard, not the whole checkpoint twice over."""
    config = read_config(folder)
    index = os.path.join(folder, "model.safetensors.index.json")
    with _no_init():
        model = build_model(config)
    model = model.to(dtype)
    own = model.state_dict()
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        if set(weight_map) == set(own):
            with torch.no_grad():
                for fname in sorted(set(weight_map.values())):
                    for k, v in load_file(os.path.join(folder, fname)).items():
                        if tuple(v.shape) != tuple(own[k].shape):
                            raise ValueError(f"{k}: shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
                        own[k].copy_(v)
            return model.eval()
    model.load_hf_state_dict(read_weights(folder))
    return model.eval()
