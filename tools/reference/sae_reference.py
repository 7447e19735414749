"""Reference SAEs for test/unit/sae.test.ts: tiny SAELens folders of every
architecture and both cfg.json layouts, with inputs and the feature
activations and reconstructions SAELens's forward pass gives for them,
computed here in float64 by PyTorch from the formulas (independent of the
engine's ONNX graphs).

    /usr/bin/python3 tools/reference/sae_reference.py

Writes test/fixtures/sae/<case>/{cfg.json, sae_weights.safetensors,
[sparsity.safetensors], [activation_scaler.json], reference.safetensors} and
test/fixtures/sae/index.json.

SAELens semantics followed (sae_lens/saes/*.py):
  input:   [centre: x - mean(x) when the SAE saw centred residuals]
           normalize: expected_average_only_in x*s (undone by /s),
                      constant_norm_rescale x*sqrt(d_in)/|x| (undone),
                      layer_norm (x-mu)/(std_unbiased+1e-5) (undone by *std+mu)
           minus b_dec when apply_b_dec_to_input
  standard relu(x W_enc + b_enc)
  topk     top k of pre (pre * |W_dec_i| when rescale_acts_by_decoder_norm), then relu
  jumprelu relu(pre) * (pre > threshold)
  gated    (x W_enc + b_gate > 0) * relu(x (W_enc * exp(r_mag)) + b_mag)
  decode   (f [* finetuning scaling_factor] [/ |W_dec_i|]) W_dec + b_dec, then undo normalize [+ mean]
"""

import json
import math
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "sae")
D_IN, D_SAE, ROWS = 16, 48, 10
HOOK = "blocks.0.hook_resid_pre"
MARGIN = 1e-3  # no decision (threshold, gate, top-k boundary) closer than this, so f32 cannot flip it


def encode(case, p, x):
    """Feature activations and the pieces decode needs, in float64."""
    x = x.double()
    mean = x.mean(-1, keepdim=True) if case["center"] else torch.zeros_like(x[..., :1])
    h = x - mean
    norm = case["normalize"]
    state = {"mean": mean}
    if norm == "expected_average_only_in":
        h = h * case["scale"]
    elif norm == "constant_norm_rescale":
        state["coeff"] = math.sqrt(D_IN) / h.norm(dim=-1, keepdim=True)
        h = h * state["coeff"]
    elif norm == "layer_norm":
        mu = h.mean(-1, keepdim=True)
        hc = h - mu
        std = hc.std(-1, keepdim=True)  # unbiased, as torch's default
        h = hc / (std + 1e-5)
        state["mu"], state["std"] = mu, std
    if case["apply_b_dec"]:
        h = h - p["b_dec"]
    arch = case["arch"]
    margins = []
    if arch == "gated":
        gate_pre = h @ p["W_enc"] + p["b_gate"]
        mag = torch.relu(h @ (p["W_enc"] * torch.exp(p["r_mag"])) + p["b_mag"])
        acts = (gate_pre > 0).double() * mag
        margins.append(gate_pre.abs().min().item())
        return acts, state, margins
    pre = h @ p["W_enc"] + p["b_enc"]
    if arch == "standard":
        acts = torch.relu(pre)
    elif arch == "jumprelu":
        acts = torch.relu(pre) * (pre > p["threshold"]).double()
        margins.append((pre - p["threshold"]).abs().min().item())
    elif arch == "topk":
        if case.get("rescale"):
            pre = pre * p["W_dec"].norm(dim=-1)
        k = case["k"]
        vals, idx = pre.topk(k + 1, dim=-1)
        margins.append((vals[:, k - 1] - vals[:, k]).min().item())
        acts = torch.zeros_like(pre).scatter(-1, idx[:, :k], torch.relu(vals[:, :k]))
    return acts, state, margins


def decode(case, p, acts, state):
    f = acts
    if "scaling_factor" in p:
        f = f * p["scaling_factor"]
    if case.get("rescale"):
        f = f / p["W_dec"].norm(dim=-1)
    out = f @ p["W_dec"] + p["b_dec"]
    norm = case["normalize"]
    if norm == "expected_average_only_in":
        out = out / case["scale"]
    elif norm == "constant_norm_rescale":
        out = out / state["coeff"]
    elif norm == "layer_norm":
        out = out * state["std"] + state["mu"]
    return out + state["mean"]


