"""A tiny, independent Llama/Qwen2 forward pass in numpy, and a writer of tiny random models.

  llama_reference.py make OUT.gguf --type Q4_K [--arch llama|qwen2] [--seed S]
      Writes a random 2-layer model whose matrices have the given tensor type.
  llama_reference.py logits MODEL.gguf OUT.f32 TOKEN...
      Reads MODEL through gguf-py, runs the tokens causally from position 0, and writes the
      float32 logits of every position ([n_tokens][vocab], row-major) to OUT.f32.

The forward pass follows the published architectures (RMSNorm, rotary embeddings on adjacent
pairs for llama-converted weights and on split halves for qwen2, grouped-query attention,
SwiGLU), in float64.
"""
import sys
import argparse

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from quant_cases import HALF_FIELDS, random_blocks  # noqa: E402

D_MODEL, FFN, HEADS, KV_HEADS, LAYERS, VOCAB = 256, 512, 4, 2, 2, 300
HEAD_DIM = D_MODEL // HEADS


def write_model(path, qtype, arch, seed):
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(LAYERS)
    w.add_context_length(512)
    w.add_embedding_length(D_MODEL)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(VOCAB)

    def matrix(name, cols, rows):
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        if qtype == T.F32:
            w.add_tensor(name, (rng.standard_normal((rows, cols)) * 0.08).astype(np.float32))
            return
        raw = random_blocks(rng, qtype, rows, cols // block_elems).reshape(-1, block_bytes)
        if qtype in HALF_FIELDS:
            # Rescale the fp16 scale fields so the weights have a standard deviation near 0.08.
            factor = 0.08 / quants.dequantize(raw.reshape(-1), qtype).std()
            for off in HALF_FIELDS[qtype]:
                halves = raw[:, off:off + 2].copy().view(np.float16).astype(np.float32) * factor
                raw[:, off:off + 2] = halves.astype(np.float16).view(np.uint8).reshape(-1, 2)
        elif qtype in (T.F16, T.BF16):
            raw = random_blocks(rng, qtype, rows * cols, 1)  # standard normal values
            vals = quants.dequantize(raw, qtype) * 0.08
            raw = vals.astype(np.float16).view(np.uint8) if qtype == T.F16 else \
                (vals.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        w.add_tensor(name, raw.reshape(rows, -1), raw_dtype=qtype)

    def norm(name, n):
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32))

    matrix("token_embd.weight", D_MODEL, VOCAB)
    norm("output_norm.weight", D_MODEL)
    if arch == "qwen2":
        matrix("output.weight", D_MODEL, VOCAB)
    for l in range(LAYERS):
        p = f"blk.{l}."
        norm(p + "attn_norm.weight", D_MODEL)
        matrix(p + "attn_q.weight", D_MODEL, HEADS * HEAD_DIM)
        matrix(p + "attn_k.weight", D_MODEL, KV_HEADS * HEAD_DIM)
        matrix(p + "attn_v.weight", D_MODEL, KV_HEADS * HEAD_DIM)
        matrix(p + "attn_output.weight", HEADS * HEAD_DIM, D_MODEL)
        if arch == "qwen2":
            for n, dim in (("q", HEADS * HEAD_DIM), ("k", KV_HEADS * HEAD_DIM), ("v", KV_HEADS * HEAD_DIM)):
                w.add_tensor(p + f"attn_{n}.bias", (0.1 * rng.standard_normal(dim)).astype(np.float32))
        norm(p + "ffn_norm.weight", D_MODEL)
        matrix(p + "ffn_gate.weight", D_MODEL, FFN)
        matrix(p + "ffn_up.weight", D_MODEL, FFN)
        matrix(p + "ffn_down.weight", FFN, D_MODEL)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load(path):
    r = gguf.GGUFReader(path)
    f = {k: v.contents() for k, v in r.fields.items() if not k.startswith("GGUF.")}
    t = {}
    for x in r.tensors:
        arr = quants.dequantize(x.data, x.tensor_type).astype(np.float64)
        t[x.name] = arr.reshape([int(n) for n in reversed(x.shape)]) if arr.ndim > 1 or len(x.shape) > 1 else arr
    return f, t


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, base, neox):
    # x: [n_tokens, n_heads, head_dim]
    hd = x.shape[-1]
    inv = base ** (-np.arange(0, hd, 2) / hd)
    ang = np.asarray(pos)[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    if neox:
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def forward(f, t, tokens):
    arch = f["general.architecture"]
    p = arch + "."
    heads, kv_heads = f[p + "attention.head_count"], f[p + "attention.head_count_kv"]
    eps, base = f[p + "attention.layer_norm_rms_epsilon"], f[p + "rope.freq_base"]
    n = len(tokens)
    h = t["token_embd.weight"][tokens]
    d = h.shape[1]
    hd = d // heads
    pos = np.arange(n)
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(f[p + "block_count"]):
        b = f"blk.{l}."
        x = rms_norm(h, t[b + "attn_norm.weight"], eps)
        q, k, v = (x @ t[b + f"attn_{m}.weight"].T for m in "qkv")
        if arch == "qwen2":
            q, k, v = q + t[b + "attn_q.bias"], k + t[b + "attn_k.bias"], v + t[b + "attn_v.bias"]
        q = rope(q.reshape(n, heads, hd), pos, base, arch == "qwen2")
        k = rope(k.reshape(n, kv_heads, hd), pos, base, arch == "qwen2")
        v = v.reshape(n, kv_heads, hd)
        rep = heads // kv_heads
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("ihd,jhd->hij", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hij,jhd->ihd", s, v).reshape(n, d)
        h = h + o @ t[b + "attn_output.weight"].T
        x = rms_norm(h, t[b + "ffn_norm.weight"], eps)
        g, u = x @ t[b + "ffn_gate.weight"].T, x @ t[b + "ffn_up.weight"].T
        h = h + (g / (1 + np.exp(-g)) * u) @ t[b + "ffn_down.weight"].T
    out = t.get("output.weight", t["token_embd.weight"])
    return rms_norm(h, t["output_norm.weight"], eps) @ out.T


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("out")
    mk.add_argument("--type", default="F32")
    mk.add_argument("--arch", default="llama")
    mk.add_argument("--seed", type=int, default=3)
    lg = sub.add_parser("logits")
    lg.add_argument("model")
    lg.add_argument("out")
    lg.add_argument("tokens", type=int, nargs="+")
    a = ap.parse_args()
    if a.cmd == "make":
        write_model(a.out, T[a.type], a.arch, a.seed)
    else:
        f, t = load(a.model)
        forward(f, t, a.tokens).astype(np.float32).tofile(a.out)


if __name__ == "__main__":
    main()
