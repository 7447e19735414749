"""What train_model.py and evaluate.py share: the model config, the training
hyperparameters, GPT-2's initialisation and the token files."""

import json
import math
import os

import numpy as np
import torch

# The shipped config.json is this dict plus bookkeeping (see evaluate.py).
CONFIG = {
    "model_type": "gpt2",
    "vocab_size": 8192,
    "n_positions": 256,
    "n_embd": 256,
    "n_layer": 2,
    "n_head": 8,
    "n_inner": None,  # 4 * n_embd
    "activation_function": "gelu_new",
    "layer_norm_epsilon": 1e-5,
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "bos_token_id": 8191,
    "eos_token_id": 8191,
}

HPARAMS = {
    "seed": 1234,
    "batch_size": 16,  # windows of n_positions tokens: 4096 tokens a step
    "steps": 1200,
    "warmup_steps": 100,
    "lr": 2e-3,
    "min_lr": 2e-4,
    "betas": [0.9, 0.95],
    "weight_decay": 0.1,  # matrices and embeddings; not biases or LayerNorm
    "grad_clip": 1.0,
    "init_std": 0.02,
    "log_every": 10,
    "eval_every": 100,
    "eval_windows": 32,
    "checkpoint_every": 200,
}


def init_weights(model, config, std=0.02):
    """GPT-2's initialisation: N(0, 0.02) weights and embeddings, the residual output
    projections scaled by 1/sqrt(2 n_layer), zero biases, unit LayerNorm gains."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                p.fill_(1.0)
            elif name.endswith("c_proj.weight"):
                p.normal_(0.0, std / math.sqrt(2 * config["n_layer"]))
            else:
                p.normal_(0.0, std)


def load_tokens(cache, name, with_docs=False):
    """The uint16 token stream CACHE/tokens/NAME.bin (documents as [BOS] + ids) and its BOS id,
    or with_docs: (stream, the documents' {path, start, length, bytes})."""
    with open(os.path.join(cache, "tokens", f"{name}.json")) as f:
        meta = json.load(f)
    stream = np.fromfile(os.path.join(cache, "tokens", f"{name}.bin"), dtype="<u2")
    assert len(stream) == meta["tokens"], f"{name}.bin: {len(stream)} tokens, expected {meta['tokens']}"
    if with_docs:
        return stream, meta["documents"]
    return stream, meta["bos_id"]


def heldout_windows(stream, docs, bos, n_ctx):
    """Every held-out token exactly once: each document's tokens (after its BOS) cut into
    consecutive runs of n_ctx - 1, each run a window [BOS] + run. Predictions = tokens."""
    windows = []
    for d in docs:
        ids = stream[d["start"] : d["start"] + d["length"]].astype(np.int64)
        assert ids[0] == bos
        body = ids[1:]
        for i in range(0, len(body), n_ctx - 1):
            windows.append([bos] + body[i : i + n_ctx - 1].tolist())
    return windows
