"""Independent reference for HuggingFaceBpeTokenizer: encodes with a Hugging Face byte-level BPE tokenizer.json
the way the Rust `tokenizers` library does (that package is not installed here and there is no network), written
from its documented semantics, not from the C# code.

Run with Debian's /usr/bin/python3 and python3-regex (code-point regexes like Rust's; the built-in `re` lacks \\p{L}).
  encode DIR CASES OUT   CASES: one hex-encoded byte string per line; OUT: per case the ids, space separated
What it implements: non-special added tokens matched first (leftmost, then longest); special ones stay text;
pre_tokenizer ByteLevel(use_regex) / Sequence of Split(Isolated) and Digits then ByteLevel; BPE merges by rank
(lowest first, left to right); model.ignore_merges; merges as "a b" or ["a", "b"].
Invalid UTF-8 (the C# extension; Hugging Face takes str only): each byte that is not part of a valid sequence is
its single-byte token, and the valid text on either side is encoded separately.
"""
import json
import sys
import unicodedata

try:
    import regex as re
except ImportError:
    sys.stderr.write("python3-regex is missing: apt-get install -y python3-regex\n")
    sys.exit(3)

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_SYMBOL = bytes_to_unicode()


class Tokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        model = spec["model"]
        self.vocab = model["vocab"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        self.merges = merges
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.ignore_merges = bool(model.get("ignore_merges"))
        self.text_added = sorted(((t["content"], t["id"]) for t in spec.get("added_tokens") or [] if not t.get("special")), key=lambda t: -len(t[0]))
        pre = spec["pre_tokenizer"]
        parts = pre["pretokenizers"] if pre["type"] == "Sequence" else [pre]
        self.steps = []
        for p in parts:
            if p["type"] == "Split":
                pattern = p["pattern"]["Regex"] if "Regex" in p["pattern"] else re.escape(p["pattern"]["String"])
                self.steps.append(("split", re.compile(pattern)))
            elif p["type"] == "Digits":
                self.steps.append(("digits", p.get("individual_digits", False)))
            elif p["type"] == "ByteLevel":
                if p.get("use_regex", True):
                    self.steps.append(("split", re.compile(GPT2)))
            else:
                raise SystemExit(f"unsupported pre-tokenizer {p['type']}")

    def pre_tokenize(self, text):
        pieces = [text]
        for kind, arg in self.steps:
            out = []
            for piece in pieces:
                if kind == "split":
                    at = 0
                    for m in arg.finditer(piece):
                        if m.end() == m.start():
                            continue
                        if m.start() > at:
                            out.append(piece[at:m.start()])
                        out.append(m.group())
                        at = m.end()
                    if at < len(piece):
                        out.append(piece[at:])
                else:
                    run = ""
                    for ch in piece:
                        digit = unicodedata.category(ch) in ("Nd", "Nl", "No")
                        if run and (digit != run_digit or (digit and arg)):
                            out.append(run)
                            run = ""
                        run += ch
                        run_digit = digit
                    if run:
                        out.append(run)
            pieces = out
        return pieces

    def bpe(self, symbols):
        word = list(symbols)
        while len(word) > 1:
            ranked = [(self.ranks[(a, b)], i) for i, (a, b) in enumerate(zip(word, word[1:])) if (a, b) in self.ranks]
            if not ranked:
                break
            rank = min(ranked)[0]
            first, second = self.merges[rank]
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode_text(self, text, ids):
        # leftmost occurrence of any non-special added token, the longest at the same position
        while self.text_added:
            best = None
            for content, token_id in self.text_added:
                at = text.find(content)
                if at >= 0 and (best is None or at < best[0]):
                    best = (at, content, token_id)
            if best is None:
                break
            at, content, token_id = best
            self.encode_pieces(text[:at], ids)
            ids.append(token_id)
            text = text[at + len(content):]
        self.encode_pieces(text, ids)

    def encode_pieces(self, text, ids):
        for piece in self.pre_tokenize(text):
            symbols = "".join(BYTE_SYMBOL[b] for b in piece.encode("utf-8"))
            if self.ignore_merges and symbols in self.vocab:
                ids.append(self.vocab[symbols])
                continue
            ids.extend(self.vocab[s] for s in self.bpe(symbols))

    def encode_bytes(self, data):
        text = data.decode("utf-8", "surrogateescape")
        ids, run = [], ""
        for ch in text:
            if "\udc80" <= ch <= "\udcff":
                self.encode_text(run, ids)
                run = ""
                ids.append(self.vocab[BYTE_SYMBOL[ord(ch) - 0xDC00]])
            else:
                run += ch
        self.encode_text(run, ids)
        return ids


def encode(directory, cases_path, out_path):
    tokenizer = Tokenizer(f"{directory}/tokenizer.json")
    with open(cases_path, encoding="ascii") as f:
        cases = [bytes.fromhex(line.rstrip("\n")) for line in f]
    with open(out_path, "w", encoding="ascii") as f:
        for case in cases:
            f.write(" ".join(map(str, tokenizer.encode_bytes(case))) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "encode":
        encode(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
