"""Write the engine's reference fixtures into test/fixtures/<name>/.

Each fixture is a real Hugging Face checkpoint folder (config.json, weights in
safetensors, possibly sharded, tokenizer.json + tokenizer_config.json) of a tiny
random model, plus the expected values:

    reference.safetensors   caseN.input_ids (I64 [1,T]), caseN.logits, caseN.<hook> for every hook,
                            editN.<hook>.mul / editN.<hook>.add (the edits), editN.logits,
                            editN.<output hook>; all floats F32
    reference.json          {"cases": [...], "hooks": [...], "edits": [...], ...} (see README.md); the
                            second-wave families' also have "pins" (pin.<piece>.<value> tensors)

Expected values are computed in float64 from the weights exactly as stored
(f16 / bf16 weights are rounded first, then upcast) and then cast to float32.
Rerunnable and seeded:  python3 tools/reference/make_fixtures.py [--out DIR] [--only NAME ...]
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import family_configs  # noqa: E402
from bpe_tokenizer import ByteBPE, train  # noqa: E402
from family_tokenizers import byte_level, node_encode, sentencepiece  # noqa: E402
from gemma import GEMMA_TYPES, Gemma, gemma_layer_types  # noqa: E402
from hf_folder import read_weights, write_weights  # noqa: E402
from models import Llama, build_model, layer_windows, visible_keys  # noqa: E402
from safetensors_io import save_file  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOLERANCE = 1e-4
VOCAB = 300
N_MERGES = 40
EOT = "<|endoftext|>"
BOS = "<s>"

TRAINING_TEXT = """\
The model reads the text one token at a time. Each layer adds what it finds to the residual stream,
and the attention heads move information between the positions of the sequence.
def forward(self, input_ids):
    hidden = self.embed(input_ids)
    for layer in self.layers:
        hidden = layer(hidden)
    return self.unembed(self.norm(hidden))
