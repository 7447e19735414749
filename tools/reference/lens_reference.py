"""Reference values for Loupe's lenses and heads, written from the published
methods on top of the reference models (models.py), independent of the engine:

    logit lens        log_softmax(W_U · N(h_l)) for the residual stream entering
                      block l (l = L: after the last block), every position
    tuned lens        log_softmax(W_U · N(h_l + A_l h_l + b_l)) with a random
                      translator saved in Loupe's lens format (config.json +
                      params.safetensors, tuned-lens's key names)
    attention-free    (Chen et al. 2023) the latent h_l run through blocks
                      l..L-1 with attention masked to the diagonal (variant
                      "self": every token attends only to itself, as the
                      authors' code does) or with the attention sub-layer left
                      out (variant "skip"), then N and W_U
    DLA               each head's hook_result, each MLP's output, the
                      embeddings and the attention biases at one position, read
                      through the final norm with the cached scale
                      (TransformerLens's apply_ln_to_stack), dotted with the
                      unembedding of a token (or the difference of two)
    TextSpan          (Gandelsman et al. 2023) per head: the outputs over a
                      set of windows (BOS left out) read through the final
                      norm; the pool (unembedding rows times the final norm's
                      weight, centred for LayerNorm, unit length) projected
                      onto the top singular directions of the outputs; the
                      outputs centred; then m times: the pool row whose
                      projection has the largest standard deviation, removed
                      from the outputs and from the pool
    tuned-lens step   one Adam step on forward KL(final || lens) by autograd

Writes test/fixtures/lens/<model>/ for the fixtures gpt2 (LayerNorm, learned
positions), neox-parallel (parallel residual, partial rotary) and llama-gqa
(RMSNorm, grouped-query attention, untied unembedding):

    lens.json          ids, what was computed, the DLA cases, the TextSpan
                       windows and options
    lens.safetensors   logit.logprobs / tuned.logprobs / free_self.logprobs /
                       free_skip.logprobs [L+1, T, V]; dlaN.* per DLA case;
                       textspan.ids (I64) / textspan.fraction [L, H, m],
                       textspan.total [L, H], textspan.rank (I64) [L, H];
                       step.* (the tuned-lens training step, layer 0)
    tuned/             the random tuned lens the tuned logprobs use

Everything is computed in float64 from the stored weights, saved as float32.

    /usr/bin/python3 tools/reference/lens_reference.py
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_folder import load_model  # noqa: E402
from models import PLAIN, apply_rotary, rotary_cos_sin  # noqa: E402
from safetensors_io import save_file  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(REPO, "test", "fixtures")
OUT = os.path.join(FIXTURES, "lens")
MODELS = ["gpt2", "neox-parallel", "llama-gqa"]
TEXTSPAN_STEPS = 4
TEXTSPAN_RANK = 80  # the authors' default w_ov_rank; capped by the outputs' rank
RANK_CUTOFF = 1e-6  # singular directions with variance below this fraction of the largest are not used
ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


# ---------------------------------------------------------------------------
# The pieces every lens shares: final norm and unembedding, blocks by family
# ---------------------------------------------------------------------------


def family(model):
    return model.config["model_type"]


def blocks(model):
    mt = family(model)
    if mt == "gpt2":
        return list(model.transformer.h)
    if mt == "gpt_neox":
        return list(model.gpt_neox.layers)
    return list(model.model.layers)


def final_norm_params(model):
    """(weight, bias or None, eps, layernorm?) of the final norm."""
    mt, c = family(model), model.config
    if mt == "gpt2":
        n = model.transformer.ln_f
        return n.weight, n.bias, c.get("layer_norm_epsilon", 1e-5), True
    if mt == "gpt_neox":
        n = model.gpt_neox.final_layer_norm
        return n.weight, n.bias, c.get("layer_norm_eps", 1e-5), True
    return model.model.norm.weight, None, c.get("rms_norm_eps", 1e-6), False


def unembedding(model):
    """W_U as [vocab, d]."""
    mt = family(model)
    if mt == "gpt2":
        return model.transformer.wte.weight
    if mt == "gpt_neox":
        return model.embed_out.weight
    return model.unembed_weight()


def final_norm(model, x):
    w, b, eps, layernorm = final_norm_params(model)
    if layernorm:
        x = x - x.mean(-1, keepdim=True)
    y = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
    return y + b if b is not None else y


def lens_logprobs(model, h):
    return torch.log_softmax(final_norm(model, h) @ unembedding(model).t(), dim=-1)


def norm(module, x):
    """A block's LayerNorm / RMSNorm module as a plain function."""
    return module(x, PLAIN, "")


