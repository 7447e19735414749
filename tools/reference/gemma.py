"""Gemma, Gemma 2 and Gemma 3 (text) with TransformerLens-style hooks, from Hugging Face's
modeling_gemma.py, modeling_gemma2.py and modeling_gemma3.py.

    config: hidden_size, num_attention_heads, num_key_value_heads, head_dim (explicit),
            num_hidden_layers, intermediate_size, rms_norm_eps, rope_theta, hidden_activation,
            vocab_size, attention_bias; Gemma 2/3: query_pre_attn_scalar,
            attn_logit_softcapping, final_logit_softcapping, sliding_window, layer_types;
            Gemma 3: sliding_window_pattern, rope_local_base_freq, rope_scaling (global layers)

What sets the family apart, as the modeling files have it:
- RMSNorm multiplies by (1 + w) (models.RMSNorm with offset 1) and computes in f32 (the reference computes in float64);
  hook_normalized is x / scale before the weight, as for every RMSNorm here.
- The embedding is multiplied by sqrt(hidden_size) rounded to the dtype the model runs in
  (f32 for Loupe: the factor is rounded to f32, whatever the file's dtype); hook_embed is the
  scaled embedding. The unembedding is tied to it.
- GeGLU: down(gelu_tanh(gate(x)) * up(x)). Gemma 1 ignores `hidden_act` and uses
  `hidden_activation`, tanh GELU when that is missing.
- Gemma 2/3: scores scale by query_pre_attn_scalar^-0.5; Gemma 2 soft-caps the scores,
  cap * tanh(s / cap), before the mask (Gemma 3's attention ignores attn_logit_softcapping);
  both soft-cap the logits when final_logit_softcapping is set.
  Four norms per block: input_layernorm (ln1), post_attention_layernorm (ln1_post, after
  attention, before the residual add), pre_feedforward_layernorm (ln2),
  post_feedforward_layernorm (ln2_post). hook_attn_out / hook_mlp_out are after the post-norm.
- Sliding windows of `sliding_window` keys (the current one included) on the layers
  `layer_types` calls sliding; without layer_types, Gemma 2 slides on even layers and
  Gemma 3 on every layer but each sliding_window_pattern-th.
- Gemma 3: q_norm / k_norm ((1 + w) RMSNorm over each head) before rotary; sliding layers
  rotate with rope_local_base_freq and no scaling, full layers with rope_theta and rope_scaling.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from models import RMSNorm, HookedLM, _load_strict, _pop_tied_head, activation, apply_rotary, attention, rotary_cos_sin

GEMMA_TYPES = ("gemma", "gemma2", "gemma3_text")


def f32_round(x):
    """A Python float rounded to float32, as HF's cast of the embedding scale to the run dtype."""
    return float(torch.tensor(x, dtype=torch.float32))


def gemma_layer_types(c):
    """"sliding_attention" or "full_attention" for each layer, as HF's configs set them."""
    mt, L = c["model_type"], c["num_hidden_layers"]
    if mt == "gemma":
        return ["full_attention"] * L
    if c.get("layer_types"):
        return list(c["layer_types"])
    if mt == "gemma2":
        return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(L)]
    pattern = c.get("sliding_window_pattern", c.get("_sliding_window_pattern", 6))
    return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(L)]


