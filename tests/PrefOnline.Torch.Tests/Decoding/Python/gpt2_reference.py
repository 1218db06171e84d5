"""Plain PyTorch GPT-2 (no KV cache, no Hugging Face) used to cross-check the fused native decoder.

Usage: /usr/bin/python3 gpt2_reference.py WORKDIR
Reads WORKDIR/request.json:
  {"layers", "heads", "width", "vocab", "context", "eps", "seed", "std",
   "sequences": [[ids...]...],                     # logits of every position are returned
   "greedy": {"prompts": [[ids...]...], "max_new": n}}
Writes WORKDIR/weights.safetensors (random weights, Hugging Face GPT-2 names and Conv1D layout) and
WORKDIR/reference.json: {"logits": [[floats: len*vocab]...], "greedy_tokens": [[...]...],
"greedy_logprobs": [[...]...]}.
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F


def make_weights(cfg):
    g = torch.Generator().manual_seed(cfg["seed"])
    L, C, V, T = cfg["layers"], cfg["width"], cfg["vocab"], cfg["context"]
    std = cfg.get("std", 1.0)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    w = {"wte.weight": randn(V, C, scale=0.5 * std), "wpe.weight": randn(T, C, scale=0.2 * std)}
    for i in range(L):
        p = f"h.{i}."
        w[p + "ln_1.weight"] = 1 + randn(C, scale=0.1)
        w[p + "ln_1.bias"] = randn(C, scale=0.05)
        w[p + "attn.c_attn.weight"] = randn(C, 3 * C, scale=std / math.sqrt(C))
        w[p + "attn.c_attn.bias"] = randn(3 * C, scale=0.05)
        w[p + "attn.c_proj.weight"] = randn(C, C, scale=std / math.sqrt(C))
        w[p + "attn.c_proj.bias"] = randn(C, scale=0.05)
        w[p + "ln_2.weight"] = 1 + randn(C, scale=0.1)
        w[p + "ln_2.bias"] = randn(C, scale=0.05)
        w[p + "mlp.c_fc.weight"] = randn(C, 4 * C, scale=std / math.sqrt(C))
        w[p + "mlp.c_fc.bias"] = randn(4 * C, scale=0.05)
        w[p + "mlp.c_proj.weight"] = randn(4 * C, C, scale=std / math.sqrt(4 * C))
        w[p + "mlp.c_proj.bias"] = randn(C, scale=0.05)
    w["ln_f.weight"] = 1 + randn(C, scale=0.1)
    w["ln_f.bias"] = randn(C, scale=0.05)
    return w


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def forward(w, cfg, ids):
    """Logits (T, V) of one sequence: a full causal forward pass, no cache."""
    L, H, C, eps = cfg["layers"], cfg["heads"], cfg["width"], cfg["eps"]
    D = C // H
    T = len(ids)
    x = w["wte.weight"][torch.tensor(ids)] + w["wpe.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(L):
        p = f"h.{i}."
        h = F.layer_norm(x, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (t.view(T, H, D).transpose(0, 1) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        h = F.gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"], eps)
    return x @ w["wte.weight"].t()


def main(workdir):
    torch.set_num_threads(1)
    with open(f"{workdir}/request.json") as f:
        cfg = json.load(f)
    w = make_weights(cfg)
    save_safetensors(f"{workdir}/weights.safetensors", w)
    out = {"logits": [], "greedy_tokens": [], "greedy_logprobs": []}
    with torch.no_grad():
        for ids in cfg["sequences"]:
            out["logits"].append(forward(w, cfg, ids).reshape(-1).tolist())
        greedy = cfg.get("greedy", {"prompts": [], "max_new": 0})
        for prompt in greedy["prompts"]:
            ids, tokens, logprobs = list(prompt), [], []
            for _ in range(greedy["max_new"]):
                logits = forward(w, cfg, ids)[-1]
                token = int(logits.argmax())
                tokens.append(token)
                logprobs.append(float(logits.log_softmax(-1)[token]))
                ids.append(token)
            out["greedy_tokens"].append(tokens)
            out["greedy_logprobs"].append(logprobs)
    with open(f"{workdir}/reference.json", "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1])
