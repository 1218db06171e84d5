#!/usr/bin/python3
"""A plain-PyTorch GPT-2 (no transformers), the reference the C# PolicyModel and RewardModel are
checked against. Run with Debian's /usr/bin/python3 (python3-torch).

    gpt2_reference.py SPEC.json OUT_DIR

SPEC lists models; each is either made with random weights (and saved in the Hugging Face layout:
config.json + model.safetensors written by hand: 8-byte little-endian header length, JSON header,
raw little-endian bytes) or loaded from a directory/file the C# side wrote. For each model the spec's
queries are answered and all answers go to OUT_DIR/expected.json.

Model spec:
  {"name": str, "kind": "policy" | "reward",
   "make": {"config": {HF GPT2Config keys}, "seed": int, "std": float, "dtype": "float32"|"float16"|"bfloat16",
            "prefix": "" | "transformer.", "buffers": bool, "lm_head": bool}
   | "load": path (policy: a checkpoint directory; reward: a safetensors file with config metadata),
   "queries": {
     "logits":   [{"tokens": [[int]], "attention_mask": [[int]]?, "position_ids": [[int]]?}],
     "logprobs": [{"prompt": [int], "completion": [int]}],
     "greedy":   [{"prompt": [int], "steps": int}],
     "grad":     {"pairs": [{"prompt": [int], "completion": [int]}], "params": [str]},
     "rewards":  [[int]]}}
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)

DTYPES = {"float32": (torch.float32, "F32"), "float16": (torch.float16, "F16"), "bfloat16": (torch.bfloat16, "BF16")}
NAMES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


# ---- safetensors by hand ---------------------------------------------------------------------------

def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (t, dtype_name) in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": dtype_name, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = NAMES[entry["dtype"]]
        buf = bytearray(data[begin:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(buf, dtype=dtype)
        tensors[name] = t.reshape(entry["shape"]).to(torch.float32).clone()
    return tensors, metadata


# ---- the model ---------------------------------------------------------------------------------------

class Config:
    def __init__(self, d):
        self.vocab = d["vocab_size"]
        self.positions = d["n_positions"]
        self.width = d["n_embd"]
        self.layers = d["n_layer"]
        self.heads = d["n_head"]
        self.eps = d.get("layer_norm_epsilon", 1e-5)


def gelu_new(x):
    # GPT-2's tanh approximation, as Hugging Face's NewGELUActivation writes it.
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def conv1d(x, w, b):
    # Conv1D: weight stored [in, out].
    return torch.addmm(b, x.reshape(-1, x.shape[-1]), w).reshape(*x.shape[:-1], w.shape[1])


def hidden_states(sd, cfg, tokens, attention_mask=None, position_ids=None):
    B, T = tokens.shape
    C, H = cfg.width, cfg.heads
    D = C // H
    if position_ids is None:
        position_ids = torch.arange(T).unsqueeze(0)
    x = sd["wte.weight"][tokens] + sd["wpe.weight"][position_ids]
    hide = torch.ones(T, T, dtype=torch.bool).triu(1).view(1, 1, T, T)
    if attention_mask is not None:
        hide = hide | (attention_mask == 0).view(B, 1, 1, T)
    for i in range(cfg.layers):
        p = lambda n: sd[f"h.{i}.{n}"]
        h = F.layer_norm(x, (C,), p("ln_1.weight"), p("ln_1.bias"), cfg.eps)
        q, k, v = conv1d(h, p("attn.c_attn.weight"), p("attn.c_attn.bias")).split(C, dim=2)
        q = q.view(B, T, H, D).transpose(1, 2)
        k = k.view(B, T, H, D).transpose(1, 2)
        v = v.view(B, T, H, D).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        att = att.masked_fill(hide, torch.finfo(att.dtype).min)
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + conv1d(y, p("attn.c_proj.weight"), p("attn.c_proj.bias"))
        h = F.layer_norm(x, (C,), p("ln_2.weight"), p("ln_2.bias"), cfg.eps)
        h = gelu_new(conv1d(h, p("mlp.c_fc.weight"), p("mlp.c_fc.bias")))
        x = x + conv1d(h, p("mlp.c_proj.weight"), p("mlp.c_proj.bias"))
    return F.layer_norm(x, (C,), sd["ln_f.weight"], sd["ln_f.bias"], cfg.eps)


def logits_of(sd, cfg, tokens, attention_mask=None, position_ids=None):
    return hidden_states(sd, cfg, tokens, attention_mask, position_ids) @ sd["wte.weight"].t()


def completion_logprobs(sd, cfg, prompt, completion):
    tokens = torch.tensor([prompt + completion])
    logp = torch.log_softmax(logits_of(sd, cfg, tokens)[0], dim=-1)
    per_token = [logp[len(prompt) - 1 + j, c] for j, c in enumerate(completion)]
    return torch.stack(per_token) if per_token else torch.zeros(0)


def trunk_names(cfg):
    names = {"wte.weight": [cfg.vocab, cfg.width], "wpe.weight": [cfg.positions, cfg.width]}
    C = cfg.width
    for i in range(cfg.layers):
        names.update({
            f"h.{i}.ln_1.weight": [C], f"h.{i}.ln_1.bias": [C],
            f"h.{i}.attn.c_attn.weight": [C, 3 * C], f"h.{i}.attn.c_attn.bias": [3 * C],
            f"h.{i}.attn.c_proj.weight": [C, C], f"h.{i}.attn.c_proj.bias": [C],
            f"h.{i}.ln_2.weight": [C], f"h.{i}.ln_2.bias": [C],
            f"h.{i}.mlp.c_fc.weight": [C, 4 * C], f"h.{i}.mlp.c_fc.bias": [4 * C],
            f"h.{i}.mlp.c_proj.weight": [4 * C, C], f"h.{i}.mlp.c_proj.bias": [C],
        })
    names.update({"ln_f.weight": [C], "ln_f.bias": [C]})
    return names


def random_weights(cfg, seed, std, reward):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in trunk_names(cfg).items():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            sd[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)   # not 1: the test must see the scale used
        else:
            sd[name] = std * torch.randn(shape, generator=g)
    if reward:
        sd["score.weight"] = std * torch.randn([1, cfg.width], generator=g)
        sd["score.bias"] = std * torch.randn([1], generator=g)
    return sd


def make(spec, out_dir, name, kind):
    m = spec["make"]
    cfg_json = dict(m["config"])
    cfg_json.setdefault("model_type", "gpt2")
    cfg = Config(cfg_json)
    dtype, dtype_name = DTYPES[m.get("dtype", "float32")]
    sd = random_weights(cfg, m["seed"], m.get("std", 0.2), kind == "reward")
    # The model computes with the weights exactly as stored, so half-precision files compare exactly.
    sd = {k: v.to(dtype).to(torch.float32) for k, v in sd.items()}
    prefix = m.get("prefix", "")
    tensors = {}
    for k, v in sd.items():
        full = k if k.startswith("score.") else prefix + k
        tensors[full] = (v.to(dtype), dtype_name)
    if m.get("buffers"):
        T = cfg.positions
        for i in range(cfg.layers):
            tensors[f"{prefix}h.{i}.attn.bias"] = (torch.ones(T, T).tril().view(1, 1, T, T), "F32")
            tensors[f"{prefix}h.{i}.attn.masked_bias"] = (torch.tensor(-1e4), "F32")
    if m.get("lm_head"):
        tensors["lm_head.weight"] = (sd["wte.weight"].to(dtype), dtype_name)
    if m.get("drop_score_bias"):
        del tensors["score.bias"]
        sd["score.bias"] = torch.zeros(1)
    if kind == "policy":
        path = os.path.join(out_dir, name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(cfg_json, f, indent=2)
        write_safetensors(os.path.join(path, "model.safetensors"), tensors, {"format": "pt"})
    else:
        path = os.path.join(out_dir, name + ".safetensors")
        write_safetensors(path, tensors, {"format": "pt", "prefonline.config": json.dumps(cfg_json)})
    return sd, cfg


def load(spec, kind):
    path = spec["load"]
    if kind == "policy":
        with open(os.path.join(path, "config.json")) as f:
            cfg = Config(json.load(f))
        tensors, _ = read_safetensors(os.path.join(path, "model.safetensors"))
        return tensors, cfg
    tensors, metadata = read_safetensors(path)
    cfg = Config(json.loads(metadata["prefonline.config"]))
    sd = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in tensors.items()}
    return sd, cfg


def answer(sd, cfg, kind, queries):
    out = {}
    with torch.no_grad():
        if "logits" in queries:
            out["logits"] = []
            for q in queries["logits"]:
                mask = torch.tensor(q["attention_mask"]) if "attention_mask" in q else None
                pos = torch.tensor(q["position_ids"]) if "position_ids" in q else None
                out["logits"].append(logits_of(sd, cfg, torch.tensor(q["tokens"]), mask, pos).tolist())
        if "logprobs" in queries:
            per = [completion_logprobs(sd, cfg, q["prompt"], q["completion"]) for q in queries["logprobs"]]
            out["token_logprobs"] = [p.tolist() for p in per]
            out["logprobs"] = [float(p.double().sum()) for p in per]
        if "greedy" in queries:
            out["greedy"] = []
            for q in queries["greedy"]:
                seq = list(q["prompt"])
                for _ in range(q["steps"]):
                    seq.append(int(logits_of(sd, cfg, torch.tensor([seq[-cfg.positions:]]))[0, -1].argmax()))
                out["greedy"].append(seq[len(q["prompt"]):])
        if "rewards" in queries:
            out["rewards"] = []
            for tokens in queries["rewards"]:
                h = hidden_states(sd, cfg, torch.tensor([tokens]))[0, -1]
                out["rewards"].append(float(h @ sd["score.weight"][0] + sd["score.bias"][0]))
    if "grad" in queries:
        g = queries["grad"]
        params = {k: v.clone().requires_grad_(True) for k, v in sd.items()}
        total = sum(completion_logprobs(params, cfg, p["prompt"], p["completion"]).sum() for p in g["pairs"])
        total.backward()
        out["grad"] = {n: params[n].grad.flatten().tolist() for n in g["params"]}
        out["grad_objective"] = float(total)
    return out


def main():
    spec_path, out_dir = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    results = {}
    for m in spec["models"]:
        kind = m.get("kind", "policy")
        sd, cfg = make(m, out_dir, m["name"], kind) if "make" in m else load(m, kind)
        results[m["name"]] = answer(sd, cfg, kind, m.get("queries", {}))
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
