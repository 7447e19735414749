"""Write a random checkpoint for benchmarks: GPT-2 small (f32) or gemma-2-2b (bf16, sharded).

    python3 tools/reference/make_bench_checkpoint.py --out DIR [--layers 12 --d-model 768 --heads 12
                                                               --vocab 50257 --positions 1024 --seed 0]
    python3 tools/reference/make_bench_checkpoint.py --out DIR --shape gemma-2-2b [--layers 26 --seed 0]

The default size is GPT-2 small (124M parameters, ~500 MB, HF layout with the
`transformer.` prefix). Weights are drawn like GPT-2's initialisation (std 0.02,
output projections scaled down by sqrt(2 * layers)), so activations stay in a
realistic range. The unembedding is tied to wte and, as in a modern save, not
written separately.

gemma-2-2b: 26 layers, d_model 2304, 8 heads, 4 key/value heads, head_dim 256,
d_mlp 9216, vocabulary 256,000 (2.6B parameters, ~5.2 GB in bf16), Gemma 2's
config.json and tensor names, tied embedding, written as three shards plus
model.safetensors.index.json like the real upload. It is generated one tensor at
a time straight into the files, so the generator itself needs about two of the
largest tensor (the 1.2 GB embedding) in memory, not the model. --layers shrinks
it for a quick try.
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
from safetensors_io import save_file_streaming  # noqa: E402


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


def gemma2_2b_config(layers):
    """google/gemma-2-2b's config.json (bf16 here; the upload is f32)."""
    return {
        "architectures": ["Gemma2ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": 50.0,
        "bos_token_id": 2,
        "cache_implementation": "hybrid",
        "eos_token_id": 1,
        "final_logit_softcapping": 30.0,
        "head_dim": 256,
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 2304,
        "initializer_range": 0.02,
        "intermediate_size": 9216,
        "max_position_embeddings": 8192,
        "model_type": "gemma2",
        "num_attention_heads": 8,
        "num_hidden_layers": layers,
        "num_key_value_heads": 4,
        "pad_token_id": 0,
        "query_pre_attn_scalar": 256,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": 256000,
    }


def gemma2_tensors(c):
    """[(name, shape)] of a Gemma 2 checkpoint, in the upload's order (embedding, then layer by layer)."""
    d, dh, dm = c["hidden_size"], c["head_dim"], c["intermediate_size"]
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    out = [("model.embed_tokens.weight", (c["vocab_size"], d))]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (d,)), (p + "mlp.down_proj.weight", (d, dm)),
                (p + "mlp.gate_proj.weight", (dm, d)), (p + "mlp.up_proj.weight", (dm, d)),
                (p + "post_attention_layernorm.weight", (d,)), (p + "post_feedforward_layernorm.weight", (d,)),
                (p + "pre_feedforward_layernorm.weight", (d,)), (p + "self_attn.k_proj.weight", (Hkv * dh, d)),
                (p + "self_attn.o_proj.weight", (d, H * dh)), (p + "self_attn.q_proj.weight", (H * dh, d)),
                (p + "self_attn.v_proj.weight", (Hkv * dh, d))]
    return out + [("model.norm.weight", (d,))]


def write_gemma2(out, layers, seed, n_shards=3):
    config = gemma2_2b_config(layers)
    specs = gemma2_tensors(config)
    # The names must be the reference model's own (checked on a small model of the same family).
    small = dict(config, hidden_size=8, head_dim=4, intermediate_size=8, vocab_size=16, num_attention_heads=2,
                 num_key_value_heads=1)
    assert set(build_model(small).hf_state_dict()) == {n for n, _ in specs}
    gen = torch.Generator().manual_seed(seed)
    n_layer = config["num_hidden_layers"]

    def make(name):
        shape = dict(specs)[name]
        if name.endswith("norm.weight"):  # Gemma's norms scale by 1 + w: w near 0
            return 0.05 * torch.randn(shape, generator=gen)
        std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
        t = torch.empty(shape, dtype=torch.bfloat16)
        rows = max(1, (1 << 24) // shape[1])  # 16M elements at a time: no f32 copy of the whole tensor
        for r in range(0, shape[0], rows):
            t[r: r + rows] = (std * torch.randn((min(rows, shape[0] - r), shape[1]), generator=gen)).to(torch.bfloat16)
        return t

    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):  # shards of an earlier run would be read as part of this checkpoint
        if old.startswith("model") and old.endswith((".safetensors", ".safetensors.index.json")):
            os.remove(os.path.join(out, old))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    # Shards of about equal size, cut between tensors in file order.
    sizes = [2 * math.prod(shape) for _, shape in specs]
    total, shards, filled = sum(sizes), [[]], 0
    for (name, shape), size in zip(specs, sizes):
        if shards[-1] and filled + size > total / n_shards and len(shards) < n_shards:
            shards.append([])
            filled = 0
        shards[-1].append((name, torch.bfloat16, shape))
        filled += size
    weight_map = {}
    for i, part in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file_streaming(os.path.join(out, fname), part, make, {"format": "pt"})
        weight_map.update({name: fname for name, _, _ in part})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")
    n = sum(math.prod(shape) for _, shape in specs)
    print(json.dumps({"out": out, "shape": "gemma-2-2b", "layers": n_layer, "parameters": n, "bytes": total,
                      "shards": len(shards)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", choices=["gpt2-small", "gemma-2-2b"], default="gpt2-small")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--positions", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.shape == "gemma-2-2b":
        write_gemma2(args.out, args.layers or 26, args.seed)
        return

    config = gpt2_config(args.layers or 12, args.d_model, args.heads, args.vocab, args.positions)
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
