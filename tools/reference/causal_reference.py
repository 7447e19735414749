"""Reference values for Loupe's probes and causal tools (test/unit/probe*.test.ts and
causal*.test.ts), computed in float64 with the PyTorch reference models, from the
definitions below and independently of the engine:

    /usr/bin/python3 tools/reference/causal_reference.py

Writes test/fixtures/causal/:

  logistic.safetensors     two small datasets and the exact minimisers of the probe objective
  gpt2.json                ablation, patching, occlusion, steering and directional-derivative
                           values on the `gpt2` fixture checkpoint (test/fixtures/gpt2)
  gpt2.safetensors         the directions used for steering and derivatives
  sae-gpt2/                an SAELens folder (standard ReLU SAE on blocks.0.hook_resid_post of
                           the `gpt2` fixture) and, in gpt2.json, its feature-ablation values
  one-head/                a hand-built GPT-2 in which one attention head (L1H2) alone carries
                           the answer, with its patching and ablation values in one-head.json

Definitions:

  probe objective   mean_i -log softmax(z_i)[y_i] + (l2/2)·|W_std|², z_i = W_std·(x_i - mu)/sigma + b,
                    mu/sigma the rows' mean and population standard deviation per feature; two classes
                    have one weight row (class 1 against class 0), more have one per class; the bias is
                    not penalised. Solved by Newton's method (minimum-norm steps) to |grad| < 1e-12.
                    Saved in the raw space: weight = W_std/sigma, bias = b - weight·mu.
  loss              mean next-token cross-entropy over positions 0..T-2.
  logit difference  logit[target] - logit[versus] at the last position.
  ablation          zero: the component's output is 0 at every position; mean: it is its mean over the
                    text's positions (BOS left out). Head h = hook_z[..., h, :]; attn = hook_attn_out;
                    mlp = hook_mlp_out; neuron i = mlp.hook_post[..., i].
  patching          denoising: run the corrupted text with one activation from the clean run;
                    normalised = (LD - LD_corrupted) / (LD_clean - LD_corrupted); noising: the reverse.
  occlusion         metric(clean) - metric(occluded) for each position up to the watched one (BOS: 0),
                    occluded = token embedding zeroed (hook_embed) or the token replaced.
  steering          greedy continuation with strength·direction added to the hook at every position.
  derivative        d/d eps of logit[target] at the last position when eps·v is added to the hook at
                    every position, at eps = 0 (autograd here; the engine uses central differences).
  SAE ablation      the SAE spliced in with its error term: x' = x + (f_edit - f)·W_dec, f the ReLU SAE's
                    features of x (SAELens: f = relu((x - b_dec) W_enc + b_enc)).
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_folder import load_model, read_config, write_weights  # noqa: E402
from models import build_model  # noqa: E402
from safetensors_io import save_file  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "test", "fixtures", "causal")
GPT2 = os.path.join(REPO, "test", "fixtures", "gpt2")
F64 = torch.float64


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def rounded(x, digits=10):
    """Floats for JSON, rounded so reruns give identical files."""
    if isinstance(x, torch.Tensor):
        x = x.tolist()
    if isinstance(x, (list, tuple)):
        return [rounded(v, digits) for v in x]
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    return x


# ---------------------------------------------------------------------------
# Logistic regression
# ---------------------------------------------------------------------------


def probe_objective(params, z, y, K, l2):
    """Mean cross-entropy + (l2/2)|W|² for standardised rows z; params = (W [out, d], b [out])."""
    W, b = params
    scores = z @ W.T + b
    if K == 2:
        scores = torch.cat([torch.zeros_like(scores), scores], dim=1)
    logp = torch.log_softmax(scores, dim=1)
    return -logp[torch.arange(len(y)), y].mean() + 0.5 * l2 * (W * W).sum()


def solve_logistic(x, y, K, l2):
    n, d = x.shape
    mu = x.mean(0)
    sigma = x.std(0, unbiased=False)
    z = (x - mu) / sigma
    out = 1 if K == 2 else K
    theta = torch.zeros(out * d + out, dtype=F64)

    def f(t):
        return probe_objective((t[: out * d].view(out, d), t[out * d :]), z, y, K, l2)

    for _ in range(100):
        g = torch.autograd.functional.jacobian(f, theta)
        if g.abs().max() < 1e-12:
            break
        H = torch.autograd.functional.hessian(f, theta)
        # Minimum-norm step: softmax's biases are invariant to a common shift, so H is singular there.
        step = torch.linalg.lstsq(H, g.unsqueeze(1), rcond=1e-12, driver="gelsd").solution.squeeze(1)
        theta = theta - step
    g = torch.autograd.functional.jacobian(f, theta)
    assert g.abs().max() < 1e-10, f"Newton did not converge: |grad| = {g.abs().max()}"
    W = theta[: out * d].view(out, d)
    b = theta[out * d :]
    weight = W / sigma
    bias = b - weight @ mu
    loss = probe_objective((W, b), z, y, K, 0.0).item()
    pred = (torch.cat([torch.zeros(n, 1, dtype=F64), x @ weight.T + bias], 1) if K == 2 else x @ weight.T + bias).argmax(1)
    return weight, bias, loss, (pred == y).double().mean().item()


def logistic_fixture(gen):
    tensors = {}
    meta = {}
    for name, n, d, K, l2 in [("binary", 160, 6, 2, 0.01), ("multiclass", 180, 5, 3, 0.05)]:
        A = torch.randn(d, d, generator=gen, dtype=F64)
        latent = torch.randn(n, d, generator=gen, dtype=F64)
        scale = torch.linspace(0.5, 20.0, d, dtype=F64)
        offset = torch.linspace(-30.0, 40.0, d, dtype=F64)
        x = (latent @ A) * scale + offset  # correlated features of very different scales and means
        w_true = torch.randn(d, K, generator=gen, dtype=F64)
        y = (latent @ w_true + 0.8 * torch.randn(n, K, generator=gen, dtype=F64)).argmax(1)
        x = x.to(torch.float32).to(F64)  # the engine reads float32 rows
        weight, bias, loss, acc = solve_logistic(x, y, K, l2)
        tensors[f"{name}.x"] = f32(x)
        tensors[f"{name}.y"] = y.to(torch.int64)
        tensors[f"{name}.weight"] = f32(weight)
        tensors[f"{name}.bias"] = f32(bias)
        meta[name] = {"n": n, "d": d, "classes": K, "l2": l2, "train_loss": rounded(loss), "train_accuracy": rounded(acc)}
    save_file(tensors, os.path.join(OUT, "logistic.safetensors"), {"cases": json.dumps(meta)})
    print("logistic:", json.dumps(meta))


# ---------------------------------------------------------------------------
# Helpers on a reference model
# ---------------------------------------------------------------------------


def run(model, ids, edits=None):
    t = torch.tensor([ids])
    with torch.no_grad():
        return model.run_with_edits(t, edits or {})[0] if edits else model(t)[0]


def cache_of(model, ids):
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]))
    return {k: v[0] for k, v in cache.items()}


def mean_loss(logits, ids):
    logp = torch.log_softmax(logits, -1)
    return -logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].mean().item()


def state(logits, ids, target, versus):
    row = logits[-1]
    return {
        "loss": mean_loss(logits, ids),
        "logit": row[target].item(),
        "prob": torch.softmax(row, -1)[target].item(),
        "logit_diff": (row[target] - row[versus]).item(),
    }


def parse_component(name):
    """(hook, head, index) for L1H3 / L0.attn / L1.mlp / L1N5 (head and index None where not used)."""
    if name.endswith(".attn"):
        return f"blocks.{int(name[1:-5])}.hook_attn_out", None, None
    if name.endswith(".mlp"):
        return f"blocks.{int(name[1:-4])}.hook_mlp_out", None, None
    if "H" in name:
        layer, head = map(int, name[1:].split("H"))
        return f"blocks.{layer}.attn.hook_z", head, None
    layer, index = map(int, name[1:].split("N"))
    return f"blocks.{layer}.mlp.hook_post", None, index


def ablation_edits(names, mode, means):
    """Edits that zero (or set to the mean) each named component, at every position."""
    edits = {}
    for name in names:
        hook, head, index = parse_component(name)
        mean = means[hook]
        mul, add = edits.get(hook, (torch.ones_like(mean), torch.zeros_like(mean)))
        where = (head, slice(None)) if head is not None else (index if index is not None else slice(None))
        mul[where] = 0
        if mode == "mean":
            add[where] = mean[where]
        edits[hook] = (mul, add)
    return edits


def component_means(cache, ids, bos):
    first = 1 if ids[0] == bos else 0
    return {k: v[first:].mean(0) for k, v in cache.items()}


# ---------------------------------------------------------------------------
# The gpt2 fixture
# ---------------------------------------------------------------------------


def gpt2_fixture(gen):
    cfg = read_config(GPT2)
    model = load_model(GPT2, F64)
    bos = cfg["bos_token_id"]
    with open(os.path.join(GPT2, "reference.json")) as f:
        case0 = json.load(f)["cases"][0]["input_ids"]
    clean = [bos] + case0
    corrupted = list(clean)
    corrupted[2], corrupted[5] = 275, 289
    T = len(clean)
    L, H = cfg["n_layer"], cfg["n_head"]
    lc, lk = run(model, clean), run(model, corrupted)
    target = int(lc[-1].argmax())
    versus = int(lk[-1].argmax())
    if versus == target:
        versus = int(lc[-1].topk(2).indices[1])
    ld = lambda logits: (logits[-1, target] - logits[-1, versus]).item()  # noqa: E731
    ld_clean, ld_corrupted = ld(lc), ld(lk)
    assert abs(ld_clean - ld_corrupted) > 0.05, "choose texts whose logit differences differ"
    out = {"clean": clean, "corrupted": corrupted, "target": target, "versus": versus,
           "clean_logit_diff": ld_clean, "corrupted_logit_diff": ld_corrupted}

    # Ablation on the clean text.
    cache_c = cache_of(model, clean)
    means = component_means(cache_c, clean, bos)
    clean_state = state(lc, clean, target, versus)
    groups = [[f"L{l}H{h}"] for l in range(L) for h in range(H)]
    groups += [[f"L{l}.attn"] for l in range(L)] + [[f"L{l}.mlp"] for l in range(L)]
    groups += [["L1N5"], ["L0H1", "L1.mlp"]]
    ablations = []
    for mode, gs in [("zero", groups), ("mean", [["L0H1"], ["L1.mlp"], ["L1N5"], ["L0H1", "L1.mlp"]])]:
        for g in gs:
            logits = run(model, clean, ablation_edits(g, mode, means))
            ablations.append({"mode": mode, "targets": g, **state(logits, clean, target, versus)})
    out["ablation"] = {"clean": clean_state, "effects": ablations}

    # Patching grids.
    cache_k = cache_of(model, corrupted)

    def patched(base_ids, hook, value_from, select):
        """Run base_ids with hook's values replaced where `select` (a bool mask) is set."""
        src = value_from[hook]
        mask = select.to(F64)
        return run(model, base_ids, {hook: (1 - mask, src * mask)})

    def norm(v):
        return (v - ld_corrupted) / (ld_clean - ld_corrupted)

    grids = {}
    for site, direction in [("resid_pre", "denoise"), ("resid_post", "noise"), ("attn_out", "denoise")]:
        base, source = (corrupted, cache_c) if direction == "denoise" else (clean, cache_k)
        vals = []
        for l in range(L):
            hook = f"blocks.{l}.hook_{site}"
            row = []
            for p in range(T):
                sel = torch.zeros_like(source[hook], dtype=torch.bool)
                sel[p] = True
                row.append(norm(ld(patched(base, hook, source, sel))))
            vals.append(row)
        grids[f"{site}-{direction}"] = vals
    heads, head_pos = [], []
    for l in range(L):
        hook = f"blocks.{l}.attn.hook_z"
        row = []
        for h in range(H):
            sel = torch.zeros_like(cache_c[hook], dtype=torch.bool)
            sel[:, h, :] = True
            row.append(norm(ld(patched(corrupted, hook, cache_c, sel))))
            prow = []
            for p in range(T):
                sel = torch.zeros_like(cache_c[hook], dtype=torch.bool)
                sel[p, h, :] = True
                prow.append(norm(ld(patched(corrupted, hook, cache_c, sel))))
            head_pos.append(prow)
        heads.append(row)
    grids["heads"] = heads
    grids["head-positions"] = head_pos
    out["patching"] = grids

    # Occlusion at the last position.
    def occluded_zero(p):
        mul = torch.ones(T, 1, dtype=F64)
        mul[p] = 0
        return run(model, clean, {"hook_embed": (mul, None)})

    first = 1
    zero_effects = [0.0] * T
    replace_effects = [0.0] * T
    replacement = 220
    for p in range(first, T):
        zero_effects[p] = lc[-1, target].item() - occluded_zero(p)[-1, target].item()
        ids = list(clean)
        ids[p] = replacement
        replace_effects[p] = ld_clean - ld(run(model, ids))
    out["occlusion"] = {"zero_embedding_logit": zero_effects, "replacement": replacement, "replacement_logit_diff": replace_effects}

    # Steering (greedy) along a random unit direction.
    d = cfg["n_embd"]
    direction = torch.randn(d, generator=gen, dtype=F64)
    direction = direction / direction.norm()
    hook, strength, n_new = "blocks.0.hook_resid_post", 6.0, 8
    continuations = {}
    min_margin = math.inf
    for side, add in [("unsteered", None), ("steered", strength * direction)]:
        ids = list(clean)
        for _ in range(n_new):
            logits = run(model, ids, {hook: (None, add)} if add is not None else None)
            top2 = logits[-1].topk(2)
            min_margin = min(min_margin, (top2.values[0] - top2.values[1]).item())
            ids.append(int(top2.indices[0]))
        continuations[side] = ids[len(clean):]
    assert min_margin > 1e-3, f"a greedy choice is a near tie ({min_margin}); pick another direction"
    assert continuations["steered"] != continuations["unsteered"], "steering changed nothing; pick a larger strength"
    out["steering"] = {"hook": hook, "strength": strength, "tokens": n_new, **continuations, "min_margin": min_margin}

    # Directional derivatives of the target logit along a random unit direction.
    v = torch.randn(d, generator=gen, dtype=F64)
    v = v / v.norm()
    dhook = "blocks.1.hook_resid_pre"
    inputs = [clean, corrupted, clean[:6]]
    derivs = []
    for ids in inputs:
        eps = torch.zeros((), dtype=F64, requires_grad=True)
        logits = model.run_with_edits(torch.tensor([ids]), {dhook: (None, eps * v)})[0]
        (g,) = torch.autograd.grad(logits[-1, target], eps)
        derivs.append(g.item())
    out["derivatives"] = {"hook": dhook, "target": target, "inputs": inputs, "values": derivs}

    # SAE feature ablation, spliced in with its error term.
    sae_dir = os.path.join(OUT, "sae-gpt2")
    os.makedirs(sae_dir, exist_ok=True)
    d_sae, sae_hook = 64, "blocks.0.hook_resid_post"
    x = cache_c[sae_hook]
    W_enc = torch.randn(d, d_sae, generator=gen, dtype=F64) / math.sqrt(d)
    W_dec = torch.randn(d_sae, d, generator=gen, dtype=F64) / math.sqrt(d)
    b_dec = x[1:].mean(0).to(torch.float32).to(F64)
    b_enc = (-0.3 * torch.ones(d_sae, dtype=F64)).to(torch.float32).to(F64)
    W_enc, W_dec = W_enc.to(torch.float32).to(F64), W_dec.to(torch.float32).to(F64)
    save_file({"W_enc": f32(W_enc), "b_enc": f32(b_enc), "W_dec": f32(W_dec), "b_dec": f32(b_dec)},
              os.path.join(sae_dir, "sae_weights.safetensors"))
    with open(os.path.join(sae_dir, "cfg.json"), "w") as f:
        json.dump({"architecture": "standard", "d_in": d, "d_sae": d_sae, "dtype": "float32",
                   "apply_b_dec_to_input": True, "normalize_activations": "none",
                   "metadata": {"hook_name": sae_hook, "context_size": 64, "prepend_bos": True,
                                "model_from_pretrained_kwargs": {"center_writing_weights": False}}}, f, indent=1)
        f.write("\n")
    feats = torch.relu((x - b_dec) @ W_enc + b_enc)
    active = (feats[1:] > 0.05).sum(0)
    chosen = [int(i) for i in active.argsort(descending=True)[:2]]
    mean_f = feats[1:].mean(0)
    sae_effects = []
    for mode, group in [("zero", [chosen[0]]), ("zero", [chosen[1]]), ("zero", chosen), ("mean", [chosen[0]])]:
        edited = feats.clone()
        for i in group:
            edited[:, i] = mean_f[i] if mode == "mean" else 0.0
        x_new = x + (edited - feats) @ W_dec
        logits = run(model, clean, {sae_hook: (torch.zeros(()), x_new)})
        sae_effects.append({"mode": mode, "features": group, **state(logits, clean, target, versus)})
    out["sae_ablation"] = {"hook": sae_hook, "effects": sae_effects}

    save_file({"steering.direction": f32(direction), "derivatives.direction": f32(v)},
              os.path.join(OUT, "gpt2.safetensors"))
    write_json(os.path.join(OUT, "gpt2.json"), out)
    print(f"gpt2: target {target}, versus {versus}, LD clean {ld_clean:.4f} corrupted {ld_corrupted:.4f}, "
          f"steering margin {min_margin:.4f}, SAE features {chosen}")


