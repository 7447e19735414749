"""Exports the trained default model as a Hugging Face GPT-2 checkpoint and evaluates
it from the weights as shipped.

1. From CACHE/train/final.pt (f32): held-out loss of the f32 weights and of the
   weights rounded to f16 (then upcast to f32). f16 is shipped if that moves the
   held-out loss by less than F16_TOLERANCE.
2. Writes OUT/config.json and OUT/model.safetensors (GPT2LMHeadModel layout:
   transformer.wte / wpe / h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
   mlp.c_proj} / ln_f, Conv1D weights [in, out], unembedding tied to wte so no
   lm_head.weight), then reads them back, checks keys, shapes and config, and
   loads them into a fresh model (upcast to f32).
3. From those weights: loss and bits per byte on the whole held-out split, loss
   on a fixed sample of training windows, and the same held-out predictions
   under two baselines: a unigram model (add-one smoothed token frequencies of
   the training split) and the same architecture untrained (the seeded
   initialisation training started from).
4. OUT/heldout-sample.json: CACHE/sample/items.json plus the mean next-token
   loss over all predicted positions of all items (float64, shipped weights).
5. OUT/evaluation.json: all of the above, for the model card.

    python3 tools/default-model/evaluate.py [--cache DIR] [--out DIR]
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from models import build_model  # noqa: E402
from safetensors_io import load_file, save_file  # noqa: E402

sys.path.insert(0, HERE)
from common import CONFIG, HPARAMS, heldout_windows, init_weights, load_tokens  # noqa: E402

F16_TOLERANCE = 1e-3
TRAIN_SAMPLE_WINDOWS = 256


@torch.no_grad()
def window_nll(model, windows, batch=16, dtype=torch.float32):
    """Per-window summed next-token loss (nats, float64) and prediction counts."""
    model.eval()
    sums, counts = [], []
    for i in range(0, len(windows), batch):
        group = windows[i : i + batch]
        T = max(len(w) for w in group)
        ids = torch.zeros(len(group), T, dtype=torch.int64)
        for j, w in enumerate(group):
            ids[j, : len(w)] = torch.as_tensor(w)
        logits = model(ids[:, :-1]).to(dtype)
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
        ).view(len(group), T - 1)
        for j, w in enumerate(group):
            sums.append(nll[j, : len(w) - 1].double().sum().item())
            counts.append(len(w) - 1)
    return np.array(sums), np.array(counts)


def mean_loss(model, windows, dtype=torch.float32):
    s, c = window_nll(model, windows, dtype=dtype)
    return s.sum() / c.sum(), s.sum(), int(c.sum())


def model_from(state, dtype=torch.float32):
    m = build_model(CONFIG)
    m.load_hf_state_dict({k: v.to(dtype) for k, v in state.items()})
    return m.to(dtype).eval()


def hf_config(dtype):
    c = {
        "architectures": ["GPT2LMHeadModel"],
        **CONFIG,
        "n_ctx": CONFIG["n_positions"],
        "attn_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "resid_pdrop": 0.0,
        "initializer_range": HPARAMS["init_std"],
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "use_cache": True,
        "torch_dtype": dtype,
    }
    return c


EXPECTED_SHAPES = None


def expected_shapes():
    d, V, P, L = CONFIG["n_embd"], CONFIG["vocab_size"], CONFIG["n_positions"], CONFIG["n_layer"]
    m = 4 * d if CONFIG["n_inner"] is None else CONFIG["n_inner"]
    s = {"transformer.wte.weight": [V, d], "transformer.wpe.weight": [P, d],
         "transformer.ln_f.weight": [d], "transformer.ln_f.bias": [d]}
    for i in range(L):
        p = f"transformer.h.{i}."
        s.update({
            p + "ln_1.weight": [d], p + "ln_1.bias": [d],
            p + "attn.c_attn.weight": [d, 3 * d], p + "attn.c_attn.bias": [3 * d],
            p + "attn.c_proj.weight": [d, d], p + "attn.c_proj.bias": [d],
            p + "ln_2.weight": [d], p + "ln_2.bias": [d],
            p + "mlp.c_fc.weight": [d, m], p + "mlp.c_fc.bias": [m],
            p + "mlp.c_proj.weight": [m, d], p + "mlp.c_proj.bias": [d],
        })
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=".cache/default-model")
    ap.add_argument("--out", default="models/default")
    args = ap.parse_args()
    torch.set_num_threads(2)

    final = torch.load(os.path.join(args.cache, "train", "final.pt"))
    trained = build_model(CONFIG)
    trained.load_state_dict(final["model"])
    hf32 = {k: v.float() for k, v in trained.hf_state_dict(lm_head=False).items()}

    val, docs = load_tokens(args.cache, "val", with_docs=True)
    train, bos = load_tokens(args.cache, "train")
    windows = heldout_windows(val, docs, bos, CONFIG["n_positions"])
    heldout_bytes = sum(d["bytes"] for d in docs)

    # ---- f32 vs f16 ----
    loss_f32, _, n_pred = mean_loss(model_from(hf32), windows)
    hf16 = {k: v.half() for k, v in hf32.items()}
    loss_f16, _, _ = mean_loss(model_from(hf16), windows)
    ship_f16 = abs(loss_f16 - loss_f32) < F16_TOLERANCE
    shipped_dtype = "float16" if ship_f16 else "float32"
    print(f"eval: held-out loss f32 {loss_f32:.6f}, f16 {loss_f16:.6f} (diff {loss_f16 - loss_f32:+.2e}): shipping {shipped_dtype}")

    # ---- write and read back the checkpoint ----
    config = hf_config(shipped_dtype)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    st_path = os.path.join(args.out, "model.safetensors")
    save_file(hf16 if ship_f16 else hf32, st_path, metadata={"format": "pt"})

    with open(os.path.join(args.out, "config.json")) as f:
        back_cfg = json.load(f)
    assert back_cfg["model_type"] == "gpt2" and back_cfg["architectures"] == ["GPT2LMHeadModel"]
    for k in ("n_embd", "n_layer", "n_head", "n_positions", "vocab_size", "activation_function",
              "layer_norm_epsilon", "bos_token_id", "eos_token_id"):
        assert back_cfg[k] == CONFIG[k], k
    tensors = load_file(st_path)
    want = expected_shapes()
    assert set(tensors) == set(want), f"keys: missing {set(want) - set(tensors)}, extra {set(tensors) - set(want)}"
    for k, v in tensors.items():
        assert list(v.shape) == want[k], f"{k}: {list(v.shape)} != {want[k]}"
        assert v.dtype == (torch.float16 if ship_f16 else torch.float32), k
    shipped = model_from(tensors)  # rounded as stored, upcast to f32
    n_params = sum(v.numel() for v in tensors.values())
    n_embed = tensors["transformer.wte.weight"].numel() + tensors["transformer.wpe.weight"].numel()
    print(f"eval: {st_path}: {len(tensors)} tensors, {n_params} parameters, {shipped_dtype}; config and shapes check out")

    # ---- numbers from the shipped weights ----
    sums, counts = window_nll(shipped, windows)
    nats = sums.sum()
    heldout = {
        "loss": nats / counts.sum(),
        "bits_per_byte": nats / math.log(2) / heldout_bytes,
        "predictions": int(counts.sum()),
        "bytes": heldout_bytes,
        "windows": len(windows),
        "documents": len(docs),
    }
    # the training loss of the shipped weights, on a fixed sample of training windows
    gen = torch.Generator().manual_seed(HPARAMS["seed"] + 1)
    n_ctx = CONFIG["n_positions"]
    starts = torch.randint(0, len(train) - n_ctx, (TRAIN_SAMPLE_WINDOWS,), generator=gen).tolist()
    train_windows = [[bos] + train[s : s + n_ctx].astype(np.int64).tolist() for s in starts]
    train_loss, _, _ = mean_loss(shipped, train_windows)

    # unigram baseline: add-one smoothed frequencies of the training split's tokens (BOS excluded)
    counts_train = np.bincount(train.astype(np.int64), minlength=CONFIG["vocab_size"]).astype(np.float64)
    counts_train[bos] = 0
    logp = np.log((counts_train + 1) / (counts_train.sum() + CONFIG["vocab_size"]))
    targets = np.concatenate([np.asarray(w[1:], dtype=np.int64) for w in windows])
    uni_nats = -logp[targets].sum()
    unigram = {"loss": uni_nats / len(targets), "bits_per_byte": uni_nats / math.log(2) / heldout_bytes}

    # untrained baseline: the seeded initialisation training started from
    torch.manual_seed(HPARAMS["seed"])
    init_model = build_model(CONFIG)
    init_weights(init_model, CONFIG, HPARAMS["init_std"])
    init_loss, init_nats, _ = mean_loss(init_model.float(), windows)
    untrained = {"loss": init_loss, "bits_per_byte": init_nats / math.log(2) / heldout_bytes}
    print(f"eval: held-out loss {heldout['loss']:.4f} ({heldout['bits_per_byte']:.4f} bits/byte), "
          f"train sample {train_loss:.4f}; unigram {unigram['loss']:.4f}, untrained {untrained['loss']:.4f}")

    # ---- held-out sample for the engine's test: float64 ----
    with open(os.path.join(args.cache, "sample", "items.json")) as f:
        sample = json.load(f)
    assert sample["n_ctx"] == CONFIG["n_positions"] and sample["bos_id"] == bos
    shipped64 = model_from(tensors, torch.float64)
    s_sums, s_counts = window_nll(shipped64, [it["ids"] for it in sample["items"]], batch=4, dtype=torch.float64)
    sample["loss"] = float(s_sums.sum() / s_counts.sum())
    sample["predictions"] = int(s_counts.sum())
    sample["weights"] = shipped_dtype
    with open(os.path.join(args.out, "heldout-sample.json"), "w") as f:
        json.dump(sample, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"eval: heldout-sample.json: {len(sample['items'])} items, {sample['predictions']} predictions, loss {sample['loss']:.6f}")

    with open(os.path.join(args.out, "training-log.jsonl")) as f:
        log = [json.loads(l) for l in f]
    end = next(r for r in log if r.get("event") == "end")
    last_evals = [r for r in log if "heldout_loss_subset" in r]
    result = {
        "weights": {"dtype": shipped_dtype, "parameters": n_params, "embedding_parameters": n_embed,
                    "non_embedding_parameters": n_params - n_embed,
                    "heldout_loss_f32": loss_f32, "heldout_loss_f16": loss_f16,
                    "f16_minus_f32": loss_f16 - loss_f32, "f16_tolerance": F16_TOLERANCE},
        "heldout": heldout,
        "train_sample": {"loss": train_loss, "windows": TRAIN_SAMPLE_WINDOWS},
        "baselines": {"unigram": unigram, "untrained": untrained},
        "heldout_sample": {"items": len(sample["items"]), "predictions": sample["predictions"], "loss": sample["loss"]},
        "training": {"steps": end["steps"], "tokens": end["tokens"], "elapsed_s": end["elapsed_s"],
                     "threads": end["threads"], "final_heldout_loss_subset": last_evals[-1]["heldout_loss_subset"]},
        "config": CONFIG,
        "hparams": HPARAMS,
    }
    with open(os.path.join(args.out, "evaluation.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