for (let i = 0; i < tokens.length; i++) { total += weights[i] * tokens[i]; }
In the beginning the weights are random; then the loss goes down and the heads start to attend.
const result = await model.run([ids], { hooks: 'all' });
"""

CASE_TEXTS = {
    "case0": "The heads read the residual stream and write to it.",
    "case1": "def forward(self, x): return x",
}
CASE_LENGTHS = {"case0": 9, "case1": 5}

# ---------------------------------------------------------------------------
# The fixtures
# ---------------------------------------------------------------------------

TOKEN_IDS = {}  # filled by make_tokenizers(): EOT / BOS ids


def gpt2_config(prefix_style):
    eot = TOKEN_IDS[EOT]
    common = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": eot,
        "embd_pdrop": 0.1,
        "eos_token_id": eot,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": 64,
        "n_embd": 32,
        "n_head": 4,
        "n_layer": 2,
        "n_positions": 64,
        "resid_pdrop": 0.1,
        "vocab_size": VOCAB,
    }
    if prefix_style:  # a modern save: every key spelled out, an explicit n_inner
        common.update({
            "n_inner": 64,
            "reorder_and_upcast_attn": False,
            "scale_attn_by_inverse_layer_idx": False,
            "scale_attn_weights": True,
            "summary_activation": None,
            "summary_first_dropout": 0.1,
            "summary_proj_to_labels": True,
            "summary_type": "cls_index",
            "summary_use_proj": True,
            "torch_dtype": "float32",
            "use_cache": True,
        })
    else:  # like the original upload: no n_inner (-> 4 * n_embd), defaults left out
        common.update({"torch_dtype": "float16"})
    return common


def neox_config(parallel):
    eot = TOKEN_IDS[EOT]
    c = {
        "architectures": ["GPTNeoXForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": eot,
        "classifier_dropout": 0.1,
        "eos_token_id": eot,
        "hidden_act": "gelu",
        "hidden_dropout": 0.0,
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 128 if parallel else 96,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 64,
        "model_type": "gpt_neox",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "use_cache": True,
        "use_parallel_residual": parallel,
        "vocab_size": VOCAB,
    }
    if parallel:  # Pythia's spelling
        c.update({"rotary_pct": 0.25, "rotary_emb_base": 10000})
    else:  # the newer spelling of the base, and a base other than the default
        c.update({"rotary_pct": 0.5, "rope_theta": 1000.0})
    return c


def llama_config():
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": TOKEN_IDS[BOS],
        "eos_token_id": TOKEN_IDS[EOT],
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 96,
        "max_position_embeddings": 64,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 8,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def qwen2_config():
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": TOKEN_IDS[BOS],
        "eos_token_id": TOKEN_IDS[EOT],
        "hidden_act": "silu",
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "max_position_embeddings": 64,
        "max_window_layers": 2,
        "model_type": "qwen2",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
    }


# name -> how to make it. store: dtype in the weight files; export: kwargs of hf_state_dict;
# shards: None (one model.safetensors) or a list of key-prefix groups, one shard each.
FIXTURES = {
    "gpt2": dict(config=lambda: gpt2_config(True), store=torch.float32, export=dict(prefix="transformer.", lm_head=True)),
    "gpt2-noprefix": dict(config=lambda: gpt2_config(False), store=torch.float16,
                          export=dict(prefix="", lm_head=False, buffers=True)),
    "neox-parallel": dict(config=lambda: neox_config(True), store=torch.float32, export=dict(buffers=True)),
    "neox-sequential": dict(config=lambda: neox_config(False), store=torch.float32, export=dict(),
                            shards=[("gpt_neox.embed_in.", "gpt_neox.layers.0."),
                                    ("gpt_neox.layers.1.", "gpt_neox.final_layer_norm.", "embed_out.")]),
    "llama-gqa": dict(config=llama_config, store=torch.bfloat16, export=dict(), bos=True),
    "qwen2": dict(config=qwen2_config, store=torch.float32, export=dict(), bos=True),
}

# The second wave: one fixture per family, each with its family's tokenizer (family_tokenizers.py),
# texts longer than every window, and pins: a piece of the family turned off, either by a config
# field (what an engine that ignored the field would compute; the engine is run on the changed
# config too) or inside the reference (`drop`: what an engine without the piece would compute).
FAMILY_CASE_LENGTHS = {"case0": 12, "case1": 7}
FAMILY_FIXTURES = {
    "qwen3": dict(config=family_configs.qwen3, store=torch.bfloat16, tokenizer="qwen",
                  pins=[("qk_norm", dict(drop="qk_norm"))]),
    "qwen2.5": dict(config=family_configs.qwen25, store=torch.bfloat16, tokenizer="qwen",
                    pins=[("use_sliding_window", dict(config={"use_sliding_window": True}))]),
    "llama3": dict(config=family_configs.llama3, store=torch.bfloat16, tokenizer="llama3",
                   pins=[("rope_scaling", dict(config={"rope_scaling": None}))]),
    "llama-linear": dict(config=family_configs.llama_linear, store=torch.float16, tokenizer="llama2",
                         pins=[("rope_scaling", dict(config={"rope_scaling": None}))]),
    "mistral": dict(config=family_configs.mistral, store=torch.bfloat16, tokenizer="llama2",
                    pins=[("window", dict(config={"sliding_window": None}))]),
    "phi3": dict(config=family_configs.phi3, store=torch.bfloat16, tokenizer="llama2", add_bos=False,
                 pins=[("window", dict(config={"sliding_window": None}))]),
    "gemma": dict(config=family_configs.gemma, store=torch.bfloat16, tokenizer="gemma",
                  pins=[("one_plus_w", dict(drop="one_plus_w")), ("embed_scale", dict(drop="embed_scale")),
                        ("hidden_activation", dict(config={"hidden_activation": "gelu"}))]),
    "gemma2": dict(config=family_configs.gemma2, store=torch.float32, tokenizer="gemma",
                   pins=[("attn_softcap", dict(config={"attn_logit_softcapping": None})),
                         ("final_softcap", dict(config={"final_logit_softcapping": None})),
                         ("window", dict(drop="window")),
                         ("query_pre_attn_scalar", dict(config={"query_pre_attn_scalar": 16})),
                         ("one_plus_w", dict(drop="one_plus_w")), ("embed_scale", dict(drop="embed_scale")),
                         ("post_norms", dict(drop="post_norms"))]),
    "gemma3": dict(config=family_configs.gemma3, store=torch.bfloat16, tokenizer="gemma",
                   pins=[("qk_norm", dict(drop="qk_norm")),
                         ("local_base", dict(config={"rope_local_base_freq": 1000000.0})),
                         ("window", dict(drop="window")), ("one_plus_w", dict(drop="one_plus_w")),
                         ("layer_types", dict(config={"layer_types": ["sliding_attention", "full_attention",
                                                                       "sliding_attention"]}))]),
    "gemma3-linear": dict(config=family_configs.gemma3_linear, store=torch.bfloat16, tokenizer="gemma",
                          pins=[("rope_scaling", dict(config={"rope_scaling": None})),
                                ("sliding_window_pattern", dict(config={"sliding_window_pattern": 6})),
                                ("local_base", dict(config={"rope_local_base_freq": 1000000.0}))]),
}

# ---------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------


def init_weights(model, gen, store):
    """Non-trivial random weights, rounded to the storage dtype (the model itself stays float64).
    Norm weights sit near 1 as multipliers: near 1 for plain RMSNorm/LayerNorm, near 0 for Gemma's 1 + w."""
    center = 0.0 if model.config["model_type"] in GEMMA_TYPES else 1.0
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            is_norm = any(s in name for s in ("ln_", "layernorm", "layer_norm", ".norm.", "q_norm", "k_norm")) \
                or name.startswith("model.norm")
            if is_norm and leaf == "weight":
                v = center + 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
            elif leaf == "bias":
                v = 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
            elif p.dim() == 2 and ("wte" in name or "wpe" in name or "embed_in" in name or "embed_tokens" in name):
                v = 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
            else:
                v = 0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.copy_(v.to(store).to(torch.float64))


