"""Activation patching in PyTorch eager, the same grids as the engine's bench (bench/patch.ts), for a ratio.

    python3 bench/torch_patch.py --model DIR --pair PAIR.json [--threads 2] [--batch 32]

PAIR.json: {"clean": [ids], "corrupted": [ids], "target": id, "versus": id, "grids": ["resid_pre", "heads", ...]}.
The reference model (tools/reference/models.py) runs in float32 without autograd. As in the engine, the
clean and corrupted texts run once with every hook the grid reads, then each cell (clean activation patched
into the corrupted run at one layer × position, or one head at every position) is one item of a batched
run of `--batch` items, with per-item edits x·mul + add. Prints one JSON object: seconds and the
normalised logit-difference grid for each grid.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
from hf_folder import load_model  # noqa: E402


def cells_of(grid, L, H, T):
    """(row, column, hook, position or None, head or None) per cell."""
    if grid == "resid_pre":
        return [(l, p, f"blocks.{l}.hook_resid_pre", p, None) for l in range(L) for p in range(T)]
    if grid == "heads":
        return [(l, h, f"blocks.{l}.attn.hook_z", None, h) for l in range(L) for h in range(H)]
    if grid == "head-positions":
        return [(l * H + h, p, f"blocks.{l}.attn.hook_z", p, h) for l in range(L) for h in range(H) for p in range(T)]
    raise ValueError(grid)


def run_grid(model, pair, grid, batch):
    cfg = model.config
    L, H = cfg["n_layer"], cfg["n_head"]
    clean, corrupted = pair["clean"], pair["corrupted"]
    target, versus = pair["target"], pair["versus"]
    T = len(clean)
    t0 = time.perf_counter()
    cells = cells_of(grid, L, H, T)
    hooks = sorted({c[2] for c in cells})
    with torch.inference_mode():
        logits, cache = model.run_with_cache(torch.tensor([clean, corrupted]))
        ld = lambda lg: (lg[:, -1, target] - lg[:, -1, versus])  # noqa: E731
        ld_clean, ld_corrupted = ld(logits).tolist()
        rows = max(c[0] for c in cells) + 1
        cols = max(c[1] for c in cells) + 1
        values = [[float("nan")] * cols for _ in range(rows)]
        base = torch.tensor([corrupted])
        for c0 in range(0, len(cells), batch):
            chunk = cells[c0 : c0 + batch]
            B = len(chunk)
            edits = {}
            for hook in hooks:
                mine = [(b, c) for b, c in enumerate(chunk) if c[2] == hook]
                if not mine:
                    continue
                src = cache[hook][0]  # the clean run's activation [T, ...]
                mul = torch.ones((B,) + tuple(src.shape))
                add = torch.zeros((B,) + tuple(src.shape))
                for b, (_, _, _, p, h) in mine:
                    where = (b, slice(None) if p is None else p) + ((h,) if h is not None else ())
                    mul[where] = 0
                    add[where] = src[where[1:]]
                edits[hook] = (mul, add)
            out = model.run_with_edits(base.expand(B, T), edits)
            for b, (r, c, *_rest) in enumerate(chunk):
                values[r][c] = ((ld(out[b : b + 1])[0].item()) - ld_corrupted) / (ld_clean - ld_corrupted)
    return {"seconds": time.perf_counter() - t0, "cells": len(cells), "values": values}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--pair", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.pair) as f:
        pair = json.load(f)
    model = load_model(args.model, torch.float32)
    out = {"threads": args.threads, "batch": args.batch, "grids": {}}
    for grid in pair["grids"]:
        out["grids"][grid] = run_grid(model, pair, grid, args.batch)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