# ---------------------------------------------------------------------------
# The one-head model
# ---------------------------------------------------------------------------

A_TOKEN, B_TOKEN, BOS = 1, 2, 63
ONE_HEAD = {
    "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 16, "n_head": 4, "n_layer": 2,
    "n_positions": 16, "n_ctx": 16, "n_inner": 32, "vocab_size": 64, "activation_function": "gelu_new",
    "layer_norm_epsilon": 1e-5, "bos_token_id": BOS, "eos_token_id": BOS, "scale_attn_weights": True,
    "tie_word_embeddings": True,
}


def build_one_head(gen):
    """A GPT-2 whose answer at every position after 1 is the token at position 1 (A or B), moved there
    by head L1H2 alone.

    dims 0,1: the answer (A = 2(e0 - e1), B = -A); dims 2,3: a marker on position 1's embedding;
    dims 4..15: every other token and position, zero-mean, so LayerNorm treats A and B alike.
    No other head, and no MLP, reads dims 0..3; L1H2 has a constant query (its bias) and a key
    that reads the marker, so it attends to position 1 from everywhere, reads x0 - x1 there and
    writes it back to dims 0,1, which the tied unembedding reads as A or B.
    """
    c = ONE_HEAD
    d, H, V, P, M = c["n_embd"], c["n_head"], c["vocab_size"], c["n_positions"], c["n_inner"]
    dh = d // H
    model = build_model(c).to(F64)
    tr = model.transformer

    def rand(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen, dtype=F64) * scale

    def centred_tail(n, scale):
        t = torch.zeros(n, d, dtype=F64)
        tail = rand(n, d - 4, scale=scale)
        t[:, 4:] = tail - tail.mean(1, keepdim=True)
        return t

    with torch.no_grad():
        wte = centred_tail(V, 1.0)
        wte[A_TOKEN] = 0
        wte[A_TOKEN, 0], wte[A_TOKEN, 1] = 2.0, -2.0
        wte[B_TOKEN] = -wte[A_TOKEN]
        tr.wte.weight.copy_(wte)
        wpe = centred_tail(P, 0.3)
        wpe[1] = 0
        wpe[1, 2], wpe[1, 3] = 2.0, -2.0
        tr.wpe.weight.copy_(wpe)
        for block in tr.h:
            for ln in (block.ln_1, block.ln_2):
                ln.weight.fill_(1.0)
                ln.bias.zero_()
            W = rand(d, 3 * d, scale=0.4)
            W[:4, 2 * d:] = 0  # no value reads the answer or the marker
            block.attn.c_attn.weight.copy_(W)
            block.attn.c_attn.bias.copy_(rand(3 * d, scale=0.1))
            block.attn.c_proj.weight.copy_(rand(d, d, scale=0.1))
            block.attn.c_proj.bias.copy_(rand(d, scale=0.02))
            Wfc = rand(d, M, scale=0.4)
            Wfc[:4] = 0  # nor does any MLP
            block.mlp.c_fc.weight.copy_(Wfc)
            block.mlp.c_fc.bias.copy_(rand(M, scale=0.1))
            block.mlp.c_proj.weight.copy_(rand(M, d, scale=0.1))
            block.mlp.c_proj.bias.copy_(rand(d, scale=0.02))
        tr.ln_f.weight.fill_(1.0)
        tr.ln_f.bias.zero_()
        # The mover, L1H2.
        attn = tr.h[1].attn
        h = 2
        q, k, v = slice(h * dh, (h + 1) * dh), slice(d + h * dh, d + (h + 1) * dh), slice(2 * d + h * dh, 2 * d + (h + 1) * dh)
        for s in (q, k, v):
            attn.c_attn.weight[:, s] = 0
            attn.c_attn.bias[s] = 0
        attn.c_attn.bias[q.start] = 6.0  # constant query
        attn.c_attn.weight[2, k.start], attn.c_attn.weight[3, k.start] = 1.0, -1.0  # key: the marker
        attn.c_attn.weight[0, v.start], attn.c_attn.weight[1, v.start] = 1.0, -1.0  # value: the answer
        attn.c_proj.weight[h * dh: (h + 1) * dh] = 0
        attn.c_proj.weight[h * dh, 0], attn.c_proj.weight[h * dh, 1] = 3.0, -3.0
        # Round to float32, the precision the checkpoint stores.
        for p in model.parameters():
            p.copy_(p.to(torch.float32).to(F64))
    return model.eval()


