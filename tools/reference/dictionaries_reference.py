"""Reference dictionaries for test/unit/dictionaries-*.test.ts: one tiny
dictionary per published format, in that format's exact layout, on the
test/fixtures/gpt2 model (and llama-gqa for an RMSNorm MLP input), with the
feature activations and reconstructions each source's own code computes,
written here in float64 from the formulas (independent of the engine).

    /usr/bin/python3 tools/reference/dictionaries_reference.py

Writes test/fixtures/dictionaries/<case>/... and test/fixtures/dictionaries/index.json,
and test/fixtures/dictionaries/npz/*.npz for the .npz reader's own tests.

What each source computes (read from their loaders and modules):
  Gemma Scope (params.npz)     pre = x W_enc + b_enc (no b_dec subtraction); f = relu(pre) [pre > threshold]
                               recon = f W_dec + b_dec
  sparsify (cfg.json + sae.safetensors)
                               SAE: x - b_dec first; transcoder: not; pre = relu(x encoder.weight^T + encoder.bias);
                               top k of pre (or the max of each of k groups); recon = f W_dec + b_dec [+ x W_skip^T]
  SAELens transcoders          pre = x W_enc + b_enc (no b_dec); relu, or relu(pre)[pre > threshold];
                               recon = f W_dec + b_dec [+ x W_skip^T]
  SAELens batchtopk checkpoint JumpReLU with threshold = topk_threshold; with rescale_acts_by_decoder_norm
                               pre is scaled by |W_dec_i| and the decoder divides it back out
  circuit-tracer set           pre = x W_enc^T + b_enc (W_enc [d_tc, d_model]); relu | jump_relu | topk (no relu);
                               recon = f W_dec + b_dec [+ x W_skip^T]
  circuit-tracer CLT           per layer i as above; recon at layer j = sum_{i<=j} f_i W_dec_i[:, j - i] + b_dec_j
Hook names: Gemma Scope's from the path (gemma-scope-*-res -> blocks.L.hook_resid_post, -att -> attn.hook_z
flattened over heads); sparsify's module names (h.0 -> blocks.0.hook_resid_post; a transcoder on h.1.mlp reads
the MLP's input, ln2's output, and writes hook_mlp_out); circuit-tracer's per-block names (mlp.hook_in = the
MLP's input: ln2.hook_normalized for LayerNorm, times ln2's weight for RMSNorm).
"""

import io
import json
import os
import shutil
import sys
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from hf_folder import load_model, read_weights  # noqa: E402
from safetensors_io import save_file  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures")
OUT = os.path.join(ROOT, "dictionaries")
MARGIN = 1e-3  # no threshold or top-k boundary closer than this, so f32 cannot flip a decision

GPT2 = {"model": "gpt2", "ids": [296, 51, 258, 220, 258, 285, 284, 64, 67, 260]}
LLAMA = {"model": "llama-gqa", "ids": [297, 51, 258, 220, 258, 285, 284, 64, 67]}


def hooks_of(fixture):
    model = load_model(os.path.join(ROOT, fixture["model"]), dtype=torch.float64)
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([fixture["ids"]]))
    return {k: v[0].double() for k, v in cache.items()}


def rng(seed):
    return np.random.default_rng(seed)


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def f32(a):
    return torch.tensor(np.asarray(a, dtype=np.float32))


def checked_threshold(pre, threshold):
    gap = (pre - threshold).abs().min().item()
    assert gap > MARGIN, f"a pre-activation is within {gap} of its threshold; pick another seed"


def checked_topk(pre, k):
    top = pre.topk(k + 1, dim=-1).values
    gap = (top[:, k - 1] - top[:, k]).min().item()
    assert gap > MARGIN, f"top-k boundary within {gap}; pick another seed"


def topk_keep(pre, k, relu):
    idx = pre.topk(k, dim=-1).indices
    out = torch.zeros_like(pre).scatter(-1, idx, pre.gather(-1, idx))
    return out.clamp(min=0) if relu else out


def jumprelu(pre, threshold, uniform=False):
    """relu(pre) [pre > threshold]; the numpy `threshold` is first nudged (in place) off every pre-activation."""
    for _ in range(100):
        gaps = (pre - t(threshold)).abs().min(dim=0).values.numpy()
        close = gaps <= MARGIN if not uniform else np.full_like(gaps, gaps.min() <= MARGIN, dtype=bool)
        if not close.any():
            break
        threshold[close] += 3 * MARGIN
    checked_threshold(pre, t(threshold))
    return pre.clamp(min=0) * (pre > t(threshold)).double()