def to_storage(tensors, store):
    """The model's float64 tensors in the storage dtype; buffers made in their own dtype stay as they are."""
    return {k: (v.to(store) if v.dtype == torch.float64 else v) for k, v in tensors.items()}


# ---------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------


def make_tokenizers():
    merges = train(TRAINING_TEXT, N_MERGES)
    plain = ByteBPE(merges, [EOT])
    with_bos = ByteBPE(merges, [EOT, BOS])
    TOKEN_IDS[EOT] = with_bos.specials[EOT]
    TOKEN_IDS[BOS] = with_bos.specials[BOS]
    assert plain.specials[EOT] == TOKEN_IDS[EOT]
    assert len(with_bos.vocab) <= VOCAB
    return plain, with_bos


def write_tokenizer(folder, tok, bos):
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok.to_json(bos=BOS if bos else None), f, ensure_ascii=False, indent=1)
        f.write("\n")
    if bos:
        cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": BOS, "eos_token": EOT,
               "clean_up_tokenization_spaces": False, "model_max_length": 64,
               "tokenizer_class": "PreTrainedTokenizerFast"}
    else:
        cfg = {"add_prefix_space": False, "bos_token": EOT, "eos_token": EOT, "unk_token": EOT,
               "clean_up_tokenization_spaces": False, "model_max_length": 64, "tokenizer_class": "GPT2Tokenizer"}
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def case_ids(tok, bos):
    out = {}
    for name, text in CASE_TEXTS.items():
        ids = ([tok.specials[BOS]] if bos else []) + tok.encode(text)
        assert len(ids) >= CASE_LENGTHS[name], (name, len(ids))
        out[name] = ids[: CASE_LENGTHS[name]]
    return out


def node_check(folder, tok, bos):
    """Load tokenizer.json with the tokenizers library (node) and compare its ids with ours."""
    script = (
        "const {Tokenizer}=require('tokenizers');"
        "const t=Tokenizer.fromFile(process.argv[1]);"
        "const texts=JSON.parse(process.argv[2]);"
        "Promise.all(texts.map(s=>t.encode(s))).then(es=>console.log(JSON.stringify(es.map(e=>e.getIds()))));"
    )
    texts = list(CASE_TEXTS.values()) + ["héllo 世界 🙂", TRAINING_TEXT]
    try:
        res = subprocess.run(["node", "-e", script, os.path.join(folder, "tokenizer.json"), json.dumps(texts)],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"  (tokenizer not checked in node: {e})")
        return
    if res.returncode != 0:
        if "Cannot find module" in res.stderr:
            print("  (tokenizer not checked in node: the tokenizers package is not installed)")
            return
        raise RuntimeError(f"node could not load {folder}/tokenizer.json:\n{res.stderr}")
    got = json.loads(res.stdout)
    prefix = [tok.specials[BOS]] if bos else []
    for text, ids in zip(texts[:2] + texts[3:], got[:2] + got[3:]):  # ASCII texts: our split is exact
        assert ids == prefix + tok.encode(text), (text, ids, prefix + tok.encode(text))
    assert all(0 <= i < len(tok.vocab) for ids in got for i in ids)


# ---------------------------------------------------------------------------
# Expected values and self-checks
# ---------------------------------------------------------------------------


