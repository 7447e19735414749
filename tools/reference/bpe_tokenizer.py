"""A tiny byte-level BPE tokenizer, trained and written as a Hugging Face `tokenizer.json`.

Byte-level BPE as GPT-2 does it: every byte has a printable stand-in character
(GPT-2's bytes_to_unicode table, ids 0..255 in that table's order), text is
pre-split by GPT-2's regex, and merges are learned by counting adjacent pairs.
`encode` here is only used to pick realistic input ids for the fixtures and to
cross-check the JSON against the tokenizers library; it follows the GPT-2 split
for ASCII text (Python's `re` has no \\p{L}, so letters/digits are approximated).
"""

import collections
import re


def bytes_to_unicode():
    """GPT-2's byte -> printable character table, in GPT-2's id order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


BYTE_TABLE = bytes_to_unicode()
BYTE_TO_CHAR = dict(BYTE_TABLE)

# GPT-2's pre-tokenizer regex, with \p{L} -> [^\W\d_] and \p{N} -> \d.
SPLIT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def _words(text):
    return ["".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8")) for piece in SPLIT.findall(text)]


def train(text, n_merges):
    """Learn up to `n_merges` merges (most frequent pair first; ties broken by the pair's text)."""
    counts = collections.Counter(_words(text))
    words = {w: list(w) for w in counts}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, n in counts.items():
            sym = words[w]
            for a, b in zip(sym, sym[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        for w in words:
            words[w] = _merge(words[w], best)
    return merges


def _merge(sym, pair):
    out, i = [], 0
    while i < len(sym):
        if i + 1 < len(sym) and (sym[i], sym[i + 1]) == pair:
            out.append(sym[i] + sym[i + 1])
            i += 2
        else:
            out.append(sym[i])
            i += 1
    return out


class ByteBPE:
    def __init__(self, merges, specials):
        self.merges = list(merges)
        self.vocab = {ch: i for i, (_, ch) in enumerate(BYTE_TABLE)}
        for a, b in self.merges:
            if a + b not in self.vocab:
                self.vocab[a + b] = len(self.vocab)
        self.specials = {}
        for s in specials:
            self.vocab[s] = len(self.vocab)
            self.specials[s] = self.vocab[s]
        self.ranks = {p: i for i, p in enumerate(self.merges)}

    def encode(self, text):
        ids = []
        for w in _words(text):
            sym = list(w)
            while len(sym) > 1:
                pairs = [(self.ranks.get(p, 1 << 30), p) for p in zip(sym, sym[1:])]
                rank, pair = min(pairs)
                if rank == 1 << 30:
                    break
                sym = _merge(sym, pair)
            ids.extend(self.vocab[s] for s in sym)
        return ids

    def to_json(self, bos=None):
        """The tokenizer.json dict; with `bos`, a TemplateProcessing post-processor prepends it."""
        added = [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for s, i in self.specials.items()
        ]
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        if bos is None:
            post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
        else:
            bid = self.specials[bos]
            post = {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [
                    {"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}},
                ],
                "special_tokens": {bos: {"id": bos, "ids": [bid], "tokens": [bos]}},
            }
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": byte_level,
            "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": "",
                "end_of_word_suffix": "",
                "fuse_unk": False,
                "byte_fallback": False,
                "vocab": self.vocab,
                "merges": [f"{a} {b}" for a, b in self.merges],
            },
        }