def with_seed(seed, make):
    """make(rng) with the first seed from `seed` whose top-k boundaries clear MARGIN."""
    for s in range(seed, seed + 100):
        try:
            return make(rng(s))
        except AssertionError:
            continue
    raise AssertionError(f"no seed from {seed} separates the top k")


def write_reference(case_dir, tensors):
    save_file({k: v.to(torch.float32).contiguous() for k, v in tensors.items()}, os.path.join(case_dir, "reference.safetensors"))


def case_dir(name, *sub):
    d = os.path.join(OUT, name, *sub)
    os.makedirs(d, exist_ok=True)
    return d


def weights(r, d_in, width, d_out=None, scale=0.4):
    d_out = d_out or d_in
    return {
        "W_enc": r.normal(0, scale, (d_in, width)),
        "b_enc": r.normal(0, 0.2, (width,)),
        "W_dec": r.normal(0, scale, (width, d_out)),
        "b_dec": r.normal(0, 0.5, (d_out,)),  # large enough that subtracting it (or not) shows
    }


def gemma_scope(index, h):
    # Residual-stream SAE at layer 1: the path says the site and layer.
    r = rng(11)
    d, width = 32, 48
    p = weights(r, d, width)
    x = h["blocks.1.hook_resid_post"]
    pre_no_shift = x @ t(p["W_enc"]) + t(p["b_enc"])
    p["threshold"] = np.abs(r.normal(0.3, 0.2, (width,)))
    acts = jumprelu(pre_no_shift, p["threshold"])
    # The trap: with b_dec subtracted (SAELens's default) the features would differ.
    pre_shift = (x - t(p["b_dec"])) @ t(p["W_enc"]) + t(p["b_enc"])
    assert ((pre_shift > t(p["threshold"])) != (pre_no_shift > t(p["threshold"]))).any()
    folder = case_dir("gemma-scope-tiny-res", "layer_1", "width_48", "average_l0_9")
    np.savez(os.path.join(folder, "params.npz"), **{k: v.astype(np.float32) for k, v in p.items()})
    write_reference(folder, {"acts": acts, "recon.blocks.1.hook_resid_post": acts @ t(p["W_dec"]) + t(p["b_dec"])})
    index.append(dict(name="gemma-scope-res", sae="gemma-scope-tiny-res/layer_1/width_48/average_l0_9", model="gpt2",
                      ids=GPT2["ids"], layers=[1], inputs=["blocks.1.hook_resid_post"],
                      outputs=["blocks.1.hook_resid_post"], format="gemma-scope"))

    # Attention SAE on hook_z (heads flattened), compressed npz.
    r = rng(12)
    width = 40
    p = weights(r, 32, width)
    x = h["blocks.0.attn.hook_z"].reshape(len(GPT2["ids"]), -1)
    pre = x @ t(p["W_enc"]) + t(p["b_enc"])
    p["threshold"] = np.abs(r.normal(0.1, 0.1, (width,)))
    acts = jumprelu(pre, p["threshold"])
    folder = case_dir("gemma-scope-tiny-att", "layer_0", "width_40", "average_l0_5")
    np.savez_compressed(os.path.join(folder, "params.npz"), **{k: v.astype(np.float32) for k, v in p.items()})
    write_reference(folder, {"acts": acts})
    index.append(dict(name="gemma-scope-att", sae="gemma-scope-tiny-att/layer_0/width_40/average_l0_5", model="gpt2",
                      ids=GPT2["ids"], layers=[0], inputs=["blocks.0.attn.hook_z"], outputs=["blocks.0.attn.hook_z"],
                      format="gemma-scope"))


