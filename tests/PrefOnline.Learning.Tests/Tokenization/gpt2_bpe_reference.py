"""Reference for Gpt2BpeTokenizer: OpenAI's GPT-2 encoder.py algorithm, copied as literally as possible.

Run with Debian's /usr/bin/python3 and python3-regex (the `regex` module GPT-2 uses; the built-in `re`
lacks \\p{L}). Commands:
  check                              exit 0 when `regex` imports
  train CORPUS OUT_DIR MERGES        learn byte-level BPE merges on CORPUS (UTF-8 text) and write
                                     OUT_DIR/vocab.json + OUT_DIR/merges.txt in GPT-2's format
  encode DIR CASES OUT               CASES: one hex-encoded byte string per line; OUT: per case
                                     "ids|hex(utf-8 of decode(ids))" plus a last line "#seconds=S"
  classes OUT                        regex class of every code point: L, N, S (\\s), O; lower case
                                     when regex says the code point is unassigned (\\p{Cn}); X = surrogate
Invalid UTF-8 is handled by decoding with errors="surrogateescape" (each bad byte becomes a lone
surrogate, which the regex sees as [^\\s\\p{L}\\p{N}]) and encoding each piece back the same way: the
byte-exact extension of encoder.py that the C# tokenizer implements. Valid UTF-8 is unaffected.
"""
import json
import sys
import time
from collections import Counter

try:
    import regex as re
except ImportError:
    sys.stderr.write("python3-regex is missing: apt-get install -y python3-regex\n")
    sys.exit(3)

PATTERN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


# ---- encoder.py (https://github.com/openai/gpt-2/blob/master/src/encoder.py), unchanged in logic ----
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    cs = [chr(n) for n in cs]
    return dict(zip(bs, cs))


def get_pairs(word):
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


class Encoder:
    def __init__(self, encoder, bpe_merges, errors="replace"):
        self.encoder = encoder
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.errors = errors
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))
        self.cache = {}
        self.pat = PATTERN

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = get_pairs(word)
        if not pairs:
            return token
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            new_word = tuple(new_word)
            word = new_word
            if len(word) == 1:
                break
            else:
                pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        bpe_tokens = []
        for token in re.findall(self.pat, text):
            # encoder.py: token.encode('utf-8'); surrogateescape only matters for invalid input bytes.
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8", "surrogateescape"))
            bpe_tokens.extend(self.encoder[bpe_token] for bpe_token in self.bpe(token).split(" "))
        return bpe_tokens

    def decode(self, tokens):
        text = "".join([self.decoder[token] for token in tokens])
        text = bytearray([self.byte_decoder[c] for c in text]).decode("utf-8", errors=self.errors)
        return text


def get_encoder(directory):
    # Read as Hugging Face's GPT2Tokenizer does (vocab.json + merges.txt, first line "#version").
    with open(f"{directory}/vocab.json", encoding="utf-8") as f:
        encoder = json.load(f)
    with open(f"{directory}/merges.txt", encoding="utf-8") as f:
        bpe_data = f.read()
    bpe_merges = [tuple(merge_str.split()) for merge_str in bpe_data.split("\n")[1:-1]]
    return Encoder(encoder=encoder, bpe_merges=bpe_merges)


# ---- commands ----
def train(corpus_path, out_dir, merge_count):
    """Classic byte-level BPE training: most frequent adjacent pair first, ties by the smaller pair."""
    byte_encoder = bytes_to_unicode()
    with open(corpus_path, encoding="utf-8") as f:
        text = f.read()
    counts = Counter("".join(byte_encoder[b] for b in piece.encode("utf-8")) for piece in re.findall(PATTERN, text))
    words = [(tuple(w), c) for w, c in counts.items()]
    vocab = {}
    for symbol in byte_encoder.values():  # GPT-2's order: ids follow bytes_to_unicode's insertion order
        vocab[symbol] = len(vocab)
    merges = []
    for _ in range(merge_count):
        pairs = Counter()
        for word, c in words:
            for pair in zip(word, word[1:]):
                pairs[pair] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        merged = best[0] + best[1]
        if merged not in vocab:
            vocab[merged] = len(vocab)
        new_words = []
        for word, c in words:
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == best[0] and word[i + 1] == best[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words.append((tuple(out), c))
        words = new_words
    vocab["<|endoftext|>"] = len(vocab)
    with open(f"{out_dir}/vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(f"{out_dir}/merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    print(len(merges))


def encode(directory, cases_path, out_path):
    enc = get_encoder(directory)
    with open(cases_path, encoding="ascii") as f:
        cases = [bytes.fromhex(line.rstrip("\n")) for line in f]
    texts = [c.decode("utf-8", "surrogateescape") for c in cases]
    start = time.perf_counter()
    results = [enc.encode(t) for t in texts]
    seconds = time.perf_counter() - start
    with open(out_path, "w", encoding="ascii") as f:
        for ids in results:
            f.write(" ".join(map(str, ids)) + "|" + enc.decode(ids).encode("utf-8").hex() + "\n")
        f.write(f"#seconds={seconds:.6f}\n")


def classes(out_path):
    letter, number, space, unassigned = (re.compile(p) for p in (r"\p{L}", r"\p{N}", r"\s", r"\p{Cn}"))
    out = []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            out.append("X")
            continue
        ch = chr(c)
        k = "L" if letter.match(ch) else "N" if number.match(ch) else "S" if space.match(ch) else "O"
        out.append(k.lower() if unassigned.match(ch) else k)
    with open(out_path, "w", encoding="ascii") as f:
        f.write("".join(out))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "check":
        print(re.__version__)
    elif command == "train":
        train(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == "encode":
        encode(sys.argv[2], sys.argv[3], sys.argv[4])
    elif command == "classes":
        classes(sys.argv[2])
    else:
        sys.exit(f"unknown command {command}")