def hook_shapes(config, T):
    """The shape every hook must have for one text of length T (from the config alone)."""
    mt = config["model_type"]
    if mt == "gpt2":
        d, H, L = config["n_embd"], config["n_head"], config["n_layer"]
        Hkv, dh, d_mlp = H, d // H, config.get("n_inner") or 4 * d
    else:
        d, H, L = config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]
        Hkv = config.get("num_key_value_heads") or H
        dh = config.get("head_dim") or d // H
        d_mlp = config["intermediate_size"]
    rotary = mt != "gpt2"
    gated = mt not in ("gpt2", "gpt_neox")
    parallel = mt == "gpt_neox" and config.get("use_parallel_residual", True)
    qk_norm = mt in ("qwen3", "gemma3_text")
    post_norms = mt in ("gemma2", "gemma3_text")
    s = {"hook_embed": [1, T, d]}
    if mt == "gpt2":
        s["hook_pos_embed"] = [1, T, d]
    for l in range(L):
        b = f"blocks.{l}."
        s[b + "hook_resid_pre"] = [1, T, d]
        s[b + "ln1.hook_scale"] = [1, T, 1]
        s[b + "ln1.hook_normalized"] = [1, T, d]
        s[b + "attn.hook_q"] = [1, T, H, dh]
        s[b + "attn.hook_k"] = [1, T, Hkv, dh]
        s[b + "attn.hook_v"] = [1, T, Hkv, dh]
        if qk_norm:
            for n, heads in (("q_norm", H), ("k_norm", Hkv)):
                s[b + f"attn.{n}.hook_scale"] = [1, T, heads, 1]
                s[b + f"attn.{n}.hook_normalized"] = [1, T, heads, dh]
        if rotary:
            s[b + "attn.hook_rot_q"] = [1, T, H, dh]
            s[b + "attn.hook_rot_k"] = [1, T, Hkv, dh]
        s[b + "attn.hook_attn_scores"] = [1, H, T, T]
        s[b + "attn.hook_pattern"] = [1, H, T, T]
        s[b + "attn.hook_z"] = [1, T, H, dh]
        s[b + "attn.hook_result"] = [1, T, H, d]
        if post_norms:
            s[b + "ln1_post.hook_scale"] = [1, T, 1]
            s[b + "ln1_post.hook_normalized"] = [1, T, d]
        s[b + "hook_attn_out"] = [1, T, d]
        if not parallel:
            s[b + "hook_resid_mid"] = [1, T, d]
        s[b + "ln2.hook_scale"] = [1, T, 1]
        s[b + "ln2.hook_normalized"] = [1, T, d]
        s[b + "mlp.hook_pre"] = [1, T, d_mlp]
        if gated:
            s[b + "mlp.hook_pre_linear"] = [1, T, d_mlp]
        s[b + "mlp.hook_post"] = [1, T, d_mlp]
        if post_norms:
            s[b + "ln2_post.hook_scale"] = [1, T, 1]
            s[b + "ln2_post.hook_normalized"] = [1, T, d]
        s[b + "hook_mlp_out"] = [1, T, d]
        s[b + "hook_resid_post"] = [1, T, d]
    s["ln_final.hook_scale"] = [1, T, 1]
    s["ln_final.hook_normalized"] = [1, T, d]
    return s


def close(a, b, tol=1e-9, what=""):
    a, b = a.double(), b.double()
    assert a.shape == b.shape, f"{what}: shapes {tuple(a.shape)} vs {tuple(b.shape)}"
    fin = torch.isfinite(b)
    assert torch.equal(torch.isfinite(a), fin), f"{what}: infinities differ"
    assert torch.equal(a[~fin], b[~fin]), f"{what}: infinities differ"
    diff = (a[fin] - b[fin]).abs().max().item() if fin.any() else 0.0
    assert diff <= tol, f"{what}: max abs diff {diff}"


def unembed_and_final_norm(model):
    """(W_U [vocab, d], what multiplies the final normalized value (RMSNorm: w, Gemma: 1 + w; None for
    LayerNorm), the final logit soft-cap or None)."""
    c = model.config
    mt = c["model_type"]
    if mt == "gpt2":
        return model.transformer.wte.weight, None, None
    if mt == "gpt_neox":
        return model.embed_out.weight, None, None
    if mt in GEMMA_TYPES:
        return model.unembed_weight(), 1.0 + model.model.norm.weight, c.get("final_logit_softcapping")
    return model.unembed_weight(), model.model.norm.weight, None