def attention_masked(model, layer, x, mask):
    """The attention sub-layer of block `layer` on x [T, d] with a boolean [T, T] mask (True: may attend)."""
    mt, c = family(model), model.config
    blk = blocks(model)[layer]
    T = x.shape[0]
    if mt == "gpt2":
        a = blk.attn
        H, d = c["n_head"], c["n_embd"]
        dh = d // H
        qkv = x @ a.c_attn.weight + a.c_attn.bias
        q, k, v = (t.reshape(T, H, dh) for t in qkv.split(d, dim=-1))
        scale, n_rep = a.scale, 1
        W_O, b_O = a.c_proj.weight, a.c_proj.bias
    elif mt == "gpt_neox":
        a = blk.attention
        H, dh = a.n_head, a.d_head
        qkv = (x @ a.query_key_value.weight.t() + a.query_key_value.bias).reshape(T, H, 3 * dh)
        q, k, v = qkv[..., :dh], qkv[..., dh : 2 * dh], qkv[..., 2 * dh :]
        cos, sin = rotary_cos_sin(T, a.rot_dims, a.base, x.dtype, x.device)
        q, k = apply_rotary(q[None], cos, sin)[0], apply_rotary(k[None], cos, sin)[0]
        scale, n_rep = 1 / math.sqrt(dh), 1
        W_O, b_O = a.dense.weight.t(), a.dense.bias
    else:
        a = blk.self_attn
        H, dh = a.n_head, a.d_head
        lin = lambda m, t: t @ m.weight.t() + (m.bias if m.bias is not None else 0)  # noqa: E731
        q = lin(a.q_proj, x).reshape(T, H, dh)
        k = lin(a.k_proj, x).reshape(T, a.n_kv, dh)
        v = lin(a.v_proj, x).reshape(T, a.n_kv, dh)
        cos, sin = rotary_cos_sin(T, dh, a.base, x.dtype, x.device)
        q, k = apply_rotary(q[None], cos, sin)[0], apply_rotary(k[None], cos, sin)[0]
        scale, n_rep = 1 / math.sqrt(dh), a.n_head // a.n_kv
        W_O, b_O = a.o_proj.weight.t(), a.o_proj.bias
    k = k.repeat_interleave(n_rep, dim=1)
    v = v.repeat_interleave(n_rep, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q, k) * scale
    pattern = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    z = torch.einsum("hqk,khd->qhd", pattern, v).reshape(T, H * dh)
    out = z @ W_O
    return out + b_O if b_O is not None else out


def block_forward(model, layer, x, attention):
    """Block `layer` on x [T, d]; attention is 'causal', 'self' (diagonal mask) or 'skip' (no attention sub-layer)."""
    mt = family(model)
    blk = blocks(model)[layer]
    T = x.shape[0]
    if mt == "gpt2":
        ln1, ln2, mlp = blk.ln_1, blk.ln_2, blk.mlp
        parallel = False
    elif mt == "gpt_neox":
        ln1, ln2, mlp = blk.input_layernorm, blk.post_attention_layernorm, blk.mlp
        parallel = blk.parallel
    else:
        ln1, ln2, mlp = blk.input_layernorm, blk.post_attention_layernorm, blk.mlp
        parallel = False
    if attention == "skip":
        attn = torch.zeros_like(x)
    else:
        mask = torch.ones(T, T, dtype=torch.bool)
        mask = mask.tril() if attention == "causal" else torch.eye(T, dtype=torch.bool)
        attn = attention_masked(model, layer, norm(ln1, x), mask)
    if parallel:
        return x + attn + mlp(norm(ln2, x), PLAIN)
    mid = x + attn
    return mid + mlp(norm(ln2, mid), PLAIN)


def residual_at(cache, L, layer):
    """The residual stream entering block `layer` ([B, T, d]); layer L: after the last block."""
    return cache[f"blocks.{layer}.hook_resid_pre"] if layer < L else cache[f"blocks.{L - 1}.hook_resid_post"]


# ---------------------------------------------------------------------------
# Lenses
# ---------------------------------------------------------------------------


