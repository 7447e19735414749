"""Write a random GPT-2-small-sized checkpoint (f32, HF layout, `transformer.` prefix) for benchmarks.

    python3 tools/reference/make_bench_checkpoint.py --out DIR [--layers 12 --d-model 768 --heads 12
                                                               --vocab 50257 --positions 1024 --seed 0]

The default size is GPT-2 small (124M parameters, ~500 MB). Weights are drawn
like GPT-2's initialisation (std 0.02, output projections scaled down by
sqrt(2 * layers)), so activations stay in a realistic range. The unembedding
is tied to wte and, as in a modern save, not written separately.
"""

import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_folder import write_weights  # noqa: E402
from models import build_model  # noqa: E402


def gpt2_config(layers, d_model, heads, vocab, positions):
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": vocab - 1,
        "embd_pdrop": 0.1,
        "eos_token_id": vocab - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": positions,
        "n_embd": d_model,
        "n_head": heads,
        "n_inner": None,
        "n_layer": layers,
        "n_positions": positions,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": vocab,
    }


def init_gpt2(model, seed):
    gen = torch.Generator().manual_seed(seed)
    n_layer = model.config["n_layer"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.copy_(1.0 + 0.05 * torch.randn(p.shape, generator=gen) if name.endswith("weight")
                        else 0.02 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.01 * torch.randn(p.shape, generator=gen))
            else:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
                p.copy_(std * torch.randn(p.shape, generator=gen))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--positions", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    config = gpt2_config(args.layers, args.d_model, args.heads, args.vocab, args.positions)
    model = build_model(config)
    init_gpt2(model, args.seed)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    tensors = model.hf_state_dict(prefix="transformer.", lm_head=False)
    write_weights(args.out, tensors)
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"out": args.out, "parameters": n,
                      "bytes": os.path.getsize(os.path.join(args.out, "model.safetensors"))}))


if __name__ == "__main__":
    main()
