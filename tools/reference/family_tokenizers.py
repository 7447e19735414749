"""Tiny tokenizers in each family's real `tokenizer.json` configuration, for the fixtures.

The real ones cannot be downloaded here, so each is rebuilt small, with the pieces that
decide ids and offsets exactly as the family ships them:

- "qwen"  (Qwen2/Qwen3): byte-level BPE; NFC normalizer; Qwen's split regex (digits one by
  one) then ByteLevel without its own regex; ByteLevel post-processor and decoder; no BOS
  (tokenizer_config's bos_token is null); <|endoftext|>, <|im_start|>, <|im_end|>.
- "llama3" (Llama 3.x): byte-level BPE with ignore_merges; Llama 3's split regex (digits in
  threes); post-processor Sequence[ByteLevel, TemplateProcessing] that prepends
  <|begin_of_text|>; <|end_of_text|>, <|start_header_id|>, <|end_header_id|>, <|eot_id|>.
- "gemma" (Gemma 1/2/3): SentencePiece-style BPE: normalizer Replace(' ' -> '▁'), no
  pre-tokenizer (no dummy prefix), byte fallback (<0x00>..<0xFF>), unk <unk>, decoder
  Sequence[Replace('▁' -> ' '), ByteFallback, Fuse]; TemplateProcessing prepends <bos>;
  tokenizer_config add_bos_token true; <start_of_turn>, <end_of_turn>.
- "llama2" (Mistral, Phi-3): the same SentencePiece BPE with a dummy prefix
  (normalizer Sequence[Prepend('▁'), Replace]) and the decoder's Strip of it; <s> prepended
  by the template; tokenizer_config's add_bos_token decides (true for Mistral, false for
  Phi-3, whose fast tokenizer rebuilds its template from it).

Merges are learned from a few lines of text (most frequent pair first). Ids of the case
texts come from the tokenizers library itself (node), which is the implementation the
engine loads; the reference only needs realistic ids.
"""

import collections
import json
import os
import re
import subprocess

from bpe_tokenizer import BYTE_TO_CHAR

QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")

# Words for learning merges (an approximation of the split: letters, digits, other runs).
_WORDS = re.compile(r" ?[^\W\d_]+| ?\d| ?[^\s\w]+|\s+")


def _learn(words, n_merges):
    counts = collections.Counter(words)
    split = {w: list(w) for w in counts}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, n in counts.items():
            s = split[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        for w in split:
            s, out, i = split[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            split[w] = out
    return merges


def _added(content, i, special=True):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


def _template(bos):
    return {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {},  # filled with the BOS id by the caller
    }


class FamilyTokenizer:
    """A tokenizer.json + tokenizer_config.json pair; `specials` maps names to ids."""

    def __init__(self, style, tokenizer_json, tokenizer_config, specials):
        self.style = style
        self.json = tokenizer_json
        self.config = tokenizer_config
        self.specials = specials
        self.vocab_size = len(tokenizer_json["model"]["vocab"]) + sum(
            1 for t in tokenizer_json["added_tokens"] if t["content"] not in tokenizer_json["model"]["vocab"])

    def write(self, folder):
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(self.json, f, ensure_ascii=False, indent=1)
            f.write("\n")
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
            f.write("\n")


def byte_level(style, text, n_merges):
    """Qwen's or Llama 3's byte-level BPE."""
    words = ["".join(BYTE_TO_CHAR[b] for b in w.encode("utf-8")) for w in _WORDS.findall(text)]
    merges = _learn(words, n_merges)
    vocab = {}
    for b in range(256):  # byte-level BPE's base alphabet, in byte order as Qwen's and Llama 3's files have it
        vocab[BYTE_TO_CHAR[b]] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    if style == "qwen":
        names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    else:
        names = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    specials = {n: len(vocab) + i for i, n in enumerate(names)}
    split = QWEN_SPLIT if style == "qwen" else LLAMA3_SPLIT
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": style != "qwen", "use_regex": False},
    ]}
    byte_post = {"type": "ByteLevel", "add_prefix_space": style != "qwen", "trim_offsets": False,
                 "use_regex": style != "qwen"}
    if style == "qwen":
        post = byte_post
    else:
        bos = "<|begin_of_text|>"
        tmpl = _template(bos)
        tmpl["special_tokens"] = {bos: {"id": bos, "ids": [specials[bos]], "tokens": [bos]}}
        post = {"type": "Sequence", "processors": [byte_post, tmpl]}
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [_added(n, i) for n, i in specials.items()],
        "normalizer": {"type": "NFC"} if style == "qwen" else None,
        "pre_tokenizer": pre,
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": style == "llama3", "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in merges]},
    }
    if style == "qwen":
        cfg = {"add_prefix_space": False, "bos_token": None, "eos_token": "<|endoftext|>", "errors": "replace",
               "model_max_length": 64, "pad_token": "<|endoftext|>", "split_special_tokens": False,
               "tokenizer_class": "Qwen2Tokenizer", "unk_token": None, "clean_up_tokenization_spaces": False}
    else:
        cfg = {"bos_token": "<|begin_of_text|>", "clean_up_tokenization_spaces": True,
               "eos_token": "<|end_of_text|>", "model_input_names": ["input_ids", "attention_mask"],
               "model_max_length": 64, "tokenizer_class": "PreTrainedTokenizerFast"}
    return FamilyTokenizer(style, tj, cfg, specials)