def random_tuned_lens(model, gen):
    """A tuned lens with small random translators, as tuned-lens names them ('i.weight' [d_out, d_in], 'i.bias')."""
    L, d = len(blocks(model)), unembedding(model).shape[1]
    params = {}
    for i in range(L):
        params[f"{i}.weight"] = 0.15 * torch.randn(d, d, generator=gen, dtype=torch.float64)
        params[f"{i}.bias"] = 0.1 * torch.randn(d, generator=gen, dtype=torch.float64)
    return params


def tuned_logprobs(model, cache, params):
    L = len(blocks(model))
    out = []
    for layer in range(L + 1):
        h = residual_at(cache, L, layer)[0]
        if layer < L:  # the last layer needs no translator
            h = h + h @ params[f"{layer}.weight"].t() + params[f"{layer}.bias"]
        out.append(lens_logprobs(model, h))
    return torch.stack(out)


def attention_free_logprobs(model, cache, variant):
    L = len(blocks(model))
    out = []
    for layer in range(L + 1):
        x = residual_at(cache, L, layer)[0]
        for k in range(layer, L):
            x = block_forward(model, k, x, variant)
        out.append(lens_logprobs(model, x))
    return torch.stack(out)


# ---------------------------------------------------------------------------
# Direct logit attribution
# ---------------------------------------------------------------------------


def read_through_final_norm(model, cache, stack, position):
    """apply_ln_to_stack: centre each component (LayerNorm) and divide by ln_final's cached scale."""
    _, _, _, layernorm = final_norm_params(model)
    if layernorm:
        stack = stack - stack.mean(-1, keepdim=True)
    return stack / cache["ln_final.hook_scale"][0, position]


def dla(model, cache, position, target, versus):
    L = len(blocks(model))
    w, b, _, _ = final_norm_params(model)
    W_U = unembedding(model)
    u = W_U[target] - (W_U[versus] if versus is not None else 0)
    direction = w * u
    read = lambda t: read_through_final_norm(model, cache, t, position) @ direction  # noqa: E731
    out = {"embed": read(cache["hook_embed"][0, position]).reshape(1)}
    if "hook_pos_embed" in cache:
        out["pos_embed"] = read(cache["hook_pos_embed"][0, position]).reshape(1)
    heads, mlp, bias = [], [], []
    for layer in range(L):
        heads.append(read(cache[f"blocks.{layer}.attn.hook_result"][0, position]))
        mlp.append(read(cache[f"blocks.{layer}.hook_mlp_out"][0, position]))
        b_O = attention_output_bias(model, layer)
        bias.append(read(b_O) if b_O is not None else torch.zeros((), dtype=torch.float64))
    out["heads"] = torch.stack(heads)
    out["mlp"] = torch.stack(mlp)
    out["attn_bias"] = torch.stack(bias)
    out["constant"] = ((b @ u) if b is not None else torch.zeros((), dtype=torch.float64)).reshape(1)
    return out


def attention_output_bias(model, layer):
    mt = family(model)
    blk = blocks(model)[layer]
    if mt == "gpt2":
        return blk.attn.c_proj.bias
    if mt == "gpt_neox":
        return blk.attention.dense.bias
    return blk.self_attn.o_proj.bias


# ---------------------------------------------------------------------------
# TextSpan
# ---------------------------------------------------------------------------


def unembedding_pool(model):
    """Each token's direction in the space the heads' normalised outputs live in, unit length."""
    w, _, _, layernorm = final_norm_params(model)
    pool = unembedding(model) * w
    if layernorm:
        pool = pool - pool.mean(-1, keepdim=True)
    return pool / pool.norm(dim=-1, keepdim=True)


def text_span(data, pool, steps, rank):
    """The authors' greedy TextSpan on one head's outputs data [N, d] with the pool [M, d]."""
    _, s, vh = torch.linalg.svd(data, full_matrices=False)
    variances = s**2
    r = min(rank, int((variances > RANK_CUTOFF * variances[0]).sum()))
    basis = vh[:r]
    texts = pool @ basis.t() @ basis  # the pool projected onto the span of the top singular directions
    data = data - data.mean(0, keepdim=True)
    total = data.pow(2).sum()
    chosen, fractions, gaps = [], [], []
    for _ in range(steps):
        std = (data @ texts.t()).std(0)
        top = int(torch.argmax(std))
        second = torch.topk(std, 2).values[1]
        gaps.append(float((std[top] - second) / std[top]))
        t = texts[top] / texts[top].norm()
        fractions.append(float((data @ t).pow(2).sum() / total))
        chosen.append(top)
        data = data - torch.outer(data @ t, t)
        texts = texts - torch.outer(texts @ t, t)
    return chosen, fractions, r, min(gaps)