def sparsify(index, h):
    root = case_dir("sparsify-tiny")
    T = len(GPT2["ids"])
    # An SAE on h.0 (GPT-2's module name for block 0): reads and rebuilds the block's output.
    d, width, k = 32, 40, 4
    x = h["blocks.0.hook_resid_post"]

    def make_sae(r):
        enc_w = r.normal(0, 0.4, (width, d))
        enc_b = r.normal(0, 0.2, (width,))
        W_dec = r.normal(0, 0.3, (width, d))
        b_dec = r.normal(0, 0.5, (d,))
        pre = torch.relu((x - t(b_dec)) @ t(enc_w).T + t(enc_b))
        checked_topk(pre, k)
        return enc_w, enc_b, W_dec, b_dec, pre

    enc_w, enc_b, W_dec, b_dec, pre = with_seed(21, make_sae)
    acts = topk_keep(pre, k, relu=True)
    folder = case_dir("sparsify-tiny", "h.0")
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump({"activation": "topk", "expansion_factor": 32, "normalize_decoder": True, "num_latents": width, "k": k,
                   "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": d}, f)
    save_file({"encoder.weight": f32(enc_w), "encoder.bias": f32(enc_b), "W_dec": f32(W_dec), "b_dec": f32(b_dec)},
              os.path.join(folder, "sae.safetensors"))
    write_reference(folder, {"acts": acts, "recon.blocks.0.hook_resid_post": acts @ t(W_dec) + t(b_dec)})
    index.append(dict(name="sparsify-sae", sae="sparsify-tiny/h.0", model="gpt2", ids=GPT2["ids"], layers=[0],
                      inputs=["blocks.0.hook_resid_post"], outputs=["blocks.0.hook_resid_post"], format="sparsify"))

    # A skip transcoder on h.1.mlp: reads the MLP's input (ln_2's output), predicts its output; b_dec not subtracted.
    width, k = 48, 5
    x = h["blocks.1.ln2.hook_normalized"]

    def make_transcoder(r):
        enc_w = r.normal(0, 0.4, (width, d))
        enc_b = r.normal(0, 0.2, (width,))
        W_dec = r.normal(0, 0.3, (width, d))
        b_dec = r.normal(0, 0.5, (d,))
        W_skip = r.normal(0, 0.2, (d, d))
        pre = torch.relu(x @ t(enc_w).T + t(enc_b))
        checked_topk(pre, k)
        return enc_w, enc_b, W_dec, b_dec, W_skip, pre

    enc_w, enc_b, W_dec, b_dec, W_skip, pre = with_seed(22, make_transcoder)
    acts = topk_keep(pre, k, relu=True)
    folder = case_dir("sparsify-tiny", "h.1.mlp")
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump({"activation": "topk", "expansion_factor": 32, "normalize_decoder": True, "num_latents": width, "k": k,
                   "multi_topk": False, "skip_connection": True, "transcode": True, "d_in": d}, f)
    save_file({"encoder.weight": f32(enc_w), "encoder.bias": f32(enc_b), "W_dec": f32(W_dec), "b_dec": f32(b_dec),
               "W_skip": f32(W_skip)}, os.path.join(folder, "sae.safetensors"))
    recon = acts @ t(W_dec) + t(b_dec) + x @ t(W_skip).T
    write_reference(folder, {"acts": acts, "recon.blocks.1.hook_mlp_out": recon})
    index.append(dict(name="sparsify-transcoder", sae="sparsify-tiny/h.1.mlp", model="gpt2", ids=GPT2["ids"], layers=[1],
                      inputs=["blocks.1.ln2.hook_normalized"], outputs=["blocks.1.hook_mlp_out"], format="sparsify"))
    assert T == 10


