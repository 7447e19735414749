"""PyTorch reference for SAE training throughput: the same ReLU SAE (decoder-norm
weighted L1) or TopK SAE and the same Adam, with autograd, on the same cores.
Prints JSON with activations per second.

    /usr/bin/python3 bench/torch_sae_train.py --d-in 768 --d-sae 24576 --batch 4096 --steps 5 --threads 2
"""

import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-in", type=int, default=768)
    ap.add_argument("--d-sae", type=int, default=24576)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arch", choices=["relu", "topk"], default="relu")
    ap.add_argument("--k", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    W_dec = torch.randn(a.d_sae, a.d_in)
    W_dec = (W_dec / W_dec.norm(dim=1, keepdim=True) * 0.1).requires_grad_(True)
    W_enc = W_dec.detach().t().clone().requires_grad_(True)
    b_enc = torch.zeros(a.d_sae, requires_grad=True)
    b_dec = torch.zeros(a.d_in, requires_grad=True)
    params = [W_enc, b_enc, W_dec, b_dec]
    opt = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.999))
    x = torch.randn(a.batch, a.d_in) * (a.d_in**0.5) / (a.d_in**0.5)

    def step():
        pre = x @ W_enc + b_enc
        if a.arch == "relu":
            f = torch.relu(pre)
            x_hat = f @ W_dec + b_dec
            loss = ((x_hat - x) ** 2).sum(-1).mean() + 5.0 * (f * W_dec.norm(dim=1)).sum(-1).mean()
        else:
            vals, idx = pre.topk(a.k, dim=-1)
            f = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
            x_hat = f @ W_dec + b_dec
            loss = ((x_hat - x) ** 2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return float(loss)

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({"activations_per_s": a.batch * a.steps / dt, "s_per_step": dt / a.steps, "arch": a.arch,
                      "d_in": a.d_in, "d_sae": a.d_sae, "batch": a.batch, "threads": a.threads}))


if __name__ == "__main__":
    main()
