#!/usr/bin/python3
"""A plain-PyTorch Llama-family decoder (no transformers), the reference the C# LlamaModel is checked
against: Llama (incl. Llama 3 rope_scaling), Qwen2 (q/k/v biases), Qwen3 (q/k RMSNorm), Mistral.
Written from the architecture's definition, independently of the C# code. Run with Debian's
/usr/bin/python3 (python3-torch).

    llama_reference.py SPEC.json OUT_DIR

SPEC lists models; each is either made with random weights and saved in the Hugging Face layout
(config.json + model.safetensors, or shards + model.safetensors.index.json), or loaded from a
checkpoint directory (policy) / safetensors file with config metadata (reward) the C# side wrote.
Every model's queries are answered into OUT_DIR/expected.json.

Model spec:
  {"name": str, "kind": "policy" | "reward",
   "make": {"config": {HF config.json keys}, "seed": int, "std": float, "dtype": "float32"|"bfloat16",
            "shards": int (policy only; > 1 writes an index)}
   | "load": path,
   "queries": {"logits": [{"tokens": [[int]], "attention_mask": [[int]]?, "position_ids": [[int]]?}],
               "greedy": [{"prompt": [int], "steps": int}],
               "rewards": [[int]]}}
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

from gpt2_reference import DTYPES, read_safetensors, write_safetensors

torch.set_num_threads(1)


class Config:
    """The keys of a Llama-family config.json that shape the math, with transformers' defaults."""

    def __init__(self, d):
        self.model_type = d.get("model_type", "llama")
        self.vocab = d["vocab_size"]
        self.width = d["hidden_size"]
        self.inner = d["intermediate_size"]
        self.layers = d["num_hidden_layers"]
        self.heads = d["num_attention_heads"]
        self.kv_heads = d.get("num_key_value_heads") or self.heads
        # Qwen3Config's head_dim defaults to 128; the others' to hidden_size / num_attention_heads.
        self.head_dim = d.get("head_dim") or (128 if self.model_type == "qwen3" else self.width // self.heads)
        self.eps = d.get("rms_norm_eps", 1e-6)
        self.theta = d.get("rope_theta", 10000.0)
        self.rope_scaling = d.get("rope_scaling")
        self.tied = d.get("tie_word_embeddings", False)
        attention_bias = d.get("attention_bias", False)
        # Qwen2 always has q/k/v biases and no o bias; elsewhere attention_bias puts a bias on all four.
        self.qkv_bias = self.model_type == "qwen2" or attention_bias
        self.o_bias = self.model_type != "qwen2" and attention_bias
        self.mlp_bias = self.model_type == "llama" and d.get("mlp_bias", False)
        self.qk_norm = self.model_type == "qwen3"


def inverse_frequencies(cfg):
    D = cfg.head_dim
    inv = 1.0 / (cfg.theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    rs = cfg.rope_scaling
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        return inv / rs["factor"]
    assert kind == "llama3", kind
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    original = rs["original_max_position_embeddings"]
    out = []
    for f in inv.tolist():
        wavelength = 2 * math.pi / f
        if wavelength < original / high:          # short wavelengths: untouched
            out.append(f)
        elif wavelength > original / low:         # long wavelengths: divided by the factor
            out.append(f / factor)
        else:                                     # in between: a smooth blend of the two
            smooth = (original / wavelength - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out, dtype=torch.float32)


def rms_norm(x, w, eps):
    x32 = x.float()
    return w * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def linear(x, sd, name, bias):
    y = x @ sd[name + ".weight"].t()
    return y + sd[name + ".bias"] if bias else y


def hidden_states(sd, cfg, tokens, attention_mask=None, position_ids=None):
    B, T = tokens.shape
    H, Hkv, D = cfg.heads, cfg.kv_heads, cfg.head_dim
    if position_ids is None:
        position_ids = torch.arange(T).unsqueeze(0).expand(B, T)
    angles = position_ids.float().unsqueeze(-1) * inverse_frequencies(cfg)   # (B, T, D/2)
    angles = torch.cat([angles, angles], dim=-1).unsqueeze(1)                # (B, 1, T, D)
    cos, sin = angles.cos(), angles.sin()
    hide = torch.ones(T, T, dtype=torch.bool).triu(1).view(1, 1, T, T)
    if attention_mask is not None:
        hide = hide | (attention_mask == 0).view(B, 1, 1, T)
    x = sd["model.embed_tokens.weight"][tokens]
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        h = rms_norm(x, sd[p + "input_layernorm.weight"], cfg.eps)
        q = linear(h, sd, p + "self_attn.q_proj", cfg.qkv_bias).view(B, T, H, D)
        k = linear(h, sd, p + "self_attn.k_proj", cfg.qkv_bias).view(B, T, Hkv, D)
        v = linear(h, sd, p + "self_attn.v_proj", cfg.qkv_bias).view(B, T, Hkv, D)
        if cfg.qk_norm:
            q = rms_norm(q, sd[p + "self_attn.q_norm.weight"], cfg.eps)
            k = rms_norm(k, sd[p + "self_attn.k_norm.weight"], cfg.eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # Query head j reads key/value head j // (H / Hkv).
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        att = torch.softmax(att.masked_fill(hide, torch.finfo(att.dtype).min), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + linear(y, sd, p + "self_attn.o_proj", cfg.o_bias)
        h = rms_norm(x, sd[p + "post_attention_layernorm.weight"], cfg.eps)
        gated = F.silu(linear(h, sd, p + "mlp.gate_proj", cfg.mlp_bias)) * linear(h, sd, p + "mlp.up_proj", cfg.mlp_bias)
        x = x + linear(gated, sd, p + "mlp.down_proj", cfg.mlp_bias)
    return rms_norm(x, sd["model.norm.weight"], cfg.eps)


def logits_of(sd, cfg, tokens, attention_mask=None, position_ids=None):
    head = sd["model.embed_tokens.weight"] if cfg.tied else sd["lm_head.weight"]
    return hidden_states(sd, cfg, tokens, attention_mask, position_ids) @ head.t()


def parameter_shapes(cfg, reward):
    C, H, Hkv, D, I = cfg.width, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.inner
    shapes = {"model.embed_tokens.weight": [cfg.vocab, C], "model.norm.weight": [C]}
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": [C], p + "post_attention_layernorm.weight": [C],
            p + "self_attn.q_proj.weight": [H * D, C], p + "self_attn.k_proj.weight": [Hkv * D, C],
            p + "self_attn.v_proj.weight": [Hkv * D, C], p + "self_attn.o_proj.weight": [C, H * D],
            p + "mlp.gate_proj.weight": [I, C], p + "mlp.up_proj.weight": [I, C], p + "mlp.down_proj.weight": [C, I],
        })
        if cfg.qkv_bias:
            shapes.update({p + "self_attn.q_proj.bias": [H * D], p + "self_attn.k_proj.bias": [Hkv * D], p + "self_attn.v_proj.bias": [Hkv * D]})
        if cfg.o_bias:
            shapes[p + "self_attn.o_proj.bias"] = [C]
        if cfg.mlp_bias:
            shapes.update({p + "mlp.gate_proj.bias": [I], p + "mlp.up_proj.bias": [I], p + "mlp.down_proj.bias": [C]})
        if cfg.qk_norm:
            shapes.update({p + "self_attn.q_norm.weight": [D], p + "self_attn.k_norm.weight": [D]})
    if reward:
        shapes.update({"score.weight": [1, C], "score.bias": [1]})
    elif not cfg.tied:
        shapes["lm_head.weight"] = [cfg.vocab, C]
    return shapes


def make(spec, out_dir, name, kind):
    m = spec["make"]
    cfg_json = dict(m["config"])
    cfg = Config(cfg_json)
    dtype, dtype_name = DTYPES[m.get("dtype", "float32")]
    g = torch.Generator().manual_seed(m["seed"])
    std = m.get("std", 0.2)
    sd = {}
    for n, shape in parameter_shapes(cfg, kind == "reward").items():
        if n.endswith("norm.weight") or n.endswith("layernorm.weight"):
            sd[n] = 1.0 + 0.1 * torch.randn(shape, generator=g)   # not 1: the test must see the scale used
        else:
            sd[n] = std * torch.randn(shape, generator=g)
    # The model computes with the weights exactly as stored, so bfloat16 files compare exactly.
    sd = {k: v.to(dtype).to(torch.float32) for k, v in sd.items()}
    tensors = {k: (v.to(dtype), dtype_name) for k, v in sd.items()}
    if kind == "reward":
        path = os.path.join(out_dir, name + ".safetensors")
        write_safetensors(path, tensors, {"format": "pt", "prefonline.config": json.dumps(cfg_json)})
        return sd, cfg
    path = os.path.join(out_dir, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg_json, f, indent=2)
    shards = m.get("shards", 1)
    if shards <= 1:
        write_safetensors(os.path.join(path, "model.safetensors"), tensors, {"format": "pt"})
        return sd, cfg
    names = list(tensors)
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        write_safetensors(os.path.join(path, file), part, {"format": "pt"})
        weight_map.update({n: file for n in part})
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)
    return sd, cfg


def load(spec, kind):
    path = spec["load"]
    if kind == "policy":
        with open(os.path.join(path, "config.json")) as f:
            cfg = Config(json.load(f))
        tensors, _ = read_safetensors(os.path.join(path, "model.safetensors"))
        return tensors, cfg
    tensors, metadata = read_safetensors(path)
    return tensors, Config(json.loads(metadata["prefonline.config"]))


def answer(sd, cfg, queries):
    out = {}
    with torch.no_grad():
        if "logits" in queries:
            out["logits"] = []
            for q in queries["logits"]:
                mask = torch.tensor(q["attention_mask"]) if "attention_mask" in q else None
                pos = torch.tensor(q["position_ids"]) if "position_ids" in q else None
                out["logits"].append(logits_of(sd, cfg, torch.tensor(q["tokens"]), mask, pos).tolist())
        if "greedy" in queries:
            out["greedy"] = []
            for q in queries["greedy"]:
                seq = list(q["prompt"])
                for _ in range(q["steps"]):
                    seq.append(int(logits_of(sd, cfg, torch.tensor([seq]))[0, -1].argmax()))
                out["greedy"].append(seq[len(q["prompt"]):])
        if "rewards" in queries:
            out["rewards"] = []
            for tokens in queries["rewards"]:
                h = hidden_states(sd, cfg, torch.tensor([tokens]))[0, -1]
                out["rewards"].append(float(h @ sd["score.weight"][0] + sd["score.bias"][0]))
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
        results[m["name"]] = answer(sd, cfg, m.get("queries", {}))
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