def attention_params(model, l):
    """(scale, W_O [H,dh,d], b_O or None, soft-cap or None, window or None) of layer l, from the config
    and the HF-named weights (not from the attention modules' own settings)."""
    c = model.config
    mt = c["model_type"]
    if mt == "gpt2":
        d, H = c["n_embd"], c["n_head"]
        a = model.transformer.h[l].attn
        return a.scale, a.c_proj.weight.view(H, d // H, d), a.c_proj.bias, None, None
    if mt == "gpt_neox":
        d, H = c["hidden_size"], c["num_attention_heads"]
        a = model.gpt_neox.layers[l].attention
        return 1 / math.sqrt(d // H), a.dense.weight.t().reshape(H, d // H, d), a.dense.bias, None, None
    a = model.model.layers[l].self_attn
    W_O = a.o_proj.weight.t().reshape(a.n_head, a.d_head, -1)
    if mt in GEMMA_TYPES:
        scale = 1 / math.sqrt(c["head_dim"]) if mt == "gemma" else c["query_pre_attn_scalar"] ** -0.5
        sliding = gemma_layer_types(c)[l] == "sliding_attention"
        cap = c.get("attn_logit_softcapping") if mt == "gemma2" else None
        return scale, W_O, a.o_proj.bias, cap, c["sliding_window"] if sliding else None
    return 1 / math.sqrt(a.d_head), W_O, a.o_proj.bias, None, layer_windows(c)[l]


def window_mask(T, window):
    """Which keys each query sees, by a loop (an independent check of models.visible_keys)."""
    m = torch.zeros(T, T, dtype=torch.bool)
    for i in range(T):
        for j in range(T):
            m[i, j] = j <= i and (window is None or j > i - window)
    return m


def self_check(model, ids, logits, cache):
    """Consistency checks that would catch a wrong hook or a wrong wiring."""
    c = model.config
    mt = c["model_type"]
    L = len(hook_layers(model))
    T = ids.shape[1]
    # shapes, and exactly the expected set of hooks
    shapes = hook_shapes(c, T)
    assert set(cache) == set(shapes), (set(cache) ^ set(shapes))
    for k, s in shapes.items():
        assert list(cache[k].shape) == s, (k, list(cache[k].shape), s)
    # the plain forward (no hooks) gives the same logits
    close(model(ids), logits, 1e-10, "plain vs hooked logits")
    # logits = final normalized (times the RMSNorm weight) @ W_U^T, soft-capped where the family does
    W_U, w_norm, final_cap = unembed_and_final_norm(model)
    x = cache["ln_final.hook_normalized"]
    want = (x * w_norm if w_norm is not None else x) @ W_U.t()
    if final_cap is not None:
        want = final_cap * torch.tanh(want / final_cap)
        assert logits.abs().max() < final_cap
    close(logits, want, 1e-10, "logits from ln_final")
    if mt in GEMMA_TYPES:  # the embedding scale, rounded to f32 as HF rounds it
        emb = model.model.embed_tokens.weight[ids[0]].unsqueeze(0)
        scale32 = torch.tensor(c["hidden_size"] ** 0.5, dtype=torch.float32).item()
        close(cache["hook_embed"], emb * scale32, 1e-12, "embed scale")
    # normalisation hooks recomputed from their inputs
    for l in range(L):
        b = f"blocks.{l}."
        parallel = b + "hook_resid_mid" not in cache
        ln2_in = cache[b + "hook_resid_pre"] if parallel else cache[b + "hook_resid_mid"]
        for ln, inp in (("ln1", cache[b + "hook_resid_pre"]), ("ln2", ln2_in)):
            close(cache[b + ln + ".hook_scale"], norm_scale(inp, c), 1e-12, b + ln)
        # q/k norms: per head, before rotary (hook_q/hook_k are the projections)
        for n, raw in (("q_norm", "hook_q"), ("k_norm", "hook_k")):
            if b + f"attn.{n}.hook_scale" in cache:
                close(cache[b + f"attn.{n}.hook_scale"], norm_scale(cache[b + "attn." + raw], c), 1e-12, b + n)
                close(cache[b + f"attn.{n}.hook_normalized"],
                      cache[b + "attn." + raw] / cache[b + f"attn.{n}.hook_scale"], 1e-12, b + n)
        # attention: scores per head from the (rotated) q and k, by a loop over heads
        scale, W_O, b_O, cap, window = attention_params(model, l)
        q = cache.get(b + "attn.hook_rot_q", cache[b + "attn.hook_q"])
        k = cache.get(b + "attn.hook_rot_k", cache[b + "attn.hook_k"])
        v = cache[b + "attn.hook_v"]
        H, Hkv = q.shape[2], k.shape[2]
        visible = window_mask(T, window)
        assert torch.equal(visible, visible_keys(T, window))
        if window is not None and T > window:  # the window really cuts something off
            assert torch.isinf(cache[b + "attn.hook_attn_scores"][0, :, T - 1, 0]).all()
        for h in range(H):
            kv = h // (H // Hkv)
            s = (q[0, :, h] @ k[0, :, kv].t()) * scale
            if cap is not None:
                s = cap * torch.tanh(s / cap)
            s = s.masked_fill(~visible, float("-inf"))
            close(cache[b + "attn.hook_attn_scores"][0, h], s, 1e-10, f"{b} scores head {h}")
            close(cache[b + "attn.hook_z"][0, :, h], cache[b + "attn.hook_pattern"][0, h] @ v[0, :, kv], 1e-10, "z")
            close(cache[b + "attn.hook_result"][0, :, h], cache[b + "attn.hook_z"][0, :, h] @ W_O[h], 1e-10, "result")
        close(cache[b + "attn.hook_pattern"].sum(-1), torch.ones(1, H, T, dtype=torch.float64), 1e-12, "pattern rows")
        # attn_out = sum of results + b_O (Gemma 2/3: then the post-attention norm)
        out = cache[b + "attn.hook_result"].sum(2) + (b_O if b_O is not None else 0)
        if b + "ln1_post.hook_scale" in cache:
            layer = model.model.layers[l]
            close(cache[b + "ln1_post.hook_scale"], norm_scale(out, c), 1e-12, b + "ln1_post")
            out = out / cache[b + "ln1_post.hook_scale"] * (1.0 + layer.post_attention_layernorm.weight)
            mlp_out = cache[b + "ln2_post.hook_normalized"] * (1.0 + layer.post_feedforward_layernorm.weight)
            close(cache[b + "hook_mlp_out"], mlp_out, 1e-10, b + "mlp_out after ln2_post")
        close(cache[b + "hook_attn_out"], out, 1e-10, b + "attn_out")
        # rotary: position 0 is not rotated, and a rotation keeps the norm
        # (after the q/k norm where there is one: normalized times its weight, 1 + w for Gemma)
        if b + "attn.hook_rot_q" in cache:
            for x, rx, n in (("hook_q", "hook_rot_q", "q_norm"), ("hook_k", "hook_rot_k", "k_norm")):
                pre = cache[b + "attn." + x]
                if b + f"attn.{n}.hook_normalized" in cache:
                    w = getattr(model.model.layers[l].self_attn, n).weight
                    pre = cache[b + f"attn.{n}.hook_normalized"] * ((1.0 if mt in GEMMA_TYPES else 0.0) + w)
                close(cache[b + "attn." + rx][:, 0], pre[:, 0], 1e-12, "rot at 0")
                close(cache[b + "attn." + rx].norm(dim=-1), pre.norm(dim=-1), 1e-10, "rot norm")
        # the residual stream adds up
        pre = cache[b + "hook_resid_pre"]
        if parallel:
            close(cache[b + "hook_resid_post"], pre + cache[b + "hook_attn_out"] + cache[b + "hook_mlp_out"], 1e-10, "par")
        else:
            close(cache[b + "hook_resid_mid"], pre + cache[b + "hook_attn_out"], 1e-10, "mid")
            close(cache[b + "hook_resid_post"], cache[b + "hook_resid_mid"] + cache[b + "hook_mlp_out"], 1e-10, "post")
        if l + 1 < L:
            close(cache[f"blocks.{l + 1}.hook_resid_pre"], cache[b + "hook_resid_post"], 0, "resid chain")
    first = cache["hook_embed"] + cache.get("hook_pos_embed", 0)
    close(cache["blocks.0.hook_resid_pre"], first, 0, "embed sum")


def norm_scale(x, c):
    """hook_scale of a norm fed x: LayerNorm centres first, RMSNorm does not."""
    if c["model_type"] in ("gpt2", "gpt_neox"):
        x = x - x.mean(-1, keepdim=True)
        eps = c.get("layer_norm_epsilon", c.get("layer_norm_eps", 1e-5))
    else:
        eps = c.get("rms_norm_eps", 1e-6)
    return (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()


def hook_layers(model):
    if hasattr(model, "transformer"):
        return model.transformer.h
    if hasattr(model, "gpt_neox"):
        return model.gpt_neox.layers
    return model.model.layers


def batch_checks(model, cases):
    """A batch equals its rows alone, and (causality) a prefix gives the prefix's values."""
    long_ids, short_ids = cases["case0"], cases["case1"]
    T = short_ids.shape[1]
    batch = torch.cat([long_ids[:, :T], short_ids], dim=0)
    _, cb = model.run_with_cache(batch)
    _, c_long = model.run_with_cache(long_ids)
    _, c_short = model.run_with_cache(short_ids)
    for name, v in cb.items():
        close(v[1:2], c_short[name], 1e-10, f"batch row 1 {name}")
        full = c_long[name]
        if "attn_scores" in name or "pattern" in name:
            full = full[:, :, :T, :T]
        else:
            full = full[:, :T]
        close(v[0:1], full, 1e-10, f"prefix {name}")


def make_edits(config, T, gen):
    """edit0: zero head 1 at blocks.0.attn.hook_z + steer blocks.1.hook_resid_pre at position 3;
    edit1: halve blocks.0.mlp.hook_post + add 0.1 to ln_final.hook_scale."""
    H = config.get("n_head") or config["num_attention_heads"]
    d = config.get("n_embd") or config["hidden_size"]
    head_mask = torch.ones(1, 1, H, 1)
    head_mask[0, 0, 1, 0] = 0.0
    steer = torch.zeros(1, T, d)
    steer[0, 3] = torch.randn(d, generator=gen, dtype=torch.float64).float()
    return [
        ("edit0", "case0", {"blocks.0.attn.hook_z": (head_mask, None), "blocks.1.hook_resid_pre": (None, steer)}),
        ("edit1", "case0", {"blocks.0.mlp.hook_post": (torch.full((1, 1, 1), 0.5), None),
                            "ln_final.hook_scale": (None, torch.full((1, T, 1), 0.1))}),
    ]


EDIT_OUTPUTS = ["logits", "blocks.1.hook_resid_post"]


def check_edits(model, name, ids, edits, logits, cache, base_cache):
    if name == "edit0":
        z = cache["blocks.0.attn.hook_z"]
        assert torch.all(z[:, :, 1] == 0) and torch.equal(z[:, :, 0], base_cache["blocks.0.attn.hook_z"][:, :, 0])
        assert torch.all(cache["blocks.0.attn.hook_result"][:, :, 1] == 0)
        steer = edits["blocks.1.hook_resid_pre"][1].double()
        close(cache["blocks.1.hook_resid_pre"], cache["blocks.0.hook_resid_post"] + steer, 1e-12, "steer")
        # positions before 3 only see the ablation, not the steering: check against an ablation-only run
        only = {"blocks.0.attn.hook_z": edits["blocks.0.attn.hook_z"]}
        _, c2 = model.run_with_cache(ids, only)
        close(cache["blocks.1.hook_resid_post"][:, :3], c2["blocks.1.hook_resid_post"][:, :3], 1e-12, "causal steer")
        assert (cache["blocks.1.hook_resid_post"][:, 3] - c2["blocks.1.hook_resid_post"][:, 3]).abs().max() > 1e-3
    else:
        close(cache["blocks.0.mlp.hook_post"], 0.5 * base_cache["blocks.0.mlp.hook_post"], 1e-12, "halved")
        last = cache[f"blocks.{len(hook_layers(model)) - 1}.hook_resid_post"]
        close(cache["ln_final.hook_scale"], norm_scale(last, model.config) + edits["ln_final.hook_scale"][1].double(), 1e-12, "scale + 0.1")
    # the edited values are what the cache holds, and the plain edit path agrees
    close(model.run_with_edits(ids, edits), logits, 1e-12, "run_with_edits")


# ---------------------------------------------------------------------------


FAMILY_MERGES = 150


def family_tokenizer(spec):
    """The fixture's tokenizer in its family's configuration (family_tokenizers.py)."""
    style = spec["tokenizer"]
    if style in ("qwen", "llama3"):
        return byte_level(style, TRAINING_TEXT, FAMILY_MERGES)
    return sentencepiece(style, TRAINING_TEXT, FAMILY_MERGES, add_bos=spec.get("add_bos", True))


def family_case_ids(folder, tok):
    """Case ids as the family's tokenizer gives them (BOS as tokenizer_config.json and the template
    have it), cut to the case lengths."""
    add_bos = tok.config.get("add_bos_token")
    ids = node_encode(REPO, folder, list(CASE_TEXTS.values()), add_special_tokens=add_bos is not False)
    out = {}
    for (name, length), got in zip(FAMILY_CASE_LENGTHS.items(), ids):
        assert len(got) >= length, (name, len(got))
        assert all(0 <= i < tok.vocab_size for i in got)
        out[name] = got[:length]
    return out


def make_fixture(name, spec, out_root, tokenizers):
    folder = os.path.join(out_root, name)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    family = "tokenizer" in spec
    bos = spec.get("bos", False)
    if family:
        tok = family_tokenizer(spec)
        config = spec["config"](tok.specials)
        assert tok.vocab_size <= config["vocab_size"]
    else:
        tok = tokenizers[1] if bos else tokenizers[0]
        config = spec["config"]()
    store = spec["store"]
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    check_rope_bands(config)

    # 1. random weights, rounded to the storage dtype, written in the HF layout
    model = build_model(config).double()
    init_weights(model, gen, store)
    tensors = to_storage(model.hf_state_dict(**spec.get("export", {})), store)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    files = write_weights(folder, tensors, spec.get("shards"))
    if family:
        tok.write(folder)
    else:
        write_tokenizer(folder, tok, bos)
        node_check(folder, tok, bos)

    # 2. load the folder back, independently of the model above, and compare
    with open(os.path.join(folder, "config.json")) as f:
        loaded = build_model(json.load(f)).double()
    on_disk = read_weights(folder)
    assert set(on_disk) == set(tensors)
    for k, v in on_disk.items():
        assert v.dtype == tensors[k].dtype and torch.equal(v, tensors[k]), k
    loaded.load_hf_state_dict(on_disk)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    model = loaded.eval()

    # 3. cases: every hook, in float64; then the edits
    ref = {}
    cases = family_case_ids(folder, tok) if family else case_ids(tok, bos)
    ids_by_case = {c: torch.tensor([ids], dtype=torch.long) for c, ids in cases.items()}
    caches = {}
    hooks = None
    with torch.no_grad():
        for c, ids in ids_by_case.items():
            logits, cache = model.run_with_cache(ids)
            self_check(model, ids, logits, cache)
            hooks = hooks or list(cache)
            assert list(cache) == hooks
            caches[c] = cache
            ref[f"{c}.input_ids"] = ids
            ref[f"{c}.logits"] = logits.float()
            for h in hooks:
                ref[f"{c}.{h}"] = cache[h].float()
        batch_checks(model, ids_by_case)

        edits_json = []
        for ename, case, edits in make_edits(config, ids_by_case["case0"].shape[1], gen):
            ids = ids_by_case[case]
            logits, cache = model.run_with_cache(ids, edits)
            check_edits(model, ename, ids, edits, logits, cache, caches[case])
            for h, (mul, add) in edits.items():
                if mul is not None:
                    ref[f"{ename}.{h}.mul"] = mul.float()
                if add is not None:
                    ref[f"{ename}.{h}.add"] = add.float()
            ref[f"{ename}.logits"] = logits.float()
            for o in EDIT_OUTPUTS[1:]:
                ref[f"{ename}.{o}"] = cache[o].float()
            edits_json.append({
                "name": ename,
                "case": case,
                "hooks": list(edits),
                "ops": {h: {"mul": mul is not None, "add": add is not None} for h, (mul, add) in edits.items()},
                "outputs": EDIT_OUTPUTS,
            })

        pins_json = [make_pin(model, config, tensors, pin, how, ids_by_case["case0"], ref) for pin, how in
                     spec.get("pins", [])]

    save_file(ref, os.path.join(folder, "reference.safetensors"), {"format": "pt"})
    index = {
        "description": "Expected values from the independent PyTorch reference (tools/reference); "
                       "computed in float64 from the stored weights, saved as float32.",
        "model_type": config["model_type"],
        "weights_dtype": str(store).replace("torch.", ""),
        "weight_files": files,
        "tolerance": TOLERANCE,
        "cases": [{"name": c, "length": int(ids.shape[1]), "input_ids": ids[0].tolist(), "text": CASE_TEXTS[c]}
                  for c, ids in ids_by_case.items()],
        "hooks": hooks,
        "edits": edits_json,
    }
    if family:
        index["pins"] = pins_json
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in os.listdir(folder))
    print(f"{name}: {len(hooks)} hooks, {len(ref)} reference tensors, {size / 1024:.0f} KiB")
    return size


def check_rope_bands(config):
    """Llama 3's rope scaling treats three bands of wavelengths differently: the fixture must have
    frequencies in each (kept, interpolated, divided by the factor), or a band would go untested."""
    scaling = config.get("rope_scaling") or {}
    if scaling.get("rope_type") != "llama3":
        return
    dh = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    inv_freq = 1.0 / (config["rope_theta"] ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
    wavelen = 2 * math.pi / inv_freq
    old = scaling["original_max_position_embeddings"]
    low, high = old / scaling["low_freq_factor"], old / scaling["high_freq_factor"]
    bands = [(wavelen < high).sum().item(), ((wavelen >= high) & (wavelen <= low)).sum().item(),
             (wavelen > low).sum().item()]
    assert all(n > 0 for n in bands), f"llama3 rope bands (high, medium, low frequency): {bands}"


PIN_FACTOR = 10  # a pin moves the value it names by at least this many tolerances


def make_pin(model, config, tensors, pin, how, ids, ref):
    """One family-specific piece turned off: by a changed config field (the model rebuilt from it, same
    weights) or by `drop` inside the reference. The pin names the value it moves most (the logits or a
    hook of case0, whichever moves furthest) and writes it as pin.<piece>.<value>."""
    if "config" in how:
        other = build_model(dict(config, **how["config"])).double()
    else:
        cls = Gemma if config["model_type"] in GEMMA_TYPES else Llama
        other = cls(config, drop=(how["drop"],)).double()
    other.load_hf_state_dict({k: v.clone() for k, v in tensors.items()})
    logits, cache = other.run_with_cache(ids)
    values = {"logits": logits, **cache}
    moved = {}
    for name, v in values.items():
        key = f"case0.{name}"
        if key in ref and tuple(ref[key].shape) == tuple(v.shape):
            base = ref[key].double()
            fin = torch.isfinite(base) & torch.isfinite(v)
            if not torch.equal(torch.isfinite(base), torch.isfinite(v)):
                moved[name] = math.inf  # a mask moved
            elif fin.any():
                moved[name] = (v[fin] - base[fin]).abs().max().item()
    output = max(moved, key=lambda n: (moved[n], n == "logits"))
    diff = moved[output]
    assert diff > PIN_FACTOR * TOLERANCE, f"pin {pin}: turning it off moves no value by more than {diff}"
    key = f"pin.{pin}.{output}"
    ref[key] = values[output].float()
    entry = {"piece": pin, "case": "case0", "output": output, "tensor": key,
             "max_abs_diff": None if math.isinf(diff) else round(diff, 6),
             "logits_max_abs_diff": round(moved["logits"], 6)}
    if "config" in how:
        entry["config"] = how["config"]
    else:
        entry["drop"] = how["drop"]
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "test", "fixtures"))
    ap.add_argument("--only", nargs="*", help="fixture names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    tokenizers = make_tokenizers()
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for name, spec in {**FIXTURES, **FAMILY_FIXTURES}.items():
        if args.only and name not in args.only:
            continue
        total += make_fixture(name, spec, args.out, tokenizers)
    print(f"total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
