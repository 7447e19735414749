"""Reference Transformer language models with TransformerLens-style hooks.

Plain PyTorch, written from the published architectures, independent of the
engine. Each family is built from a Hugging Face `config.json` dict, keeps the
Hugging Face parameter names internally (so `state_dict()` *is* the checkpoint
layout, give or take tied and non-parameter tensors) and runs in whatever
dtype the module is cast to (the fixtures use float64).

    model = build_model(json.load(open("config.json")))
    model.load_hf_state_dict(tensors)
    logits = model(input_ids)                                   # [B, T, vocab]
    logits, cache = model.run_with_cache(input_ids)             # cache: {hook: tensor}
    logits, cache = model.run_with_cache(input_ids, edits={"blocks.0.attn.hook_z": (mul, add)})

Hook names, shapes and values follow TransformerLens on the unprocessed model
(no LayerNorm folding, no centring); see README.md next to this file.
An edit (mul, add) replaces the hook's value x by x * mul + add (None: identity);
the edited value flows downstream and is what the cache records.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------


class HookRun:
    """The hook state of one forward pass: what to record and what to edit."""

    def __init__(self, cache=False, edits=None):
        self.cache = {} if cache else None
        self.edits = dict(edits or {})
        self.active = cache or bool(self.edits)
        self.seen = set()

    def wants(self, name):
        return self.cache is not None or name in self.edits

    def __call__(self, name, x):
        if not self.active:
            return x
        self.seen.add(name)
        edit = self.edits.get(name)
        if edit is not None:
            mul, add = edit
            if mul is not None:
                x = x * torch.as_tensor(mul).to(dtype=x.dtype, device=x.device)
            if add is not None:
                x = x + torch.as_tensor(add).to(dtype=x.dtype, device=x.device)
        if self.cache is not None:
            self.cache[name] = x
        return x


PLAIN = HookRun()


class HookedLM(nn.Module):
    """What every family shares: the public entry points around `_forward(ids, hook)`."""

    def forward(self, input_ids):
        return self._forward(input_ids, PLAIN)

    def run_with_cache(self, input_ids, edits=None):
        run = HookRun(cache=True, edits=edits)
        logits = self._forward(input_ids, run)
        unknown = set(run.edits) - run.seen
        if unknown:
            raise KeyError(f"no such hook(s): {sorted(unknown)}")
        return logits, run.cache

    def run_with_edits(self, input_ids, edits):
        run = HookRun(cache=False, edits=edits)
        logits = self._forward(input_ids, run)
        unknown = set(run.edits) - run.seen
        if unknown:
            raise KeyError(f"no such hook(s): {sorted(unknown)}")
        return logits

    def hook_names(self):
        """Every hook name, in the order a forward pass reaches them."""
        p = next(self.parameters())
        _, cache = self.run_with_cache(torch.zeros(1, 1, dtype=torch.long, device=p.device))
        return list(cache)


# ---------------------------------------------------------------------------
# Shared pieces: normalisation, activations, rotary embeddings, attention
# ---------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """LayerNorm with TransformerLens's hooks.

    x = x - mean(x); hook_scale = sqrt(mean(x^2) + eps) [B,T,1];
    hook_normalized = x / scale * weight + bias (this is the output).
    """

    def __init__(self, d, eps, bias=True):
        super().__init__()
        self.d, self.eps = d, eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d)) if bias else None

    def forward(self, x, hook, name):
        if not hook.active:
            return F.layer_norm(x, (self.d,), self.weight, self.bias, self.eps)
        x = x - x.mean(-1, keepdim=True)
        scale = hook(f"{name}.hook_scale", (x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        y = x / scale * self.weight
        if self.bias is not None:
            y = y + self.bias
        return hook(f"{name}.hook_normalized", y)


class RMSNorm(nn.Module):
    """RMSNorm with TransformerLens's hooks, over the last dimension (d_model, or d_head per head).

    hook_scale = sqrt(mean(x^2) + eps) [..., 1]; hook_normalized = x / scale
    (before the weight); output = normalized * (offset + weight) (Gemma's offset is 1).
    """

    def __init__(self, d, eps, offset=0.0):
        super().__init__()
        self.eps, self.offset = eps, offset
        self.weight = nn.Parameter(torch.full((d,), 1.0 - offset))

    def forward(self, x, hook, name):
        scale = hook(f"{name}.hook_scale", (x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return hook(f"{name}.hook_normalized", x / scale) * (self.offset + self.weight)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu_new": gelu_tanh,  # GPT-2's tanh approximation
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "gelu": lambda x: F.gelu(x),  # exact, erf
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def activation(name):
    if name not in ACTIVATIONS:
        raise NotImplementedError(f"activation {name!r}")
    return ACTIVATIONS[name]


def rope_inv_freq(rot_dims, base, scaling=None):
    """Rotary inverse frequencies [rot_dims / 2], float64, as modeling_rope_utils.py computes them.

    scaling: a config's `rope_scaling` dict or None. "default" (or None): base^(-2i/d);
    "linear": divided by `factor` (the same as dividing positions by it); "llama3":
    wavelengths longer than original_max_position_embeddings / low_freq_factor are
    divided by `factor`, those shorter than ... / high_freq_factor are kept, and the
    band between is interpolated. Anything else (dynamic, yarn, longrope) is refused.
    """
    inv_freq = 1.0 / (base ** (torch.arange(0, rot_dims, 2, dtype=torch.float64) / rot_dims))
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "default":
        return inv_freq
    factor = float(scaling["factor"])
    if kind == "linear":
        return inv_freq / factor
    if kind == "llama3":
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old_len = float(scaling["original_max_position_embeddings"])
        low_freq_wavelen, high_freq_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
        return torch.where(medium, smoothed, scaled)
    raise NotImplementedError(f"rope_scaling type {kind!r}")


def rotary_cos_sin(T, rot_dims, base, dtype, device, scaling=None):
    """cos/sin tables [T, rot_dims] for positions 0..T-1 (rotate-half layout: freqs repeated twice)."""
    inv_freq = rope_inv_freq(rot_dims, base, scaling).to(device)
    t = torch.arange(T, dtype=torch.float64, device=device)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rotary(x, cos, sin):
    """Rotate-half rotary on the first cos.shape[-1] dims of each head. x: [B,T,H,dh]; cos/sin: [T,r]."""
    r = cos.shape[-1]
    x_rot, x_pass = x[..., :r], x[..., r:]
    x1, x2 = x_rot[..., : r // 2], x_rot[..., r // 2 :]
    rotated = torch.cat((-x2, x1), dim=-1)
    cos, sin = cos[:, None, :], sin[:, None, :]  # broadcast over heads
    return torch.cat((x_rot * cos + rotated * sin, x_pass), dim=-1)


def visible_keys(T, window=None, device=None):
    """[T, T] bool: key j is visible from query i iff j <= i and, with a window of W keys
    (the current one included), i - W < j."""
    pos = torch.arange(T, device=device)
    mask = pos[:, None] >= pos[None, :]
    if window is not None:
        mask &= pos[:, None] - window < pos[None, :]
    return mask


def attention(hook, p, q, k, v, scale, W_O, b_O, out_name, n_rep=1, softcap=None, window=None, out_norm=None):
    """Causal attention from per-head q [B,T,H,dh] and k, v [B,T,Hkv,dh], Hkv = H / n_rep.

    W_O: [H, dh, d] (head h's rows of the output projection), b_O: [d] or None.
    softcap: scores become cap * tanh(scores / cap) before the mask (Gemma 2);
    window: a sliding window of that many keys, the current one included.
    out_norm: a callable applied to the summed output before `out_name` (Gemma 2's
    post-attention norm: hook_result stays the per-head output before it).
    Hooks (prefix p = "blocks.L.attn."): hook_attn_scores (scaled, soft-capped, -inf
    where masked), hook_pattern, hook_z, hook_result (z_h @ W_O_h, no bias); and
    `out_name` (= sum over heads of hook_result, + b_O, then out_norm).
    """
    B, T, H, dh = q.shape
    if n_rep != 1:  # grouped-query attention: query head h reads key/value head h // n_rep
        k = k.repeat_interleave(n_rep, dim=2)
        v = v.repeat_interleave(n_rep, dim=2)
    scores = torch.matmul(q.transpose(1, 2), k.permute(0, 2, 3, 1)) * scale  # [B,H,T,T]
    if softcap is not None:
        scores = softcap * torch.tanh(scores / softcap)
    visible = visible_keys(T, window, q.device)
    scores = hook(p + "hook_attn_scores", scores.masked_fill(~visible, float("-inf")))
    pattern = hook(p + "hook_pattern", torch.softmax(scores, dim=-1))
    z = hook(p + "hook_z", torch.matmul(pattern, v.transpose(1, 2)).transpose(1, 2))  # [B,T,H,dh]
    if hook.wants(p + "hook_result"):
        result = hook(p + "hook_result", torch.einsum("bthk,hkd->bthd", z, W_O))
        out = result.sum(dim=2)
    else:
        out = z.reshape(B, T, H * dh) @ W_O.reshape(H * dh, -1)
    if b_O is not None:
        out = out + b_O
    if out_norm is not None:
        out = out_norm(out)
    return hook(out_name, out)


def _pop_tied_head(tensors, name, embedding):
    """Drop an `lm_head.weight` that a tied checkpoint may still carry; it must equal the embedding."""
    if name in tensors:
        w = tensors.pop(name)
        if embedding is not None and not torch.equal(w, embedding):
            raise ValueError(f"{name} is present but differs from the tied embedding")


def _load_strict(module, tensors):
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise KeyError(f"checkpoint mismatch: missing {missing[:8]}, unexpected {extra[:8]}")
    with torch.no_grad():
        for k, v in tensors.items():
            if tuple(v.shape) != tuple(own[k].shape):
                raise ValueError(f"{k}: shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
            own[k].copy_(v.to(own[k].dtype))


# ---------------------------------------------------------------------------
# GPT-2
#   config: n_embd, n_head, n_layer, n_positions, n_inner, vocab_size,
#           activation_function, layer_norm_epsilon, scale_attn_weights,
#           scale_attn_by_inverse_layer_idx
#   Conv1D weights are stored [in, out]; the unembedding is tied to wte.
# ---------------------------------------------------------------------------


class Conv1D(nn.Module):
    """GPT-2's linear layer: y = x @ weight + bias, weight [in, out]."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class GPT2Attention(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        self.n_head, self.d = c["n_head"], c["n_embd"]
        self.d_head = self.d // self.n_head
        self.layer = layer
        self.scale = 1.0
        if c.get("scale_attn_weights", True):
            self.scale /= math.sqrt(self.d_head)
        if c.get("scale_attn_by_inverse_layer_idx", False):
            self.scale /= layer + 1
        self.c_attn = Conv1D(self.d, 3 * self.d)
        self.c_proj = Conv1D(self.d, self.d)

    def forward(self, x, hook):
        B, T, _ = x.shape
        p = f"blocks.{self.layer}.attn."
        q, k, v = self.c_attn(x).split(self.d, dim=-1)
        q = hook(p + "hook_q", q.view(B, T, self.n_head, self.d_head))
        k = hook(p + "hook_k", k.view(B, T, self.n_head, self.d_head))
        v = hook(p + "hook_v", v.view(B, T, self.n_head, self.d_head))
        W_O = self.c_proj.weight.view(self.n_head, self.d_head, self.d)
        return attention(hook, p, q, k, v, self.scale, W_O, self.c_proj.bias, f"blocks.{self.layer}.hook_attn_out")


class GPT2MLP(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        d_mlp = c.get("n_inner") or 4 * c["n_embd"]
        self.layer = layer
        self.act = activation(c.get("activation_function", "gelu_new"))
        self.c_fc = Conv1D(c["n_embd"], d_mlp)
        self.c_proj = Conv1D(d_mlp, c["n_embd"])

    def forward(self, x, hook):
        p = f"blocks.{self.layer}.mlp."
        pre = hook(p + "hook_pre", self.c_fc(x))
        post = hook(p + "hook_post", self.act(pre))
        return hook(f"blocks.{self.layer}.hook_mlp_out", self.c_proj(post))


class GPT2Block(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        eps = c.get("layer_norm_epsilon", 1e-5)
        self.layer = layer
        self.ln_1 = LayerNorm(c["n_embd"], eps)
        self.attn = GPT2Attention(c, layer)
        self.ln_2 = LayerNorm(c["n_embd"], eps)
        self.mlp = GPT2MLP(c, layer)

    def forward(self, x, hook):
        b = f"blocks.{self.layer}."
        x = hook(b + "hook_resid_pre", x)
        x = hook(b + "hook_resid_mid", x + self.attn(self.ln_1(x, hook, b + "ln1"), hook))
        return hook(b + "hook_resid_post", x + self.mlp(self.ln_2(x, hook, b + "ln2"), hook))


class GPT2Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.wpe = nn.Embedding(c["n_positions"], c["n_embd"])
        self.h = nn.ModuleList(GPT2Block(c, i) for i in range(c["n_layer"]))
        self.ln_f = LayerNorm(c["n_embd"], c.get("layer_norm_epsilon", 1e-5))


class GPT2(HookedLM):
    """GPT-2 with the modern HF names (`transformer.` + ...) as its own parameter names."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        self.transformer = GPT2Body(self.config)

    def _forward(self, input_ids, hook):
        B, T = input_ids.shape
        tr = self.transformer
        tok = hook("hook_embed", tr.wte(input_ids))
        positions = torch.arange(T, device=input_ids.device)
        pos = hook("hook_pos_embed", tr.wpe(positions).unsqueeze(0).expand(B, T, -1))
        x = tok + pos
        for block in tr.h:
            x = block(x, hook)
        x = tr.ln_f(x, hook, "ln_final")
        return F.linear(x, tr.wte.weight)  # tied unembedding

    # HF layouts: "transformer." prefix (modern save, optionally with a tied lm_head.weight),
    # or no prefix (the original `gpt2` upload, with attn.bias / attn.masked_bias buffers).
    def hf_state_dict(self, prefix="transformer.", lm_head=True, buffers=False):
        out = {}
        for k, v in self.transformer.state_dict().items():
            out[prefix + k] = v.detach().clone()
        if buffers:
            n = self.config["n_positions"]
            dtype = self.transformer.wte.weight.dtype
            for i in range(self.config["n_layer"]):
                out[f"{prefix}h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=dtype)).view(1, 1, n, n)
                out[f"{prefix}h.{i}.attn.masked_bias"] = torch.tensor(-1e4, dtype=dtype)
        if lm_head:
            out["lm_head.weight"] = self.transformer.wte.weight.detach().clone()
        return out

    def load_hf_state_dict(self, tensors):
        t = {}
        for k, v in tensors.items():
            if k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"):
                continue  # causal-mask buffers, not parameters
            t[k[len("transformer."):] if k.startswith("transformer.") else k] = v
        _pop_tied_head(t, "lm_head.weight", t.get("wte.weight"))
        _load_strict(self.transformer, t)
        return self


# ---------------------------------------------------------------------------
# GPT-NeoX / Pythia
#   config: hidden_size, num_attention_heads, num_hidden_layers, intermediate_size,
#           rotary_pct (partial_rotary_factor), rotary_emb_base (rope_theta),
#           use_parallel_residual, hidden_act, layer_norm_eps, attention_bias,
#           max_position_embeddings, vocab_size
#   query_key_value output is laid out per head: [H, (q | k | v) x d_head].
#   The unembedding (embed_out) is untied.
# ---------------------------------------------------------------------------


def _neox_rotary(c):
    pct = c.get("rotary_pct", c.get("partial_rotary_factor", 0.25))
    base = c.get("rotary_emb_base", c.get("rope_theta", 10000.0))
    return pct, float(base)


class NeoXAttention(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        self.d = c["hidden_size"]
        self.n_head = c["num_attention_heads"]
        self.d_head = self.d // self.n_head
        pct, self.base = _neox_rotary(c)
        self.rot_dims = int(self.d_head * pct)
        self.layer = layer
        bias = c.get("attention_bias", True)
        self.query_key_value = nn.Linear(self.d, 3 * self.d, bias=bias)
        self.dense = nn.Linear(self.d, self.d, bias=bias)

    def forward(self, x, hook):
        B, T, _ = x.shape
        p = f"blocks.{self.layer}.attn."
        dh = self.d_head
        qkv = self.query_key_value(x).view(B, T, self.n_head, 3 * dh)
        q = hook(p + "hook_q", qkv[..., :dh])
        k = hook(p + "hook_k", qkv[..., dh : 2 * dh])
        v = hook(p + "hook_v", qkv[..., 2 * dh :])
        cos, sin = rotary_cos_sin(T, self.rot_dims, self.base, x.dtype, x.device)
        q = hook(p + "hook_rot_q", apply_rotary(q, cos, sin))
        k = hook(p + "hook_rot_k", apply_rotary(k, cos, sin))
        W_O = self.dense.weight.t().reshape(self.n_head, dh, self.d)
        return attention(hook, p, q, k, v, 1.0 / math.sqrt(dh), W_O, self.dense.bias, f"blocks.{self.layer}.hook_attn_out")


class NeoXMLP(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        self.layer = layer
        self.act = activation(c.get("hidden_act", "gelu"))
        self.dense_h_to_4h = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.dense_4h_to_h = nn.Linear(c["intermediate_size"], c["hidden_size"])

    def forward(self, x, hook):
        p = f"blocks.{self.layer}.mlp."
        pre = hook(p + "hook_pre", self.dense_h_to_4h(x))
        post = hook(p + "hook_post", self.act(pre))
        return hook(f"blocks.{self.layer}.hook_mlp_out", self.dense_4h_to_h(post))


class NeoXLayer(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        eps = c.get("layer_norm_eps", 1e-5)
        self.layer = layer
        self.parallel = c.get("use_parallel_residual", True)
        self.input_layernorm = LayerNorm(c["hidden_size"], eps)
        self.post_attention_layernorm = LayerNorm(c["hidden_size"], eps)
        self.attention = NeoXAttention(c, layer)
        self.mlp = NeoXMLP(c, layer)

    def forward(self, x, hook):
        b = f"blocks.{self.layer}."
        x = hook(b + "hook_resid_pre", x)
        attn_out = self.attention(self.input_layernorm(x, hook, b + "ln1"), hook)
        if self.parallel:  # x + attn(ln1(x)) + mlp(ln2(x)); no resid_mid
            mlp_out = self.mlp(self.post_attention_layernorm(x, hook, b + "ln2"), hook)
            return hook(b + "hook_resid_post", x + attn_out + mlp_out)
        x = hook(b + "hook_resid_mid", x + attn_out)
        mlp_out = self.mlp(self.post_attention_layernorm(x, hook, b + "ln2"), hook)
        return hook(b + "hook_resid_post", x + mlp_out)


class NeoXBody(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_in = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(NeoXLayer(c, i) for i in range(c["num_hidden_layers"]))
        self.final_layer_norm = LayerNorm(c["hidden_size"], c.get("layer_norm_eps", 1e-5))


class GPTNeoX(HookedLM):
    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        if self.config.get("rope_scaling"):
            raise NotImplementedError("rope_scaling")
        if self.config.get("tie_word_embeddings", False):
            raise NotImplementedError("tied GPT-NeoX embeddings")
        self.gpt_neox = NeoXBody(self.config)
        self.embed_out = nn.Linear(self.config["hidden_size"], self.config["vocab_size"], bias=False)

    def _forward(self, input_ids, hook):
        x = hook("hook_embed", self.gpt_neox.embed_in(input_ids))
        for layer in self.gpt_neox.layers:
            x = layer(x, hook)
        x = self.gpt_neox.final_layer_norm(x, hook, "ln_final")
        return self.embed_out(x)

    def hf_state_dict(self, buffers=False):
        out = {k: v.detach().clone() for k, v in self.state_dict().items()}
        if buffers:  # what older checkpoints carry besides parameters
            n = self.config["max_position_embeddings"]
            att = self.gpt_neox.layers[0].attention
            inv_freq = 1.0 / (att.base ** (torch.arange(0, att.rot_dims, 2, dtype=torch.float32) / att.rot_dims))
            for i in range(self.config["num_hidden_layers"]):
                p = f"gpt_neox.layers.{i}.attention."
                out[p + "bias"] = torch.tril(torch.ones(n, n, dtype=torch.bool)).view(1, 1, n, n)
                out[p + "masked_bias"] = torch.tensor(-1e9, dtype=torch.float32)
                out[p + "rotary_emb.inv_freq"] = inv_freq.clone()
        return out

    def load_hf_state_dict(self, tensors):
        skip = (".attention.bias", ".attention.masked_bias", ".rotary_emb.inv_freq")
        _load_strict(self, {k: v for k, v in tensors.items() if not k.endswith(skip)})
        return self


# ---------------------------------------------------------------------------
# Llama-style decoders: Llama (2 and 3.x), Qwen2, Qwen3, Mistral, Phi-3
#   config: hidden_size, num_attention_heads, num_key_value_heads, head_dim,
#           num_hidden_layers, intermediate_size, rms_norm_eps, rope_theta,
#           rope_scaling (linear, llama3), hidden_act, tie_word_embeddings,
#           attention_bias, mlp_bias, sliding_window, use_sliding_window, max_window_layers
#   RMSNorm, rotate-half rotary on the whole head, SwiGLU MLP, grouped-query attention.
#   Qwen2: q/k/v projections have biases, o_proj has none.
#   Qwen3: RMSNorm over each head of q and k (plain weight) before rotary; no biases.
#   Mistral, Phi-3: `sliding_window` on every layer. Qwen2/Qwen3: only with
#     use_sliding_window, on layers >= max_window_layers.
#   Phi-3: fused self_attn.qkv_proj ([q | k | v] rows) and mlp.gate_up_proj ([gate | up] rows).
# ---------------------------------------------------------------------------


def layer_windows(c):
    """The sliding window of each layer (None: full causal attention), as HF's layer_types say."""
    mt, L, W = c["model_type"], c["num_hidden_layers"], c.get("sliding_window")
    if mt in ("mistral", "phi3"):
        return [W] * L
    if mt in ("qwen2", "qwen3"):  # the config drops sliding_window unless use_sliding_window
        if not c.get("use_sliding_window", False) or W is None:
            return [None] * L
        if c.get("layer_types"):
            return [W if t == "sliding_attention" else None for t in c["layer_types"]]
        first = c.get("max_window_layers", L)
        return [W if i >= first else None for i in range(L)]
    return [None] * L


class LlamaAttention(nn.Module):
    def __init__(self, c, layer, drop=()):
        super().__init__()
        d = c["hidden_size"]
        mt = c["model_type"]
        self.layer = layer
        self.n_head = c["num_attention_heads"]
        self.n_kv = c.get("num_key_value_heads") or self.n_head
        self.d_head = c.get("head_dim") or d // self.n_head
        self.base = float(c.get("rope_theta", 10000.0))
        self.rope_scaling = c.get("rope_scaling")
        self.window = layer_windows(c)[layer]
        self.fused = mt == "phi3"
        qkv_bias = mt == "qwen2" or c.get("attention_bias", False)
        o_bias = mt != "qwen2" and c.get("attention_bias", False)
        nq, nkv = self.n_head * self.d_head, self.n_kv * self.d_head
        if self.fused:
            self.qkv_proj = nn.Linear(d, nq + 2 * nkv, bias=False)
        else:
            self.q_proj = nn.Linear(d, nq, bias=qkv_bias)
            self.k_proj = nn.Linear(d, nkv, bias=qkv_bias)
            self.v_proj = nn.Linear(d, nkv, bias=qkv_bias)
        self.o_proj = nn.Linear(nq, d, bias=o_bias)
        self.qk_norm = mt == "qwen3"
        self.apply_qk_norm = "qk_norm" not in drop
        if self.qk_norm:
            eps = c.get("rms_norm_eps", 1e-6)
            self.q_norm = RMSNorm(self.d_head, eps)  # per head: hook_scale [B,T,H,1]
            self.k_norm = RMSNorm(self.d_head, eps)

    def forward(self, x, hook):
        B, T, d = x.shape
        p = f"blocks.{self.layer}.attn."
        dh = self.d_head
        if self.fused:
            q, k, v = self.qkv_proj(x).split([self.n_head * dh, self.n_kv * dh, self.n_kv * dh], dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = hook(p + "hook_q", q.view(B, T, self.n_head, dh))
        k = hook(p + "hook_k", k.view(B, T, self.n_kv, dh))
        v = hook(p + "hook_v", v.view(B, T, self.n_kv, dh))
        if self.qk_norm and self.apply_qk_norm:
            q = self.q_norm(q, hook, p + "q_norm")
            k = self.k_norm(k, hook, p + "k_norm")
        cos, sin = rotary_cos_sin(T, dh, self.base, x.dtype, x.device, self.rope_scaling)
        q = hook(p + "hook_rot_q", apply_rotary(q, cos, sin))
        k = hook(p + "hook_rot_k", apply_rotary(k, cos, sin))
        W_O = self.o_proj.weight.t().reshape(self.n_head, dh, d)
        out_name = f"blocks.{self.layer}.hook_attn_out"
        return attention(hook, p, q, k, v, 1.0 / math.sqrt(dh), W_O, self.o_proj.bias, out_name,
                         self.n_head // self.n_kv, window=self.window)


class LlamaMLP(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        d, d_mlp, bias = c["hidden_size"], c["intermediate_size"], c.get("mlp_bias", False)
        self.layer = layer
        self.act = activation(c.get("hidden_act", "silu"))
        self.fused = c["model_type"] == "phi3"
        if self.fused:
            self.gate_up_proj = nn.Linear(d, 2 * d_mlp, bias=False)
        else:
            self.gate_proj = nn.Linear(d, d_mlp, bias=bias)
            self.up_proj = nn.Linear(d, d_mlp, bias=bias)
        self.down_proj = nn.Linear(d_mlp, d, bias=bias and not self.fused)

    def forward(self, x, hook):
        p = f"blocks.{self.layer}.mlp."
        if self.fused:
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        else:
            gate, up = self.gate_proj(x), self.up_proj(x)
        gate = hook(p + "hook_pre", gate)
        up = hook(p + "hook_pre_linear", up)
        post = hook(p + "hook_post", self.act(gate) * up)
        return hook(f"blocks.{self.layer}.hook_mlp_out", self.down_proj(post))


class LlamaLayer(nn.Module):
    def __init__(self, c, layer, drop=()):
        super().__init__()
        eps = c.get("rms_norm_eps", 1e-6)
        self.layer = layer
        self.input_layernorm = RMSNorm(c["hidden_size"], eps)
        self.self_attn = LlamaAttention(c, layer, drop)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], eps)
        self.mlp = LlamaMLP(c, layer)

    def forward(self, x, hook):
        b = f"blocks.{self.layer}."
        x = hook(b + "hook_resid_pre", x)
        x = hook(b + "hook_resid_mid", x + self.self_attn(self.input_layernorm(x, hook, b + "ln1"), hook))
        return hook(b + "hook_resid_post", x + self.mlp(self.post_attention_layernorm(x, hook, b + "ln2"), hook))


class LlamaBody(nn.Module):
    def __init__(self, c, drop=()):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(LlamaLayer(c, i, drop) for i in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c.get("rms_norm_eps", 1e-6))


class Llama(HookedLM):
    """Llama-style decoder (model_type llama, qwen2, qwen3, mistral or phi3).
    drop=("qk_norm",) skips Qwen3's q/k norms (what an engine without them computes)."""

    def __init__(self, config, drop=()):
        super().__init__()
        self.config = dict(config)
        if set(drop) - {"qk_norm"}:
            raise ValueError(f"unknown pieces {sorted(drop)}")
        scaling = self.config.get("rope_scaling")
        if scaling:
            rope_inv_freq(2, 1.0, scaling)  # refuses the kinds not written here
        if self.config["model_type"] == "phi3" and self.config.get("partial_rotary_factor", 1.0) != 1.0:
            raise NotImplementedError("phi3 partial_rotary_factor")
        self.tied = bool(self.config.get("tie_word_embeddings", False))
        self.model = LlamaBody(self.config, drop)
        if not self.tied:
            self.lm_head = nn.Linear(self.config["hidden_size"], self.config["vocab_size"], bias=False)

    def unembed_weight(self):
        return self.model.embed_tokens.weight if self.tied else self.lm_head.weight

    def _forward(self, input_ids, hook):
        x = hook("hook_embed", self.model.embed_tokens(input_ids))
        for layer in self.model.layers:
            x = layer(x, hook)
        x = self.model.norm(x, hook, "ln_final")
        return F.linear(x, self.unembed_weight())

    def hf_state_dict(self, lm_head=False):
        out = {k: v.detach().clone() for k, v in self.state_dict().items()}
        if self.tied and lm_head:
            out["lm_head.weight"] = self.model.embed_tokens.weight.detach().clone()
        return out

    def load_hf_state_dict(self, tensors):
        t = {k: v for k, v in tensors.items() if not k.endswith(".rotary_emb.inv_freq")}
        if self.tied:
            _pop_tied_head(t, "lm_head.weight", t.get("model.embed_tokens.weight"))
        _load_strict(self, t)
        return self


# ---------------------------------------------------------------------------

FAMILIES = {"gpt2": GPT2, "gpt_neox": GPTNeoX, "llama": Llama, "qwen2": Llama, "qwen3": Llama, "mistral": Llama,
            "phi3": Llama}


def build_model(config):
    """A reference model for a Hugging Face config dict (weights uninitialised: load or init them)."""
    from gemma import GEMMA_TYPES, Gemma  # gemma.py builds on the pieces above

    model_type = config.get("model_type")
    if model_type in GEMMA_TYPES:
        return Gemma(config)
    if model_type not in FAMILIES:
        raise NotImplementedError(f"model_type {model_type!r}")
    return FAMILIES[model_type](config)
