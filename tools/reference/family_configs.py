"""Configs of the second-wave fixtures: each shaped like a real checkpoint's config.json, shrunk.

The real model each one copies is named beside it; sizes shrink (d_model 48-64, 2-3 layers,
vocabulary 512, 32 positions), everything else keeps the real model's keys and kinds of values.
Windows shrink to 4-5 keys so the 12-token case crosses them; Llama 3's
original_max_position_embeddings shrinks with the positions so all three bands of its rope
scaling appear among 8 frequencies; Gemma 2's soft-caps and query_pre_attn_scalar are set so
that each changes the numbers by far more than the tolerance (see the pins in reference.json).
"""

VOCAB = 512
POSITIONS = 32


def _common(**kw):
    c = {"attention_dropout": 0.0, "initializer_range": 0.02, "max_position_embeddings": POSITIONS,
         "use_cache": True, "vocab_size": VOCAB}
    c.update(kw)
    return dict(sorted(c.items()))


def gemma(tok):
    """google/gemma-2b: hidden_act says "gelu" but Gemma runs hidden_activation, tanh GELU when unset."""
    return _common(
        architectures=["GemmaForCausalLM"], attention_bias=False, bos_token_id=tok["<bos>"],
        eos_token_id=tok["<eos>"], pad_token_id=tok["<pad>"], head_dim=16, hidden_act="gelu", hidden_size=48,
        intermediate_size=96, model_type="gemma", num_attention_heads=4, num_hidden_layers=2,
        num_key_value_heads=1, rms_norm_eps=1e-06, rope_scaling=None, rope_theta=10000.0, torch_dtype="bfloat16")


def gemma2(tok):
    """google/gemma-2-2b (stored in float32 on the hub)."""
    return _common(
        architectures=["Gemma2ForCausalLM"], attention_bias=False, attn_logit_softcapping=50.0,
        bos_token_id=tok["<bos>"], cache_implementation="hybrid", eos_token_id=tok["<eos>"],
        final_logit_softcapping=30.0, head_dim=16, hidden_act="gelu_pytorch_tanh",
        hidden_activation="gelu_pytorch_tanh", hidden_size=64, intermediate_size=128, model_type="gemma2",
        num_attention_heads=4, num_hidden_layers=2, num_key_value_heads=2, pad_token_id=tok["<pad>"],
        query_pre_attn_scalar=24, rms_norm_eps=1e-06, rope_theta=10000.0, sliding_window=4,
        torch_dtype="float32")


def gemma3(tok):
    """google/gemma-3-270m: layer_types spelled out (five local, one global there; two and one here)."""
    return _common(
        architectures=["Gemma3ForCausalLM"], _sliding_window_pattern=3, attention_bias=False,
        attn_logit_softcapping=None, bos_token_id=tok["<bos>"], eos_token_id=tok["<eos>"],
        final_logit_softcapping=None, head_dim=16, hidden_activation="gelu_pytorch_tanh", hidden_size=64,
        intermediate_size=128, layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        model_type="gemma3_text", num_attention_heads=4, num_hidden_layers=3, num_key_value_heads=1,
        pad_token_id=tok["<pad>"], query_pre_attn_scalar=16, rms_norm_eps=1e-06, rope_local_base_freq=10000.0,
        rope_scaling=None, rope_theta=1000000.0, sliding_window=4, torch_dtype="bfloat16",
        use_bidirectional_attention=False)


def gemma3_linear(tok):
    """gemma-3-4b's text config: no layer_types (sliding_window_pattern decides), linear rope_scaling
    on the global layers."""
    return _common(
        architectures=["Gemma3ForCausalLM"], attention_bias=False, attn_logit_softcapping=None,
        bos_token_id=tok["<bos>"], eos_token_id=tok["<eos>"], final_logit_softcapping=None, head_dim=16,
        hidden_activation="gelu_pytorch_tanh", hidden_size=64, intermediate_size=128, model_type="gemma3_text",
        num_attention_heads=4, num_hidden_layers=2, num_key_value_heads=2, pad_token_id=tok["<pad>"],
        query_pre_attn_scalar=16, rms_norm_eps=1e-06, rope_local_base_freq=10000.0,
        rope_scaling={"factor": 8.0, "rope_type": "linear"}, rope_theta=1000000.0, sliding_window=5,
        sliding_window_pattern=2, torch_dtype="bfloat16")