def textspan_windows(model, gen, bos, count, length):
    V = unembedding(model).shape[0]
    ids = torch.randint(0, V, (count, length - 1), generator=gen)
    ids[ids == bos] = (bos + 1) % V
    return torch.cat([torch.full((count, 1), bos), ids], dim=1)


def head_outputs(model, windows):
    """Per layer: [H, N, d] outputs through the final norm over every window's non-BOS positions."""
    _, cache = model.run_with_cache(windows)
    L = len(blocks(model))
    _, _, _, layernorm = final_norm_params(model)
    scale = cache["ln_final.hook_scale"][:, 1:]  # [B, T-1, 1]
    out = []
    for layer in range(L):
        r = cache[f"blocks.{layer}.attn.hook_result"][:, 1:]  # [B, T-1, H, d]
        if layernorm:
            r = r - r.mean(-1, keepdim=True)
        r = r / scale[:, :, None, :]
        out.append(r.permute(2, 0, 1, 3).reshape(r.shape[2], -1, r.shape[3]))
    return out


# ---------------------------------------------------------------------------
# One tuned-lens training step (Adam on forward KL), by autograd
# ---------------------------------------------------------------------------


def tuned_lens_step(model, h, final, W, b, m, v, lr, t):
    W = W.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    logp = lens_logprobs(model, final)
    logq = lens_logprobs(model, h + h @ W.t() + b)
    kl = (logp.exp() * (logp - logq)).sum(-1).mean()
    kl.backward()
    b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
    out = {"kl": kl.detach().reshape(1)}
    for name, p, m0, v0 in (("W", W, m["W"], v["W"]), ("b", b, m["b"], v["b"])):
        g = p.grad
        m1 = b1 * m0 + (1 - b1) * g
        v1 = b2 * v0 + (1 - b2) * g * g
        out[f"{name}.next"] = p.detach() - lr / (1 - b1**t) * m1 / ((v1 / (1 - b2**t)).sqrt() + eps)
        out[f"{name}.m.next"] = m1
        out[f"{name}.v.next"] = v1
    return out


# ---------------------------------------------------------------------------


def bos_id(folder):
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    return c["bos_token_id"]


