"""PyTorch reference for transcoder training throughput: the same transcoder
(MLP input x in, MLP output y out, optional skip term x @ W_skip.T; TopK as
circuit-tracer reads it, or ReLU with the decoder-norm-weighted L1) and the
same Adam with gradient clipping, by autograd, on the same cores. Prints JSON
with activations per second.

    /usr/bin/python3 bench/torch_transcoder_train.py --d-model 768 --d-tc 24576 --batch 4096 --steps 5 --threads 2 --skip
"""

import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--d-tc", type=int, default=24576)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arch", choices=["relu", "topk"], default="topk")
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--skip", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d, s = a.d_model, a.d_tc
    W_dec = torch.randn(s, d)
    W_dec = (W_dec / W_dec.norm(dim=1, keepdim=True) * 0.1).requires_grad_(True)
    W_enc = W_dec.detach().t().clone().requires_grad_(True)
    b_enc = torch.zeros(s, requires_grad=True)
    b_dec = torch.zeros(d, requires_grad=True)
    params = [W_enc, b_enc, W_dec, b_dec]
    W_skip = None
    if a.skip:
        W_skip = torch.zeros(d, d, requires_grad=True)
        params.append(W_skip)
    opt = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.999))
    x = torch.randn(a.batch, d)
    y = torch.tanh(x @ torch.randn(d, d) / d**0.5) * 2

    def step():
        pre = x @ W_enc + b_enc
        if a.arch == "relu":
            f = torch.relu(pre)
        else:
            vals, idx = pre.topk(a.k, dim=-1)
            f = torch.zeros_like(pre).scatter(-1, idx, vals)
        y_hat = f @ W_dec + b_dec
        if W_skip is not None:
            y_hat = y_hat + x @ W_skip.T
        loss = ((y_hat - y) ** 2).sum(-1).mean()
        if a.arch == "relu":
            loss = loss + 5.0 * (f * W_dec.norm(dim=1)).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if a.arch == "topk":
            with torch.no_grad():
                W_dec.div_(W_dec.norm(dim=1, keepdim=True))
        return float(loss)

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({"activations_per_s": a.batch * a.steps / dt, "s_per_step": dt / a.steps, "arch": a.arch,
                      "d_model": d, "d_tc": s, "skip": a.skip, "batch": a.batch, "threads": a.threads}))


if __name__ == "__main__":
    main()
