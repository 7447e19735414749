"""Reference for one SAE training step, by PyTorch autograd (independent of the
engine's hand-derived backward pass): writes inputs and expected outputs for
test/unit/sae-train.test.ts.

    /usr/bin/python3 tools/reference/sae_train_step.py
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "sae-train")
B, D, S, K, K_AUX, AUX_ROWS = 32, 8, 24, 4, 6, 16
BETA1, BETA2, EPS, CLIP, AUX = 0.9, 0.999, 1e-8, 1.0, 1 / 32


def step(arch, inputs):
    p = {k: inputs[k].double().clone().requires_grad_(True) for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    x = inputs["x"].double()
    lr, l1 = float(inputs["lr"]), float(inputs["l1"])
    t = int(inputs["t"])
    pre = x @ p["W_enc"] + p["b_enc"]
    if arch == "relu":
        f = torch.relu(pre)
    else:
        vals, idx = pre.topk(K, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
    x_hat = f @ p["W_dec"] + p["b_dec"]
    mse = ((x_hat - x) ** 2).sum(-1).mean()
    if arch == "relu":
        sparsity = (f * p["W_dec"].norm(dim=1)).sum(-1).mean()
        aux = torch.zeros((), dtype=torch.float64)
        loss = mse + l1 * sparsity
    else:
        sparsity = torch.zeros((), dtype=torch.float64)
        dead = inputs["dead"].bool()
        # The auxiliary loss is taken over the first AUX_ROWS rows of the batch.
        e = (x - x_hat).detach()[:AUX_ROWS]
        pre_dead = torch.where(dead, pre[:AUX_ROWS], torch.full_like(pre[:AUX_ROWS], float("-inf")))
        vals, idx = pre_dead.topk(K_AUX, dim=-1)
        f_aux = torch.zeros_like(pre[:AUX_ROWS]).scatter(-1, idx, torch.relu(vals))
        e_hat = f_aux @ p["W_dec"]
        aux = AUX * ((e_hat - e) ** 2).sum(-1).mean() if dead.any() else torch.zeros((), dtype=torch.float64)
        loss = mse + aux
    loss.backward()
    grads = {k: v.grad for k, v in p.items()}
    norm = torch.sqrt(sum((g**2).sum() for g in grads.values()))
    clip = min(1.0, CLIP / (float(norm) + 1e-6))
    out = {}
    for k in p:
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
    out["l0"] = (f > 0).double().sum(-1).mean().reshape(())
    out["fired"] = (f > 0).double().sum(0)
    out["grad_norm"] = norm.detach().reshape(())
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    for arch in ("relu", "topk"):
        g = torch.Generator().manual_seed(7 if arch == "relu" else 11)
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
        inputs = {
            "x": r(B, D) * 1.5 + 0.3,
            "W_enc": r(D, S) * 0.4,
            "b_enc": r(S) * 0.1,
            "W_dec": r(S, D) * 0.4,
            "b_dec": r(D) * 0.1,
            "lr": torch.tensor(3e-3, dtype=torch.float64),
            "l1": torch.tensor(0.7, dtype=torch.float64),
            "t": torch.tensor(3.0, dtype=torch.float64),
            "dead": (torch.rand(S, generator=g) < 0.5).double(),
        }
        for k in ("W_enc", "b_enc", "W_dec", "b_dec"):
            inputs[k + ".m"] = r(*inputs[k].shape) * 0.01
            inputs[k + ".v"] = r(*inputs[k].shape).abs() * 0.001
        out = step(arch, inputs)
        tensors = {k: v.float().contiguous() for k, v in inputs.items()}
        tensors.update({"expected." + k: v.float().contiguous() for k, v in out.items()})
        save_file(tensors, os.path.join(OUT, f"step-{arch}.safetensors"))
    with open(os.path.join(OUT, "steps.json"), "w") as fh:
        json.dump({"B": B, "d_in": D, "d_sae": S, "k": K, "k_aux": K_AUX, "beta1": BETA1, "beta2": BETA2,
                   "adam_eps": EPS, "clip_norm": CLIP, "aux_coefficient": AUX, "aux_rows": AUX_ROWS}, fh, indent=1)


if __name__ == "__main__":
    main()
