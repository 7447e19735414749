"""PyTorch eager forward speed of the reference model, for comparison with the engine's bench.

    python3 bench/torch_forward.py --model DIR [--tokens 128] [--batch 1] [--repeat 20] [--warmup 3] [--threads 2]
    python3 bench/torch_forward.py --model DIR --export-onnx PATH [--tokens 128]

DIR is a Hugging Face checkpoint folder (config.json + safetensors weights; any
family tools/reference knows: GPT-2 small and the gemma-2-2b shape of
make_bench_checkpoint.py are the ones benchmarked). The model runs in float32
without hooks and without autograd; after the warm-up, each repetition is one
forward pass of [batch, tokens] random ids, and the result is printed as one
JSON object, with the BLAS library that ran, a 2048² sgemm's GFLOP/s measured
just after (the machine's load shows in it) and the process's peak resident
memory (a sharded checkpoint is loaded shard by shard, see hf_folder.load_model).

--export-onnx writes the same model as a plain ONNX graph (input_ids int64
[batch, seq] -> logits float32 [batch, seq, vocab], opset 17, dynamic batch
and seq) for the engine's bench to load, and prints a JSON line about it.
"""

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
from hf_folder import load_model  # noqa: E402


def blas_library():
    """The BLAS library the process has loaded (Debian's torch uses whichever libblas.so.3 points at:
    the reference BLAS is some 20x slower than OpenBLAS, so the bench says which one ran)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.split()[-1].lower()}
    except OSError:
        return "unknown"
    return ", ".join(sorted(os.path.realpath(p) for p in libs)) or "none loaded"


def sgemm_gflops(n=2048, repeat=3):
    """A 2048² float32 matmul's speed right now: what the BLAS and the machine's load allow
    (about 115 GFLOP/s with OpenBLAS on 2 idle cores here)."""
    a = torch.randn(n, n)
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def export_onnx(model, path, tokens):
    ids = torch.zeros(1, tokens, dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids,),
            path,
            input_names=["input_ids"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
            opset_version=17,
            do_constant_folding=True,
        )
    return {"onnx": path, "bytes": os.path.getsize(path), "opset": 17,
            "inputs": {"input_ids": ["batch", "seq"]}, "outputs": {"logits": ["batch", "seq", "vocab"]}}


def bench(model, tokens, batch, repeat, warmup, seed):
    vocab = model.config["vocab_size"]
    ids = torch.randint(0, vocab, (batch, tokens), generator=torch.Generator().manual_seed(seed))
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(ids)
        for _ in range(repeat):
            t0 = time.perf_counter()
            model(ids)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "median_s": med,
        "mean_s": statistics.fmean(times),
        "min_s": min(times),
        "tokens_per_s": batch * tokens / med,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint folder")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export-onnx", metavar="PATH", help="write the model as ONNX instead of timing it")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.model, torch.float32)
    load_s = time.perf_counter() - t0

    if args.export_onnx:
        print(json.dumps(export_onnx(model, args.export_onnx, args.tokens)))
        return

    result = {
        "engine": "pytorch-eager",
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "model": os.path.basename(os.path.normpath(args.model)),
        "model_type": model.config["model_type"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": "float32",
        "threads": args.threads,
        "batch": args.batch,
        "tokens": args.tokens,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "load_s": load_s,
    }
    result.update(bench(model, args.tokens, args.batch, args.repeat, args.warmup, args.seed))
    result["blas"] = blas_library()
    result["sgemm_gflops"] = sgemm_gflops()
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps(result))


if __name__ == "__main__":
    main()