def make_params(case, gen):
    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * scale

    p = {"W_enc": r(D_IN, D_SAE, scale=0.4), "W_dec": r(D_SAE, D_IN, scale=0.3), "b_dec": r(D_IN, scale=0.2)}
    if case["arch"] == "gated":
        p["b_gate"] = r(D_SAE, scale=0.3)
        p["r_mag"] = r(D_SAE, scale=0.3)
        p["b_mag"] = r(D_SAE, scale=0.3)
    else:
        p["b_enc"] = r(D_SAE, scale=0.3)
    if case["arch"] == "jumprelu":
        p["threshold"] = torch.rand(D_SAE, generator=gen, dtype=torch.float64) * 0.6
    if case.get("finetuning"):
        p["scaling_factor"] = 0.5 + torch.rand(D_SAE, generator=gen, dtype=torch.float64)
    # The values SAELens would compute with: as stored (rounded to the file's dtype).
    dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[case["stored"]]
    return {k: v.to(dtype).double() for k, v in p.items()}, dtype


def make_inputs(gen):
    x = torch.randn(ROWS, D_IN, generator=gen, dtype=torch.float64) * 1.5
    x = x + torch.randn(ROWS, 1, generator=gen, dtype=torch.float64) * 2.0  # per-row offsets: centring matters
    x[3] *= 4.0  # rows of different norms: per-row normalization matters
    return x.float().double()


CASES = [
    # The oldest flat layout: no architecture, activation_fn_str, no model_from_pretrained_kwargs
    # (so Loupe centres residual inputs, as SAELens before 3.19.2 trained on the processed model).
    dict(name="standard-flat", arch="standard", layout="flat", stored="F32", center=True,
         normalize="none", apply_b_dec=True, sparsity=True),
    # Flat, TopK through activation_fn_str + activation_fn_kwargs.
    dict(name="topk-flat", arch="topk", layout="flat-topk", stored="F32", center=False, k=5,
         normalize="none", apply_b_dec=True),
    # Newer layout under metadata; TopK with rescale_acts_by_decoder_norm, per-token norm rescale, bf16.
    dict(name="topk-nested", arch="topk", layout="metadata", stored="BF16", center=False, k=6, rescale=True,
         normalize="constant_norm_rescale", apply_b_dec=True),
    # Newer layout, JumpReLU stored in f16, b_dec not subtracted from the input.
    dict(name="jumprelu-nested-f16", arch="jumprelu", layout="metadata", stored="F16", center=False,
         normalize="none", apply_b_dec=False),
    # SAELens 5's flat layout with architecture 'jumprelu', a 'log_threshold' tensor, layer_norm inputs.
    dict(name="jumprelu-flat-logthreshold", arch="jumprelu", layout="flat-v5", stored="F32", center=False,
         normalize="layer_norm", apply_b_dec=True, log_threshold=True),
    # Gated, newer layout under 'meta', expected_average_only_in with activation_scaler.json.
    dict(name="gated-meta", arch="gated", layout="meta", stored="F32", center=False,
         normalize="expected_average_only_in", scale=0.7, scaler_file=True, apply_b_dec=True),
    # Old finetuning scaling_factor, normalize_activations written as a boolean, factor in cfg.json.
    dict(name="standard-finetune", arch="standard", layout="flat-bool-norm", stored="F32", center=False,
         normalize="expected_average_only_in", scale=1.3, finetuning=True, apply_b_dec=True),
]


