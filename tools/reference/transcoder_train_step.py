"""Reference for one transcoder training step, by PyTorch autograd (independent
of the engine's hand-derived backward pass): writes inputs and expected outputs
for test/unit/transcoder-train-step.test.ts.

A transcoder reads an MLP's input x and predicts its output y:
y_hat = dec(enc(x)) [+ x @ W_skip.T]. TopK keeps the k largest pre-activations
as they are, as circuit-tracer's TopK does. JumpReLU's threshold gets the
straight-through pseudo-derivatives of Rajamanoharan et al. 2024 (rectangle
kernel), written here as autograd Functions the way SAELens writes them.

    /usr/bin/python3 tools/reference/transcoder_train_step.py
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "transcoder-train")
B, D, S, K, K_AUX, AUX_ROWS = 32, 8, 24, 4, 6, 16
BETA1, BETA2, EPS, CLIP, AUX, BANDWIDTH = 0.9, 0.999, 1e-8, 1.0, 1 / 32, 0.05
# (architecture, skip): every architecture, with and without the skip term.
CASES = [("relu", True), ("topk", True), ("topk", False), ("jumprelu", True), ("jumprelu", False)]


def rectangle(u):
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, theta):
        ctx.save_for_backward(pre, theta)
        return pre * (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        g_pre = (pre > theta).to(pre.dtype) * grad
        g_theta = (-(theta / BANDWIDTH) * rectangle((pre - theta) / BANDWIDTH) * grad).sum(0)
        return g_pre, g_theta


class Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, theta):
        ctx.save_for_backward(pre, theta)
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        g_theta = (-(1.0 / BANDWIDTH) * rectangle((pre - theta) / BANDWIDTH) * grad).sum(0)
        return torch.zeros_like(pre), g_theta


def names(arch, skip):
    out = ["W_enc", "b_enc", "W_dec", "b_dec"]
    if skip:
        out.append("W_skip")
    if arch == "jumprelu":
        out.append("log_threshold")
    return out


def step(arch, skip, inputs):
    keys = names(arch, skip)
    p = {k: inputs[k].double().clone().requires_grad_(True) for k in keys}
    x = inputs["x"].double()
    y = inputs["y"].double()
    lr, l1 = float(inputs["lr"]), float(inputs["l1"])
    t = int(inputs["t"])
    pre = x @ p["W_enc"] + p["b_enc"]
    zero = torch.zeros((), dtype=torch.float64)
    if arch == "relu":
        f = torch.relu(pre)
    elif arch == "topk":
        # circuit-tracer's TopK: the k largest pre-activations as they are (no ReLU).
        vals, idx = pre.topk(K, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, idx, vals)
        chosen = torch.zeros_like(pre).scatter(-1, idx, torch.ones_like(vals))
    else:
        theta = p["log_threshold"].exp()
        f = JumpReLU.apply(pre, theta)
    y_hat = f @ p["W_dec"] + p["b_dec"]
    if skip:
        y_hat = y_hat + x @ p["W_skip"].T
    mse = ((y_hat - y) ** 2).sum(-1).mean()
    aux = zero
    if arch == "relu":
        sparsity = (f * p["W_dec"].norm(dim=1)).sum(-1).mean()
        l0 = (f > 0).double().sum(-1).mean()
        fired = (f > 0).double().sum(0)
    elif arch == "jumprelu":
        sparsity = Step.apply(pre, theta).sum(-1).mean()
        l0 = sparsity.detach()
        fired = (pre > theta).double().sum(0).detach()
    else:
        sparsity = zero
        l0 = chosen.sum(-1).mean()
        fired = chosen.sum(0)
        dead = inputs["dead"].bool()
        # The auxiliary loss is taken over the first AUX_ROWS rows: the residual of the
        # prediction (skip term included), held fixed.
        e = (y - y_hat).detach()[:AUX_ROWS]
        pre_dead = torch.where(dead, pre[:AUX_ROWS], torch.full_like(pre[:AUX_ROWS], float("-inf")))
        vals, idx = pre_dead.topk(K_AUX, dim=-1)
        f_aux = torch.zeros_like(pre[:AUX_ROWS]).scatter(-1, idx, torch.relu(vals))
        e_hat = f_aux @ p["W_dec"]
        aux = AUX * ((e_hat - e) ** 2).sum(-1).mean()
    loss = mse + l1 * sparsity + aux
    loss.backward()
    grads = {k: v.grad for k, v in p.items()}
    norm = torch.sqrt(sum((g**2).sum() for g in grads.values()))
    clip = min(1.0, CLIP / (float(norm) + 1e-6))
    out = {}
    for k in keys:
        g = grads[k] * clip
        m = BETA1 * inputs[k + ".m"].double() + (1 - BETA1) * g
        v = BETA2 * inputs[k + ".v"].double() + (1 - BETA2) * g * g
        denom = (v / (1 - BETA2**t)).sqrt() + EPS
        new = p[k].detach() - lr / (1 - BETA1**t) * m / denom
        if k == "W_dec" and arch == "topk":
            new = new / new.norm(dim=1, keepdim=True)
        out[k + ".next"] = new
        out[k + ".m.next"] = m
        out[k + ".v.next"] = v
    out["loss"] = loss.detach().reshape(())
    out["mse"] = mse.detach().reshape(())
    out["sparsity"] = sparsity.detach().reshape(())
    out["aux"] = aux.detach().reshape(())
    out["l0"] = l0.detach().reshape(())
    out["fired"] = fired
    out["grad_norm"] = norm.detach().reshape(())
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    for n, (arch, skip) in enumerate(CASES):
        g = torch.Generator().manual_seed(101 + n)
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
        x = r(B, D) * 1.5 + 0.3
        # An MLP-like target: a fixed nonlinear function of x, so the skip term and the features both matter.
        y = torch.tanh(x @ r(D, D) * 0.5) * 2.0 + x @ r(D, D) * 0.3
        inputs = {
            "x": x,
            "y": y,
            "W_enc": r(D, S) * 0.4,
            "b_enc": r(S) * 0.1,
            "W_dec": r(S, D) * 0.4,
            "b_dec": r(D) * 0.1,
            "lr": torch.tensor(3e-3, dtype=torch.float64),
            "l1": torch.tensor(0.7, dtype=torch.float64),
            "t": torch.tensor(3.0, dtype=torch.float64),
            "dead": (torch.rand(S, generator=g) < 0.5).double(),
        }
        if arch == "topk":
            # Some rows' k largest pre-activations negative: kept as they are, not ReLU'd.
            inputs["b_enc"] = inputs["b_enc"] - 2.0
        if skip:
            inputs["W_skip"] = r(D, D) * 0.2
        if arch == "jumprelu":
            # Thresholds among the pre-activations, so that some fall inside the kernel's window.
            inputs["log_threshold"] = (torch.rand(S, generator=g, dtype=torch.float64) * 0.6 + 0.05).log()
        for k in names(arch, skip):
            inputs[k + ".m"] = r(*inputs[k].shape) * 0.01
            inputs[k + ".v"] = r(*inputs[k].shape).abs() * 0.001
        # The engine reads f32: compute from the values it will see.
        inputs = {k: v.float().double() for k, v in inputs.items()}
        out = step(arch, skip, inputs)
        tensors = {k: v.float().contiguous() for k, v in inputs.items()}
        tensors.update({"expected." + k: v.float().contiguous() for k, v in out.items()})
        name = f"step-{arch}{'-skip' if skip else ''}.safetensors"
        save_file(tensors, os.path.join(OUT, name))
    with open(os.path.join(OUT, "steps.json"), "w") as fh:
        json.dump({"B": B, "d_in": D, "d_sae": S, "k": K, "k_aux": K_AUX, "beta1": BETA1, "beta2": BETA2,
                   "adam_eps": EPS, "clip_norm": CLIP, "aux_coefficient": AUX, "aux_rows": AUX_ROWS,
                   "bandwidth": BANDWIDTH,
                   "cases": [{"architecture": a, "skip": s} for a, s in CASES]}, fh, indent=1)


if __name__ == "__main__":
    main()
