"""Trains the default model: a small GPT-2 on the default corpus, on CPU.

The model is the hand-written PyTorch GPT-2 of tools/reference/models.py (the
one the engine's fixtures are checked against), built from the same
config.json that is shipped. Training windows always start with BOS, as the
engine's inputs do: [BOS] + N_CTX - 1 tokens from a random place in the
training stream (documents there are separated by BOS too); every position is
a prediction. AdamW, linear warm-up then cosine decay to a tenth of the peak,
gradient clipping at 1, fixed seed, 2 threads.

Writes CACHE/train/final.pt (f32 state dict and the key of its inputs),
CACHE/train/checkpoint.pt (for resuming; removed at the end) and
OUT/training-log.jsonl (train loss every LOG_EVERY steps, held-out loss on a
fixed subset of held-out windows every EVAL_EVERY steps). If final.pt already
exists for the same inputs (token files, config, hyperparameters, this
script), does nothing.

    python3 tools/default-model/train_model.py [--cache DIR] [--out DIR]
    python3 tools/default-model/train_model.py --trial 60    # speed trial, writes nothing
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import models  # noqa: E402
from models import build_model  # noqa: E402

# Training speed only: PyTorch's fused tanh-approximation GELU is the same function as the
# reference's gelu_new formula (to float rounding) and trains ~3x faster on CPU than the
# formula through autograd. evaluate.py computes every reported number with the reference's own.
models.ACTIVATIONS["gelu_new"] = lambda x: F.gelu(x, approximate="tanh")

sys.path.insert(0, HERE)
from common import CONFIG, HPARAMS, heldout_windows, init_weights, load_tokens  # noqa: E402


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def lr_at(step, hp):
    if step < hp["warmup_steps"]:
        return hp["lr"] * (step + 1) / hp["warmup_steps"]
    progress = (step - hp["warmup_steps"]) / max(1, hp["steps"] - hp["warmup_steps"])
    return hp["min_lr"] + 0.5 * (hp["lr"] - hp["min_lr"]) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model, hp):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": hp["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=hp["lr"],
        betas=tuple(hp["betas"]),
        eps=1e-8,
    )


def sample_batch(stream, bos, n_ctx, batch, gen):
    """[B, n_ctx] inputs ([BOS] + tokens) and [B, n_ctx] targets (the tokens that follow)."""
    starts = torch.randint(0, len(stream) - n_ctx, (batch,), generator=gen)
    chunks = torch.stack([torch.from_numpy(stream[s : s + n_ctx].astype(np.int64)) for s in starts.tolist()])
    inputs = torch.cat([torch.full((batch, 1), bos, dtype=torch.int64), chunks[:, :-1]], dim=1)
    return inputs, chunks


@torch.no_grad()
def heldout_loss(model, windows, batch=16):
    """Mean next-token loss over windows [(ids, n_targets)] (ids = [BOS] + tokens)."""
    total, count = 0.0, 0
    model.eval()
    for i in range(0, len(windows), batch):
        group = windows[i : i + batch]
        T = max(len(w) for w in group)
        ids = torch.zeros(len(group), T, dtype=torch.int64)
        mask = torch.zeros(len(group), T - 1, dtype=torch.bool)
        for j, w in enumerate(group):
            ids[j, : len(w)] = torch.as_tensor(w)
            mask[j, : len(w) - 1] = True
        logits = model(ids[:, :-1]).float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
        total += nll[mask.reshape(-1)].double().sum().item()
        count += int(mask.sum())
    model.train()
    return total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=".cache/default-model")
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--trial", type=float, default=0, help="speed trial: train this many seconds, print tokens/s")
    args = ap.parse_args()
    torch.set_num_threads(2)
    hp = dict(HPARAMS)

    train_stream, bos = load_tokens(args.cache, "train")
    val_stream, val_docs = load_tokens(args.cache, "val", with_docs=True)
    # the periodic held-out estimate: a fixed, evenly spaced subset of the held-out windows
    all_windows = heldout_windows(val_stream, val_docs, bos, CONFIG["n_positions"])
    stride = max(1, len(all_windows) // hp["eval_windows"])
    eval_windows = all_windows[::stride][: hp["eval_windows"]]

    train_dir = os.path.join(args.cache, "train")
    os.makedirs(train_dir, exist_ok=True)
    key = hashlib.sha256(
        json.dumps(
            {
                "train": file_sha256(os.path.join(args.cache, "tokens", "train.bin")),
                "val": file_sha256(os.path.join(args.cache, "tokens", "val.bin")),
                "config": CONFIG,
                "hparams": hp,
                "script": file_sha256(__file__),
                "common": file_sha256(os.path.join(HERE, "common.py")),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    final_path = os.path.join(train_dir, "final.pt")
    if not args.trial and os.path.exists(final_path) and torch.load(final_path)["key"] == key:
        print(f"train: {final_path} is up to date ({key[:12]}); not retraining")
        return

    torch.manual_seed(hp["seed"])
    model = build_model(CONFIG)
    init_weights(model, CONFIG)
    model.train()
    opt = make_optimizer(model, hp)
    gen = torch.Generator().manual_seed(hp["seed"])
    n_params = sum(p.numel() for p in model.parameters())
    tokens_per_step = hp["batch_size"] * CONFIG["n_positions"]

    if args.trial:
        # a few steps to warm up, then time whole steps for `trial` seconds
        for _ in range(3):
            x, y = sample_batch(train_stream, bos, CONFIG["n_positions"], hp["batch_size"], gen)
            loss = F.cross_entropy(model(x).reshape(-1, CONFIG["vocab_size"]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        t0, steps = time.time(), 0
        while time.time() - t0 < args.trial:
            x, y = sample_batch(train_stream, bos, CONFIG["n_positions"], hp["batch_size"], gen)
            loss = F.cross_entropy(model(x).reshape(-1, CONFIG["vocab_size"]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"])
            opt.step()
            steps += 1
        dt = time.time() - t0
        t_eval = time.time()
        heldout_loss(model, eval_windows)
        t_eval = time.time() - t_eval
        print(
            json.dumps(
                {
                    "params": n_params,
                    "steps": steps,
                    "seconds": round(dt, 1),
                    "s_per_step": round(dt / steps, 3),
                    "tokens_per_s": round(steps * tokens_per_step / dt),
                    "eval_seconds": round(t_eval, 1),
                    "loss": round(loss.item(), 3),
                }
            )
        )
        return

    ckpt_path = os.path.join(train_dir, "checkpoint.pt")
    log_path = os.path.join(args.out, "training-log.jsonl")
    os.makedirs(args.out, exist_ok=True)
    start, elapsed = 0, 0.0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        if ck["key"] == key:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            gen.set_state(ck["gen"])
            start, elapsed = ck["step"], ck["elapsed"]
            print(f"train: resuming at step {start}")
    if start == 0:
        with open(log_path, "w") as f:
            f.write(json.dumps({"event": "start", "params": n_params, "config": CONFIG, "hparams": hp, "key": key}) + "\n")
    else:  # drop log lines past the checkpoint
        with open(log_path) as f:
            lines = [l for l in f if json.loads(l).get("step", -1) <= start]
        with open(log_path, "w") as f:
            f.writelines(lines)

    log = open(log_path, "a")
    t_start = time.time() - elapsed
    window_loss, window_n = 0.0, 0
    for step in range(start, hp["steps"]):
        lr = lr_at(step, hp)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = sample_batch(train_stream, bos, CONFIG["n_positions"], hp["batch_size"], gen)
        loss = F.cross_entropy(model(x).reshape(-1, CONFIG["vocab_size"]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"]).item()
        opt.step()
        window_loss += loss.item()
        window_n += 1
        done = step + 1
        if done % hp["log_every"] == 0 or done == hp["steps"]:
            el = time.time() - t_start
            rec = {
                "step": done,
                "tokens": done * tokens_per_step,
                "lr": round(lr, 7),
                "train_loss": round(window_loss / window_n, 5),
                "grad_norm": round(grad_norm, 4),
                "elapsed_s": round(el, 1),
            }
            window_loss, window_n = 0.0, 0
            if done % hp["eval_every"] == 0 or done == hp["steps"]:
                rec["heldout_loss_subset"] = round(heldout_loss(model, eval_windows), 5)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
        if done % hp["checkpoint_every"] == 0 and done < hp["steps"]:
            tmp = ckpt_path + ".tmp"
            torch.save(
                {"key": key, "step": done, "elapsed": time.time() - t_start, "model": model.state_dict(),
                 "opt": opt.state_dict(), "gen": gen.get_state()},
                tmp,
            )
            os.replace(tmp, ckpt_path)
    elapsed = time.time() - t_start
    log.write(json.dumps({"event": "end", "steps": hp["steps"], "tokens": hp["steps"] * tokens_per_step,
                          "elapsed_s": round(elapsed, 1), "threads": torch.get_num_threads(), "cpu": cpu_name(),
                          "torch": torch.__version__}) + "\n")
    log.close()
    tmp = final_path + ".tmp"
    torch.save({"key": key, "model": model.state_dict(), "elapsed_s": elapsed, "steps": hp["steps"],
                "tokens": hp["steps"] * tokens_per_step}, tmp)
    os.replace(tmp, final_path)
    if os.path.exists(ckpt_path):
        os.remove(ckpt_path)
    print(f"train: done, {hp['steps']} steps in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