def cfg_json(case):
    arch = case["arch"]
    model = {"model_name": "tiny-gpt2", "hook_name": HOOK, "prepend_bos": True, "context_size": 32,
             "dataset_path": "local/text"}
    kwargs = {} if case["center"] is False else None
    layout = case["layout"]
    if layout.startswith("flat"):
        cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
               "apply_b_dec_to_input": case["apply_b_dec"], "hook_layer": 0, "hook_head_index": None,
               "finetuning_scaling_factor": bool(case.get("finetuning")), **model,
               "normalize_activations": case["normalize"], "activation_fn_str": "relu"}
        if layout == "flat-topk":
            cfg.update(architecture="standard", activation_fn_str="topk", activation_fn_kwargs={"k": case["k"]})
        elif layout == "flat-v5":
            cfg.update(architecture=arch, activation_fn_kwargs={}, sae_lens_training_version="5.1.0")
        elif layout == "flat-bool-norm":
            cfg.update(normalize_activations=True, norm_scaling_factor=case["scale"])
        if kwargs is not None:
            cfg["model_from_pretrained_kwargs"] = kwargs
        return cfg
    cfg = {"architecture": arch, "d_in": D_IN, "d_sae": D_SAE,
           "dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[case["stored"]],
           "device": "cpu", "apply_b_dec_to_input": case["apply_b_dec"],
           "normalize_activations": case["normalize"], "reshape_activations": "none"}
    if arch == "topk":
        cfg.update(k=case["k"], rescale_acts_by_decoder_norm=bool(case.get("rescale")))
    meta = {**model, "hook_head_index": None, "sae_lens_version": "6.5.0", "sae_lens_training_version": "6.5.0",
            "model_from_pretrained_kwargs": {"center_writing_weights": case["center"]}}
    cfg["metadata" if layout == "metadata" else "meta"] = meta
    return cfg


def feature_edits(acts):
    """Ablate the feature most active at row 0 and clamp a silent one to 3.0."""
    ablate = int(acts[0].argmax())
    silent = [i for i in range(D_SAE) if acts[:, i].abs().max() == 0]
    clamp = silent[0] if silent else (ablate + 1) % D_SAE
    return [{"index": ablate, "value": None}, {"index": clamp, "value": 3.0}]


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    index = []
    for n, case in enumerate(CASES):
        for attempt in range(100):
            gen = torch.Generator().manual_seed(1000 * n + attempt)
            p, dtype = make_params(case, gen)
            x = make_inputs(gen)
            acts, state, margins = encode(case, p, x)
            active = int((acts > 0).sum())
            if all(m > MARGIN for m in margins) and active >= ROWS:
                break
        else:
            raise RuntimeError(f"{case['name']}: no seed gave clear decisions")
        recon = decode(case, p, acts, state)
        edits = feature_edits(acts)
        edited = acts.clone()
        for e in edits:
            edited[:, e["index"]] = 0.0 if e["value"] is None else e["value"]
        recon_edited = decode(case, p, edited, state)

        folder = os.path.join(OUT, case["name"])
        os.makedirs(folder)
        stored = {k: v.to(dtype) for k, v in p.items()}
        if case.get("log_threshold"):
            stored["log_threshold"] = torch.log(p["threshold"]).to(dtype)
            del stored["threshold"]
            # Reference values must use exp(log(threshold)) as stored.
            p["threshold"] = torch.exp(stored["log_threshold"].double())
            acts, state, margins = encode(case, p, x)
            assert all(m > MARGIN for m in margins)
            recon = decode(case, p, acts, state)
            edited = acts.clone()
            for e in edits:
                edited[:, e["index"]] = 0.0 if e["value"] is None else e["value"]
            recon_edited = decode(case, p, edited, state)
        save_file(stored, os.path.join(folder, "sae_weights.safetensors"), {"format": "pt"})
        with open(os.path.join(folder, "cfg.json"), "w") as f:
            json.dump(cfg_json(case), f, indent=1)
        if case.get("sparsity"):
            log_density = torch.log10((acts > 0).double().mean(0) + 1e-10).float()
            save_file({"sparsity": log_density}, os.path.join(folder, "sparsity.safetensors"))
        if case.get("scaler_file"):
            with open(os.path.join(folder, "activation_scaler.json"), "w") as f:
                json.dump({"scaling_factor": case["scale"]}, f)
        save_file(
            {"x": x.float(), "feature_acts": acts.float(), "sae_out": recon.float(),
             "sae_out_edited": recon_edited.float()},
            os.path.join(folder, "reference.safetensors"),
        )
        index.append({"name": case["name"], "architecture": case["arch"], "stored": case["stored"],
                      "center": case["center"], "edits": edits})
        print(f"{case['name']}: {active} active of {ROWS * D_SAE}, min margin "
              f"{min(margins) if margins else float('nan'):.4f}")
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump({"d_in": D_IN, "d_sae": D_SAE, "hook_name": HOOK, "cases": index}, f, indent=1)


if __name__ == "__main__":
    main()