def sentencepiece(style, text, n_merges, add_bos=True):
    """Gemma's SentencePiece-style BPE (style "gemma"), or Llama 2's with a dummy prefix ("llama2")."""
    if style == "gemma":
        controls = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
        bos, eos, unk = "<bos>", "<eos>", "<unk>"
    else:
        controls = ["<unk>", "<s>", "</s>"]
        bos, eos, unk = "<s>", "</s>", "<unk>"
    vocab = {c: i for i, c in enumerate(controls)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    normalized = text.replace(" ", "▁")
    if style == "llama2":
        normalized = "▁" + normalized
    # characters the vocabulary holds whole; the rest (é, emoji, ...) fall back to bytes
    for ch in sorted(set(normalized) - set("é")):
        vocab.setdefault(ch, len(vocab))
    words = re.findall(r"▁*[^▁\s]+|\s|▁+", normalized)
    merges = _learn(words, n_merges)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    specials = {c: vocab[c] for c in controls}
    added = [_added(c, vocab[c]) for c in controls]
    if style == "llama2":  # Phi-3's chat tokens sit after the vocabulary
        for i, name in enumerate(("<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>")):
            specials[name] = len(vocab) + i
            added.append(_added(name, specials[name], special=name != "<|assistant|>"))
    tmpl = _template(bos)
    tmpl["special_tokens"] = {bos: {"id": bos, "ids": [vocab[bos]], "tokens": [bos]}}
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
    decoders = [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
                {"type": "Fuse"}]
    if style == "llama2":
        normalizer = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, replace]}
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    else:
        normalizer = replace
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": None,
        "post_processor": tmpl,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    cfg = {"add_bos_token": add_bos, "add_eos_token": False, "bos_token": bos, "eos_token": eos,
           "pad_token": "<pad>" if style == "gemma" else None, "unk_token": unk,
           "clean_up_tokenization_spaces": False, "model_max_length": 64,
           "tokenizer_class": "GemmaTokenizer" if style == "gemma" else "LlamaTokenizer"}
    if style == "gemma":
        cfg["chat_template"] = ("{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
                                "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}")
    else:
        cfg["legacy"] = True
    return FamilyTokenizer(style, tj, cfg, specials)


def node_encode(repo, folder, texts, add_special_tokens):
    """Ids of each text from the tokenizers library (node), loading the folder's tokenizer.json."""
    script = (
        "const {Tokenizer}=require('tokenizers');"
        "const t=Tokenizer.fromFile(process.argv[1]);"
        "const texts=JSON.parse(process.argv[2]);const special=process.argv[3]==='1';"
        "Promise.all(texts.map(s=>t.encode(s,null,{addSpecialTokens:special})))"
        ".then(es=>console.log(JSON.stringify(es.map(e=>e.getIds()))));"
    )
    res = subprocess.run(["node", "-e", script, os.path.join(folder, "tokenizer.json"), json.dumps(texts),
                          "1" if add_special_tokens else "0"], cwd=repo, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"node could not load {folder}/tokenizer.json:\n{res.stderr}")
    return json.loads(res.stdout)