def saelens_cfg(arch, d_in, d_sae, hook, extra, meta_extra=None):
    meta = {"model_name": "loupe-fixture-gpt2", "hook_name": hook, "hook_head_index": None, "prepend_bos": True,
            "context_size": 64, "dataset_path": "none", "model_from_pretrained_kwargs": {}}
    meta.update(meta_extra or {})
    cfg = {"architecture": arch, "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": False, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": meta}
    cfg.update(extra)
    return cfg


def saelens(index, h):
    d = 32
    # skip_transcoder at layer 0: ln2's output in, MLP output out (hook_name_out under metadata).
    r = rng(31)
    width = 48
    p = weights(r, d, width)
    p["W_skip"] = r.normal(0, 0.2, (d, d))  # [d_out, d_in]
    x = h["blocks.0.ln2.hook_normalized"]
    acts = torch.relu(x @ t(p["W_enc"]) + t(p["b_enc"]))
    recon = acts @ t(p["W_dec"]) + t(p["b_dec"]) + x @ t(p["W_skip"]).T
    folder = case_dir("saelens-skip-transcoder")
    cfg = saelens_cfg("skip_transcoder", d, width, "blocks.0.ln2.hook_normalized", {"d_out": d},
                      {"hook_name_out": "blocks.0.hook_mlp_out", "hook_head_index_out": None})
    json.dump(cfg, open(os.path.join(folder, "cfg.json"), "w"), indent=2)
    save_file({k: f32(v) for k, v in p.items()}, os.path.join(folder, "sae_weights.safetensors"))
    write_reference(folder, {"acts": acts, "recon.blocks.0.hook_mlp_out": recon})
    index.append(dict(name="saelens-skip-transcoder", sae="saelens-skip-transcoder", model="gpt2", ids=GPT2["ids"],
                      layers=[0], inputs=["blocks.0.ln2.hook_normalized"], outputs=["blocks.0.hook_mlp_out"],
                      format="saelens-transcoder"))

    # jumprelu_transcoder at layer 1, hook_name_out at the top level (older SAELens 6 files).
    r = rng(32)
    p = weights(r, d, width)
    x = h["blocks.1.ln2.hook_normalized"]
    pre = x @ t(p["W_enc"]) + t(p["b_enc"])
    p["threshold"] = np.abs(r.normal(0.3, 0.2, (width,)))
    acts = jumprelu(pre, p["threshold"])
    folder = case_dir("saelens-jumprelu-transcoder")
    cfg = saelens_cfg("jumprelu_transcoder", d, width, "blocks.1.ln2.hook_normalized",
                      {"d_out": d, "hook_name_out": "blocks.1.hook_mlp_out"})
    json.dump(cfg, open(os.path.join(folder, "cfg.json"), "w"), indent=2)
    save_file({k: f32(v) for k, v in p.items()}, os.path.join(folder, "sae_weights.safetensors"))
    write_reference(folder, {"acts": acts, "recon.blocks.1.hook_mlp_out": acts @ t(p["W_dec"]) + t(p["b_dec"])})
    index.append(dict(name="saelens-jumprelu-transcoder", sae="saelens-jumprelu-transcoder", model="gpt2",
                      ids=GPT2["ids"], layers=[1], inputs=["blocks.1.ln2.hook_normalized"],
                      outputs=["blocks.1.hook_mlp_out"], format="saelens-transcoder"))

    # batchtopk training checkpoint: threshold at inference, b_dec subtracted, pre rescaled by |W_dec_i|.
    r = rng(33)
    p = weights(r, d, width)
    x = h["blocks.0.hook_resid_post"]
    norms = t(p["W_dec"]).norm(dim=-1)
    pre = ((x - t(p["b_dec"])) @ t(p["W_enc"]) + t(p["b_enc"])) * norms
    thresholds = np.full((width,), 0.45)
    acts = jumprelu(pre, thresholds, uniform=True)
    threshold = float(thresholds[0])
    recon = (acts / norms) @ t(p["W_dec"]) + t(p["b_dec"])
    folder = case_dir("saelens-batchtopk")
    cfg = saelens_cfg("batchtopk", d, width, "blocks.0.hook_resid_post",
                      {"apply_b_dec_to_input": True, "k": 6.0, "rescale_acts_by_decoder_norm": True,
                       "topk_threshold_lr": 0.01})
    json.dump(cfg, open(os.path.join(folder, "cfg.json"), "w"), indent=2)
    tensors = {k: f32(v) for k, v in p.items()}
    tensors["topk_threshold"] = torch.tensor(threshold, dtype=torch.float32)
    save_file(tensors, os.path.join(folder, "sae_weights.safetensors"))
    write_reference(folder, {"acts": acts, "recon.blocks.0.hook_resid_post": recon})
    index.append(dict(name="saelens-batchtopk", sae="saelens-batchtopk", model="gpt2", ids=GPT2["ids"], layers=[0],
                      inputs=["blocks.0.hook_resid_post"], outputs=["blocks.0.hook_resid_post"], format="saelens"))


def write_yaml(folder, entries):
    # The few flat keys circuit-tracer's config.yaml has, written as yaml.dump would.
    with open(os.path.join(folder, "config.yaml"), "w") as f:
        for k, v in entries.items():
            f.write(f"{k}: {v}\n")


def circuit_tracer_set(index, h):
    d, width = 32, 40
    T = len(GPT2["ids"])
    # Set A: jump_relu, hook_resid_mid -> hook_mlp_out, with W_skip [d, d] applied as x W_skip^T; f32.
    folder = case_dir("transcoder-set-jumprelu")
    ref = {}
    for layer in range(2):
        r = rng(41 + layer)
        W_enc = r.normal(0, 0.4, (width, d))  # circuit-tracer's layout: [d_tc, d_model]
        b_enc = r.normal(0, 0.2, (width,))
        W_dec = r.normal(0, 0.3, (width, d))
        b_dec = r.normal(0, 0.5, (d,))
        W_skip = r.normal(0, 0.2, (d, d))
        threshold = np.abs(r.normal(0.3, 0.2, (width,)))
        x = h[f"blocks.{layer}.hook_resid_mid"]
        pre = x @ t(W_enc).T + t(b_enc)
        acts = jumprelu(pre, threshold)
        ref[f"acts.{layer}"] = acts
        ref[f"recon.blocks.{layer}.hook_mlp_out"] = acts @ t(W_dec) + t(b_dec) + x @ t(W_skip).T
        if layer == 0 and d != width:
            # The trap: SAELens's layout would read W_enc transposed; the shapes alone tell them apart here.
            assert W_enc.shape == (width, d)
        save_file({"W_enc": f32(W_enc), "b_enc": f32(b_enc), "W_dec": f32(W_dec), "b_dec": f32(b_dec),
                   "activation_function.threshold": f32(threshold), "W_skip": f32(W_skip)},
                  os.path.join(folder, f"layer_{layer}.safetensors"))
    write_yaml(folder, {"feature_input_hook": "hook_resid_mid", "feature_output_hook": "hook_mlp_out",
                        "model_kind": "transcoder_set", "scan": "loupe-fixture"})
    write_reference(folder, ref)
    index.append(dict(name="transcoder-set-jumprelu", transcoders="transcoder-set-jumprelu", model="gpt2",
                      ids=GPT2["ids"], layers=[0, 1], inputs=["blocks.0.hook_resid_mid", "blocks.1.hook_resid_mid"],
                      outputs=["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"], format="transcoder-set"))

    # Set B: topk (no ReLU: negative values among the top k stay), mlp.hook_in -> mlp.hook_out, f16 weights.
    folder = case_dir("transcoder-set-topk-f16")
    ref = {}
    k = 3
    for layer in range(2):
        x = h[f"blocks.{layer}.ln2.hook_normalized"]

        def make_layer(r):
            W_enc = r.normal(0, 0.4, (width, d))
            b_enc = r.normal(-1.5, 0.2, (width,))  # mostly negative, so some rows' top k hold negatives
            W_dec = r.normal(0, 0.3, (width, d))
            b_dec = r.normal(0, 0.5, (d,))
            half = {n: torch.tensor(v, dtype=torch.float16) for n, v in
                    {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}.items()}
            pre = x @ half["W_enc"].double().T + half["b_enc"].double()
            checked_topk(pre, k)
            acts = topk_keep(pre, k, relu=False)
            assert (acts < 0).any(), "no negative kept by topk; the no-ReLU trap is not exercised"
            return half, acts

        half, acts = with_seed(51 + 10 * layer, make_layer)
        ref[f"acts.{layer}"] = acts
        ref[f"recon.blocks.{layer}.hook_mlp_out"] = acts @ half["W_dec"].double() + half["b_dec"].double()
        save_file(half, os.path.join(folder, f"layer_{layer}.safetensors"))
    write_yaml(folder, {"activation": "topk", "feature_input_hook": "mlp.hook_in",
                        "feature_output_hook": "mlp.hook_out", "k": k, "model_kind": "transcoder_set"})
    write_reference(folder, ref)
    index.append(dict(name="transcoder-set-topk-f16", transcoders="transcoder-set-topk-f16", model="gpt2",
                      ids=GPT2["ids"], layers=[0, 1],
                      inputs=["blocks.0.ln2.hook_normalized", "blocks.1.ln2.hook_normalized"],
                      outputs=["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"], format="transcoder-set"))
    assert T == 10


def clt(index, h, fixture, name, input_hook, d, width, scale_inputs=None):
    """A cross-layer transcoder: layer i's features write to layers i..n-1."""
    n = 2
    folder = case_dir(name)
    ids = fixture["ids"]
    acts_by_layer, W_decs, b_decs = [], [], []
    ref = {}
    for i in range(n):
        r = rng(61 + i + (100 if scale_inputs else 0))
        W_enc = r.normal(0, 0.4, (width, d))
        b_enc = r.normal(0, 0.2, (width,))
        b_dec = r.normal(0, 0.5, (d,))
        threshold = np.abs(r.normal(0.3, 0.2, (width,)))
        W_dec = r.normal(0, 0.3, (width, n - i, d))
        if input_hook == "mlp.hook_in":
            x = h[f"blocks.{i}.ln2.hook_normalized"]
            if scale_inputs is not None:
                x = x * scale_inputs[i]  # RMSNorm: the MLP's input is hook_normalized times ln2's weight
        else:
            x = h[f"blocks.{i}.{input_hook}"]
        acts = jumprelu(x @ t(W_enc).T + t(b_enc), threshold)
        acts_by_layer.append(acts)
        W_decs.append(W_dec)
        b_decs.append(b_dec)
        ref[f"acts.{i}"] = acts
        save_file({f"W_enc_{i}": f32(W_enc), f"b_enc_{i}": f32(b_enc), f"b_dec_{i}": f32(b_dec),
                   f"threshold_{i}": f32(threshold)}, os.path.join(folder, f"W_enc_{i}.safetensors"))
        save_file({f"W_dec_{i}": f32(W_dec)}, os.path.join(folder, f"W_dec_{i}.safetensors"))
    for j in range(n):
        recon = t(b_decs[j]).expand(len(ids), d).clone()
        for i in range(j + 1):
            recon = recon + acts_by_layer[i] @ t(W_decs[i][:, j - i, :])
        ref[f"recon.blocks.{j}.hook_mlp_out"] = recon
    write_yaml(folder, {"feature_input_hook": input_hook, "feature_output_hook": "hook_mlp_out",
                        "model_kind": "cross_layer_transcoder"})
    write_reference(folder, ref)
    inputs = [f"blocks.{i}.{'ln2.hook_normalized' if input_hook == 'mlp.hook_in' else input_hook}" for i in range(n)]
    index.append(dict(name=name, transcoders=name, model=fixture["model"], ids=ids, layers=list(range(n)),
                      inputs=inputs, outputs=[f"blocks.{j}.hook_mlp_out" for j in range(n)],
                      format="cross-layer-transcoder"))


def npz_cases():
    """Small .npz files for the reader's own tests: dtypes, orders, header versions, compression, refusals."""
    folder = case_dir("npz")
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 8 - 1
    np.savez(os.path.join(folder, "plain.npz"), f4=a.astype("<f4"), f2=a.astype("<f2"), f8=a.astype("<f8"),
             fortran=np.asfortranarray(a.astype("<f4")), matrix_f=np.asfortranarray(a[0].astype("<f4")),
             scalar=np.float32(2.5), empty=np.zeros((0, 3), dtype="<f4"))
    np.savez_compressed(os.path.join(folder, "compressed.npz"), f4=a.astype("<f4"), fortran=np.asfortranarray(a.astype("<f4")))
    # Header versions 2 and 3, written by numpy's own writer, zipped as numpy zips.
    with zipfile.ZipFile(os.path.join(folder, "versions.npz"), "w") as z:
        for version in [(1, 0), (2, 0), (3, 0)]:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a.astype("<f4"), version=version)
            # A fixed timestamp, as numpy's own savez uses, so that reruns write the same bytes.
            z.writestr(zipfile.ZipInfo(f"v{version[0]}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
    np.savez(os.path.join(folder, "object.npz"), ok=a.astype("<f4"), obj=np.array([{"a": 1}, None], dtype=object))
    np.savez(os.path.join(folder, "bigendian.npz"), big=a.astype(">f4"))
    np.savez(os.path.join(folder, "ints.npz"), ints=np.arange(6, dtype="<i8"))
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump({"a": a.reshape(-1).tolist(), "shape": list(a.shape),
                   "a_f2": a.astype("<f2").astype(np.float64).reshape(-1).tolist()}, f)


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    index = []
    h = hooks_of(GPT2)
    gemma_scope(index, h)
    sparsify(index, h)
    saelens(index, h)
    circuit_tracer_set(index, h)
    clt(index, h, GPT2, "clt-gpt2", "hook_resid_mid", 32, 24)
    hl = hooks_of(LLAMA)
    w = read_weights(os.path.join(ROOT, LLAMA["model"]))
    ln2 = [w[f"model.layers.{i}.post_attention_layernorm.weight"].double() for i in range(2)]
    clt(index, hl, LLAMA, "clt-llama-mlp-in", "mlp.hook_in", 64, 24, scale_inputs=ln2)
    npz_cases()
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump({"description": "Reference dictionaries from tools/reference/dictionaries_reference.py; expected values "
                                  "computed in float64 from the formulas, saved as float32.",
                   "tolerance": 1e-4, "cases": index}, f, indent=1)
    print(f"wrote {len(index)} dictionaries to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