class GemmaAttention(nn.Module):
    def __init__(self, c, layer, pieces):
        super().__init__()
        d = c["hidden_size"]
        mt = c["model_type"]
        self.layer = layer
        self.n_head = c["num_attention_heads"]
        self.n_kv = c.get("num_key_value_heads") or self.n_head
        self.d_head = c.get("head_dim") or d // self.n_head
        sliding = gemma_layer_types(c)[layer] == "sliding_attention"
        self.window = c["sliding_window"] if sliding and pieces["window"] else None
        if mt == "gemma":
            self.scale = 1.0 / math.sqrt(self.d_head)
        else:
            self.scale = float(c["query_pre_attn_scalar"]) ** -0.5
        # Gemma 3 keeps attn_logit_softcapping in its config but its attention never applies it
        self.softcap = c.get("attn_logit_softcapping") if mt == "gemma2" and pieces["attn_softcap"] else None
        if mt == "gemma3_text" and sliding and pieces["local_base"]:
            self.base, self.rope_scaling = float(c.get("rope_local_base_freq", 10000.0)), None
        else:
            self.base = float(c.get("rope_theta", 10000.0))
            self.rope_scaling = c.get("rope_scaling") if pieces["rope_scaling"] else None
        bias = c.get("attention_bias", False)
        self.q_proj = nn.Linear(d, self.n_head * self.d_head, bias=bias)
        self.k_proj = nn.Linear(d, self.n_kv * self.d_head, bias=bias)
        self.v_proj = nn.Linear(d, self.n_kv * self.d_head, bias=bias)
        self.o_proj = nn.Linear(self.n_head * self.d_head, d, bias=bias)
        self.qk_norm = mt == "gemma3_text"
        if self.qk_norm:
            eps = c.get("rms_norm_eps", 1e-6)
            self.q_norm = RMSNorm(self.d_head, eps, pieces["offset"])
            self.k_norm = RMSNorm(self.d_head, eps, pieces["offset"])
        self.pieces = pieces

    def forward(self, x, hook, out_norm):
        B, T, d = x.shape
        p = f"blocks.{self.layer}.attn."
        dh = self.d_head
        q = hook(p + "hook_q", self.q_proj(x).view(B, T, self.n_head, dh))
        k = hook(p + "hook_k", self.k_proj(x).view(B, T, self.n_kv, dh))
        v = hook(p + "hook_v", self.v_proj(x).view(B, T, self.n_kv, dh))
        if self.qk_norm and self.pieces["qk_norm"]:
            q = self.q_norm(q, hook, p + "q_norm")
            k = self.k_norm(k, hook, p + "k_norm")
        cos, sin = rotary_cos_sin(T, dh, self.base, x.dtype, x.device, self.rope_scaling)
        q = hook(p + "hook_rot_q", apply_rotary(q, cos, sin))
        k = hook(p + "hook_rot_k", apply_rotary(k, cos, sin))
        W_O = self.o_proj.weight.t().reshape(self.n_head, dh, d)
        return attention(hook, p, q, k, v, self.scale, W_O, self.o_proj.bias, f"blocks.{self.layer}.hook_attn_out",
                         self.n_head // self.n_kv, softcap=self.softcap, window=self.window, out_norm=out_norm)


class GemmaMLP(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        d, d_mlp = c["hidden_size"], c["intermediate_size"]
        self.layer = layer
        self.act = activation(c.get("hidden_activation") or "gelu_pytorch_tanh")
        self.gate_proj = nn.Linear(d, d_mlp, bias=False)
        self.up_proj = nn.Linear(d, d_mlp, bias=False)
        self.down_proj = nn.Linear(d_mlp, d, bias=False)

    def forward(self, x, hook):
        p = f"blocks.{self.layer}.mlp."
        gate = hook(p + "hook_pre", self.gate_proj(x))
        up = hook(p + "hook_pre_linear", self.up_proj(x))
        post = hook(p + "hook_post", self.act(gate) * up)
        return self.down_proj(post)


class GemmaLayer(nn.Module):
    def __init__(self, c, layer, pieces):
        super().__init__()
        d, eps = c["hidden_size"], c.get("rms_norm_eps", 1e-6)
        self.layer = layer
        self.sandwich = c["model_type"] != "gemma"
        off = pieces["offset"]
        self.input_layernorm = RMSNorm(d, eps, off)
        self.self_attn = GemmaAttention(c, layer, pieces)
        self.post_attention_layernorm = RMSNorm(d, eps, off)
        if self.sandwich:
            self.pre_feedforward_layernorm = RMSNorm(d, eps, off)
            self.post_feedforward_layernorm = RMSNorm(d, eps, off)
        self.mlp = GemmaMLP(c, layer)
        self.post_norms = self.sandwich and pieces["post_norms"]

    def forward(self, x, hook):
        b = f"blocks.{self.layer}."
        x = hook(b + "hook_resid_pre", x)
        if not self.sandwich:  # Gemma 1: post_attention_layernorm is the pre-MLP norm, as in Llama
            x = hook(b + "hook_resid_mid", x + self.self_attn(self.input_layernorm(x, hook, b + "ln1"), hook, None))
            mlp = self.mlp(self.post_attention_layernorm(x, hook, b + "ln2"), hook)
            return hook(b + "hook_resid_post", x + hook(b + "hook_mlp_out", mlp))
        ln1_post = (lambda a: self.post_attention_layernorm(a, hook, b + "ln1_post")) if self.post_norms else None
        x = hook(b + "hook_resid_mid", x + self.self_attn(self.input_layernorm(x, hook, b + "ln1"), hook, ln1_post))
        mlp = self.mlp(self.pre_feedforward_layernorm(x, hook, b + "ln2"), hook)
        if self.post_norms:
            mlp = self.post_feedforward_layernorm(mlp, hook, b + "ln2_post")
        return hook(b + "hook_resid_post", x + hook(b + "hook_mlp_out", mlp))


class GemmaBody(nn.Module):
    def __init__(self, c, pieces):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(GemmaLayer(c, i, pieces) for i in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c.get("rms_norm_eps", 1e-6), pieces["offset"])


# The family-specific pieces; make_fixtures.py turns each off in turn to show it matters.
PIECES = ("attn_softcap", "final_softcap", "window", "one_plus_w", "qk_norm", "rope_scaling", "local_base",
          "embed_scale", "post_norms")


class Gemma(HookedLM):
    """Gemma 1/2/3 (model_type gemma, gemma2 or gemma3_text); `drop` turns pieces off (see PIECES)."""

    def __init__(self, config, drop=()):
        super().__init__()
        self.config = dict(config)
        c = self.config
        unknown = set(drop) - set(PIECES)
        if unknown:
            raise ValueError(f"unknown pieces {sorted(unknown)}")
        self.pieces = {p: p not in drop for p in PIECES}
        self.pieces["offset"] = 1.0 if self.pieces["one_plus_w"] else 0.0
        if c.get("use_bidirectional_attention"):
            raise NotImplementedError("use_bidirectional_attention")
        if c["model_type"] == "gemma3_text" and c.get("rope_scaling"):
            kind = c["rope_scaling"].get("rope_type", c["rope_scaling"].get("type"))
            if kind != "linear":
                raise NotImplementedError(f"gemma3 rope_scaling {kind!r}")
        if not c.get("tie_word_embeddings", True):
            raise NotImplementedError("untied Gemma embeddings")
        self.model = GemmaBody(c, self.pieces)
        self.embed_scale = f32_round(math.sqrt(c["hidden_size"])) if self.pieces["embed_scale"] else 1.0
        self.final_softcap = c.get("final_logit_softcapping") if self.pieces["final_softcap"] else None

    def unembed_weight(self):
        return self.model.embed_tokens.weight

    def final_norm_multiplier(self):
        """What ln_final.hook_normalized is multiplied by on its way to the unembedding."""
        return self.model.norm.offset + self.model.norm.weight

    def _forward(self, input_ids, hook):
        x = hook("hook_embed", self.model.embed_tokens(input_ids) * self.embed_scale)
        for layer in self.model.layers:
            x = layer(x, hook)
        x = self.model.norm(x, hook, "ln_final")
        logits = F.linear(x, self.unembed_weight())
        if self.final_softcap is not None:
            logits = self.final_softcap * torch.tanh(logits / self.final_softcap)
        return logits

    def hf_state_dict(self, lm_head=False):
        out = {k: v.detach().clone() for k, v in self.state_dict().items()}
        if lm_head:
            out["lm_head.weight"] = self.model.embed_tokens.weight.detach().clone()
        return out

    def load_hf_state_dict(self, tensors):
        t = dict(tensors)
        _pop_tied_head(t, "lm_head.weight", t.get("model.embed_tokens.weight"))
        _load_strict(self, t)
        return self