def qwen3(tok):
    """Qwen/Qwen3-0.6B: heads x head_dim (8 x 16) is not hidden_size (64), as there (16 x 128 vs 1024)."""
    return _common(
        architectures=["Qwen3ForCausalLM"], attention_bias=False, bos_token_id=tok["<|endoftext|>"],
        eos_token_id=tok["<|im_end|>"], head_dim=16, hidden_act="silu", hidden_size=64, intermediate_size=96,
        max_window_layers=2, model_type="qwen3", num_attention_heads=8, num_hidden_layers=2,
        num_key_value_heads=4, rms_norm_eps=1e-06, rope_scaling=None, rope_theta=1000000.0, sliding_window=None,
        tie_word_embeddings=True, torch_dtype="bfloat16", use_sliding_window=False)


def qwen25(tok):
    """Qwen/Qwen2.5-0.5B: sliding_window set, use_sliding_window false (so no window), max_window_layers."""
    return _common(
        architectures=["Qwen2ForCausalLM"], bos_token_id=tok["<|endoftext|>"], eos_token_id=tok["<|endoftext|>"],
        hidden_act="silu", hidden_size=64, intermediate_size=96, max_window_layers=1, model_type="qwen2",
        num_attention_heads=4, num_hidden_layers=2, num_key_value_heads=2, rms_norm_eps=1e-06, rope_theta=1000000.0,
        sliding_window=4, tie_word_embeddings=True, torch_dtype="bfloat16", use_mrope=False, use_sliding_window=False)


def llama3(tok):
    """meta-llama/Llama-3.2-1B: llama3 rope scaling, tied embeddings, explicit head_dim."""
    return _common(
        architectures=["LlamaForCausalLM"], attention_bias=False, bos_token_id=tok["<|begin_of_text|>"],
        eos_token_id=tok["<|end_of_text|>"], head_dim=16, hidden_act="silu", hidden_size=64, intermediate_size=128,
        mlp_bias=False, model_type="llama", num_attention_heads=4, num_hidden_layers=2, num_key_value_heads=2,
        pretraining_tp=1, rms_norm_eps=1e-05,
        rope_scaling={"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                      "original_max_position_embeddings": 64, "rope_type": "llama3"},
        rope_theta=500000.0, tie_word_embeddings=True, torch_dtype="bfloat16")


def llama_linear(tok):
    """A Llama 2 with linear rope scaling, as the long-context fine-tunes (e.g. vicuna-7b-v1.5-16k) ship it:
    the older spelling {"type": "linear"}, float16."""
    return _common(
        architectures=["LlamaForCausalLM"], bos_token_id=tok["<s>"], eos_token_id=tok["</s>"], hidden_act="silu",
        hidden_size=64, intermediate_size=128, model_type="llama", num_attention_heads=4, num_hidden_layers=2,
        num_key_value_heads=4, pad_token_id=0, pretraining_tp=1, rms_norm_eps=1e-05,
        rope_scaling={"factor": 4.0, "type": "linear"}, rope_theta=10000.0, tie_word_embeddings=False,
        torch_dtype="float16")


def mistral(tok):
    """mistralai/Mistral-7B-v0.1: sliding_window on every layer."""
    return _common(
        architectures=["MistralForCausalLM"], bos_token_id=tok["<s>"], eos_token_id=tok["</s>"], hidden_act="silu",
        hidden_size=64, intermediate_size=128, model_type="mistral", num_attention_heads=4, num_hidden_layers=2,
        num_key_value_heads=2, rms_norm_eps=1e-05, rope_theta=10000.0, sliding_window=4, tie_word_embeddings=False,
        torch_dtype="bfloat16")


def phi3(tok):
    """microsoft/Phi-3-mini-4k-instruct: fused qkv_proj and gate_up_proj, sliding_window 2047 (odd: here 5)."""
    return _common(
        architectures=["Phi3ForCausalLM"], attention_bias=False, bos_token_id=tok["<s>"],
        embd_pdrop=0.0, eos_token_id=tok["<|endoftext|>"], hidden_act="silu", hidden_size=64,
        intermediate_size=128, model_type="phi3", num_attention_heads=4, num_hidden_layers=2, num_key_value_heads=4,
        original_max_position_embeddings=POSITIONS, pad_token_id=tok["<|endoftext|>"], resid_pdrop=0.0,
        rms_norm_eps=1e-05, rope_scaling=None, rope_theta=10000.0, sliding_window=5, tie_word_embeddings=False,
        torch_dtype="bfloat16")