def one_head_fixture(gen):
    folder = os.path.join(OUT, "one-head")
    os.makedirs(folder, exist_ok=True)
    model = build_one_head(gen)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(ONE_HEAD, f, indent=2)
        f.write("\n")
    write_weights(folder, {k: f32(v) for k, v in model.hf_state_dict().items()})
    model = load_model(folder, F64)  # exactly what the engine will read

    fillers = list(range(3, BOS))
    body = [fillers[int(i)] for i in torch.randint(len(fillers), (6,), generator=gen)]
    clean = [BOS, A_TOKEN] + body
    corrupted = [BOS, B_TOKEN] + body
    T, L, H = len(clean), 2, 4
    lc, lk = run(model, clean), run(model, corrupted)
    assert int(lc[-1].argmax()) == A_TOKEN and int(lk[-1].argmax()) == B_TOKEN, "the model must answer A / B"
    ld = lambda logits: (logits[-1, A_TOKEN] - logits[-1, B_TOKEN]).item()  # noqa: E731
    ld_clean, ld_corrupted = ld(lc), ld(lk)
    cache_c = cache_of(model, clean)

    def norm(v):
        return (v - ld_corrupted) / (ld_clean - ld_corrupted)

    resid = []
    for l in range(L):
        hook = f"blocks.{l}.hook_resid_pre"
        row = []
        for p in range(T):
            mask = torch.zeros(T, 1, dtype=F64)
            mask[p] = 1
            row.append(norm(ld(run(model, corrupted, {hook: (1 - mask, cache_c[hook] * mask)}))))
        resid.append(row)
    heads = []
    ablated = []
    for l in range(L):
        hook = f"blocks.{l}.attn.hook_z"
        row = []
        for h in range(H):
            mask = torch.zeros(1, H, 1, dtype=F64)
            mask[0, h] = 1
            row.append(norm(ld(run(model, corrupted, {hook: (1 - mask, cache_c[hook] * mask)}))))
            zero = run(model, clean, ablation_edits([f"L{l}H{h}"], "zero", component_means(cache_c, clean, BOS)))
            ablated.append({"targets": [f"L{l}H{h}"], **state(zero, clean, A_TOKEN, B_TOKEN)})
        heads.append(row)
    out = {"clean": clean, "corrupted": corrupted, "target": A_TOKEN, "versus": B_TOKEN,
           "clean_logit_diff": ld_clean, "corrupted_logit_diff": ld_corrupted,
           "resid_pre": resid, "heads": heads, "carrier": "L1H2",
           "ablation": {"clean": state(lc, clean, A_TOKEN, B_TOKEN), "effects": ablated}}
    write_json(os.path.join(OUT, "one-head.json"), out)
    print(f"one-head: LD clean {ld_clean:.3f} corrupted {ld_corrupted:.3f}; heads {rounded(heads, 4)}")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(rounded(obj), f, indent=1)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    logistic_fixture(torch.Generator().manual_seed(7))
    gpt2_fixture(torch.Generator().manual_seed(11))
    one_head_fixture(torch.Generator().manual_seed(13))


if __name__ == "__main__":
    main()