def make(name, seed):
    folder = os.path.join(FIXTURES, name)
    model = load_model(folder, torch.float64)
    gen = torch.Generator().manual_seed(seed)
    L = len(blocks(model))
    V, d = unembedding(model).shape
    bos = bos_id(folder)
    with open(os.path.join(folder, "reference.json")) as f:
        case_ids = json.load(f)["cases"][0]["input_ids"]
    ids = torch.tensor([[bos] + case_ids])
    T = ids.shape[1]
    out_dir = os.path.join(OUT, name)
    os.makedirs(os.path.join(out_dir, "tuned"), exist_ok=True)
    tensors = {}

    with torch.no_grad():
        logits, cache = model.run_with_cache(ids)
        # logit lens; its last layer is the model's own prediction
        logit = torch.stack([lens_logprobs(model, residual_at(cache, L, layer)[0]) for layer in range(L + 1)])
        assert torch.allclose(logit[L], torch.log_softmax(logits[0], -1), atol=1e-10)
        tensors["logit.logprobs"] = logit

        params = random_tuned_lens(model, gen)
        tensors["tuned.logprobs"] = tuned_logprobs(model, cache, params)
        save_file({k: v.float().contiguous() for k, v in params.items()}, os.path.join(out_dir, "tuned", "params.safetensors"))
        with open(os.path.join(out_dir, "tuned", "config.json"), "w") as f:
            json.dump({"base_model_name_or_path": name, "d_model": d, "num_hidden_layers": L, "bias": True,
                       "base_model_revision": None, "unembed_hash": None, "lens_type": "linear_tuned_lens"}, f, indent=1)

        # attention-free projection; with causal attention the same code must give the model's own stream back
        for layer in range(L):
            x = block_forward(model, layer, cache[f"blocks.{layer}.hook_resid_pre"][0], "causal")
            assert torch.allclose(x, cache[f"blocks.{layer}.hook_resid_post"][0], atol=1e-10), "block_forward"
        for variant in ("self", "skip"):
            tensors[f"free_{variant}.logprobs"] = attention_free_logprobs(model, cache, variant)

        # DLA: the model's own top prediction at one position, and a logit difference at another
        dla_cases = []
        p0 = T - 1
        top = int(torch.argmax(logits[0, p0]))
        p1 = T // 2
        a, b = int(case_ids[p1]), int(case_ids[p1 + 1])  # the current and the next token as A and B
        if a == b:
            b = (b + 1) % V
        for i, (pos, target, versus) in enumerate(((p0, top, None), (p1, a, b))):
            parts = dla(model, cache, pos, target, versus)
            total = sum(v.sum() for v in parts.values())
            want = logits[0, pos, target] - (logits[0, pos, versus] if versus is not None else 0)
            assert abs(float(total - want)) < 1e-9, ("dla sum", float(total), float(want))
            for k, v in parts.items():
                tensors[f"dla{i}.{k}"] = v
            tensors[f"dla{i}.logit"] = want.reshape(1)
            dla_cases.append({"name": f"dla{i}", "position": pos, "target": target, "versus": versus})

        # TextSpan over random windows
        windows = textspan_windows(model, gen, bos, 12, 24)
        pool = unembedding_pool(model)
        outputs = head_outputs(model, windows)
        H = outputs[0].shape[0]
        ids_out = torch.zeros(L, H, TEXTSPAN_STEPS, dtype=torch.int64)
        frac_out = torch.zeros(L, H, TEXTSPAN_STEPS, dtype=torch.float64)
        total_out = torch.zeros(L, H, dtype=torch.float64)
        rank_out = torch.zeros(L, H, dtype=torch.int64)
        min_gap = 1.0
        for layer in range(L):
            for h in range(H):
                chosen, fractions, r, gap = text_span(outputs[layer][h], pool, TEXTSPAN_STEPS, TEXTSPAN_RANK)
                ids_out[layer, h] = torch.tensor(chosen)
                frac_out[layer, h] = torch.tensor(fractions)
                total_out[layer, h] = sum(fractions)
                rank_out[layer, h] = r
                min_gap = min(min_gap, gap)

    # the tuned-lens training step, on layer 0's residual stream
    g = torch.Generator().manual_seed(seed + 1)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    h0 = cache["blocks.0.hook_resid_pre"][0].detach()
    final = cache[f"blocks.{L - 1}.hook_resid_post"][0].detach()
    W, b = 0.05 * rnd(d, d), 0.05 * rnd(d)
    m = {"W": 0.01 * rnd(d, d), "b": 0.01 * rnd(d)}
    v = {"W": 1e-3 * rnd(d, d).abs(), "b": 1e-3 * rnd(d).abs()}
    lr, t = 1e-2, 3
    step = tuned_lens_step(model, h0, final, W, b, m, v, lr, t)
    step_in = {"h": h0, "final": final, "W": W, "b": b, "W.m": m["W"], "b.m": m["b"], "W.v": v["W"], "b.v": v["b"]}

    out = {k: v.float().contiguous() for k, v in tensors.items()}
    out["textspan.ids"] = ids_out
    out["textspan.rank"] = rank_out
    out["textspan.fraction"] = frac_out.float()
    out["textspan.total"] = total_out.float()
    out["textspan.windows"] = windows
    out["ids"] = ids
    for k, val in step_in.items():
        out[f"step.{k}"] = val.float().contiguous()
    for k, val in step.items():
        out[f"step.expected.{k}"] = val.detach().float().contiguous()
    save_file(out, os.path.join(out_dir, "lens.safetensors"))
    index = {
        "description": "Expected lens and head values from tools/reference/lens_reference.py (float64, saved as float32).",
        "model": name,
        "tolerance": 1e-4,
        "layers": L + 1,
        "dla": dla_cases,
        "textspan": {"steps": TEXTSPAN_STEPS, "rank": TEXTSPAN_RANK, "min_relative_gap": min_gap},
        "step": {"lr": lr, "t": t, **ADAM},
    }
    with open(os.path.join(out_dir, "lens.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(f"{name}: T={T}, L={L}, TextSpan ranks {sorted(set(rank_out.flatten().tolist()))}, "
          f"smallest relative gap between the best and second-best pick {min_gap:.2e}")


def main():
    torch.set_grad_enabled(True)
    for i, name in enumerate(MODELS):
        make(name, 100 + i)


if __name__ == "__main__":
    main()
