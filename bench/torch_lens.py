"""PyTorch timings of the lens and head work Loupe's bench/lens.ts measures, on the same weights and cores.

    python3 bench/torch_lens.py --model DIR --ids IDS.json [--repeat 5] [--threads 2] [--steps 10]

IDS.json: {"text": [ids of the lens text], "windows": [[ids], ...]} (written by bench/lens.ts).

- Logit-lens grid: one forward pass that keeps the residual stream, then every
  layer x position read through the final norm and the unembedding, with the
  top 10 tokens, the next token's rank and probability and the entropy
  (float32, no autograd).
- TextSpan: the authors' algorithm on the full output matrices (every head's
  hook_result over the windows, read through the final norm; SVD; the pool
  projected; greedy removal), float32, as tools/reference/lens_reference.py
  writes it.

Prints one JSON object, with the chosen token ids per head so the bench can
compare them with Loupe's.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
from hf_folder import load_model  # noqa: E402
from lens_reference import blocks, head_outputs, lens_logprobs, residual_at, text_span, unembedding_pool  # noqa: E402


def lens_grid(model, ids, k=10):
    _, cache = model.run_with_cache(ids)
    L = len(blocks(model))
    T = ids.shape[1]
    out = []
    for layer in range(L + 1):
        logp = lens_logprobs(model, residual_at(cache, L, layer)[0])
        top = logp.topk(k, dim=-1)
        nxt = ids[0, 1:]
        target = logp[:-1].gather(1, nxt[:, None])
        rank = 1 + (logp[:-1] > target).sum(-1)
        entropy = -(logp.exp() * logp).sum(-1)
        out.append((top, target, rank, entropy))
    assert len(out) == L + 1 and out[0][0].values.shape == (T, k)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rank", type=int, default=80)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, torch.float32)
    with open(args.ids) as f:
        data = json.load(f)
    ids = torch.tensor([data["text"]])

    with torch.inference_mode():
        t0 = time.perf_counter()
        lens_grid(model, ids)
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            lens_grid(model, ids)
            times.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        # One window per pass: the held-out windows differ in length.
        outputs = [head_outputs(model, torch.tensor([w])) for w in data["windows"]]
        per_layer = [torch.cat([o[layer] for o in outputs], dim=1) for layer in range(len(blocks(model)))]
        pool = unembedding_pool(model)
        chosen = []
        for layer, heads in enumerate(per_layer):
            for h in range(heads.shape[0]):
                ids_h, fractions, r, _ = text_span(heads[h], pool, args.steps, args.rank)
                chosen.append({"layer": layer, "head": h, "ids": ids_h, "fractions": fractions, "rank": r})
        textspan_s = time.perf_counter() - t0

    print(json.dumps({
        "torch": torch.__version__,
        "threads": args.threads,
        "lens_grid_first_ms": first * 1000,
        "lens_grid_median_ms": statistics.median(times) * 1000,
        "textspan_seconds": textspan_s,
        "textspan_positions": int(per_layer[0].shape[1]),
        "textspan": chosen,
    }))


if __name__ == "__main__":
    main()
