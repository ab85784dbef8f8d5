"""weft's LoRA gradients and optimizer steps against JAX's autograd (an independent reference):
for every weight type and both rotary styles, a tiny random model (written by weft, read here by
gguf-py and dequantized with gguf-py's own code), a random PEFT adapter on all seven projections
(written here with the safetensors package), one training sequence. weft
(finetune_gradients_tool) computes the summed loss over the trained tokens, its gradients with
respect to every A and B (saved as a PEFT directory, so in Hugging Face's row order) and the
adapter after one AdamW and one SGD step; JAX computes the same from the Llama equations, and
numpy the steps from PyTorch's definitions.
Usage: finetune_gradients_test.py PATH/TO/finetune_gradients_tool   (exits 77 without JAX)"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError:
    jax = None
import gguf
from safetensors.numpy import load_file, save_file

TOOL = sys.argv.pop(1) if len(sys.argv) > 1 else "build/finetune/finetune_gradients_tool"
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GGUF = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
        "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
RANK, ALPHA = 4, 8.0


def field(r, key):
    f = r.fields[key]
    v = f.parts[f.data[0]]
    return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else v[0]


def read_model(path):
    r = gguf.GGUFReader(path)
    arch = field(r, "general.architecture")
    cfg = {"arch": arch, "layers": int(field(r, f"{arch}.block_count")),
           "heads": int(field(r, f"{arch}.attention.head_count")),
           "kv_heads": int(field(r, f"{arch}.attention.head_count_kv")),
           "eps": float(field(r, f"{arch}.attention.layer_norm_rms_epsilon")),
           "base": float(field(r, f"{arch}.rope.freq_base"))}
    w = {t.name: np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32) for t in r.tensors}
    w.setdefault("output.weight", w["token_embd.weight"])
    return cfg, w


def hf_to_gguf(b, heads):
    return b.reshape(heads, 2, b.shape[0] // heads // 2, b.shape[1]).swapaxes(1, 2).reshape(b.shape)


def loss_fn(cfg, w, lora, tokens, trained):
    """The summed cross-entropy of the trained tokens; `lora` maps "L.module" to (A, B in HF order)."""
    heads, kv, eps = cfg["heads"], cfg["kv_heads"], cfg["eps"]
    neox = cfg["arch"] == "qwen2"
    x = w["token_embd.weight"][tokens]
    T, d = x.shape
    hd = d // heads
    pos = np.arange(T, dtype=np.float32)
    inv = cfg["base"] ** (-np.arange(0, hd // 2, dtype=np.float32) * 2 / hd)
    ang = pos[:, None] * inv[None, :]
    cos, sin = jnp.cos(ang)[:, None, :], jnp.sin(ang)[:, None, :]

    def rope(v):
        if neox:
            a, b = v[..., : hd // 2], v[..., hd // 2:]
            return jnp.concatenate([a * cos - b * sin, a * sin + b * cos], -1)
        a, b = v[..., 0::2], v[..., 1::2]
        return jnp.stack([a * cos - b * sin, a * sin + b * cos], -1).reshape(v.shape)

    def norm(v, g):
        return v / jnp.sqrt(jnp.mean(v * v, -1, keepdims=True) + eps) * g

    def proj(layer, module, v):
        y = v @ w[f"blk.{layer}.{GGUF[module]}.weight"].T
        a, b = lora[f"{layer}.{module}"]
        if module in ("q_proj", "k_proj") and not neox:
            b = hf_to_gguf(b, heads if module == "q_proj" else kv)
        return y + (ALPHA / RANK) * ((v @ a.T) @ b.T)

    mask = np.tril(np.ones((T, T), dtype=bool))
    for l in range(cfg["layers"]):
        xn = norm(x, w[f"blk.{l}.attn_norm.weight"])
        q, k, v = proj(l, "q_proj", xn), proj(l, "k_proj", xn), proj(l, "v_proj", xn)
        if f"blk.{l}.attn_q.bias" in w:
            q, k, v = q + w[f"blk.{l}.attn_q.bias"], k + w[f"blk.{l}.attn_k.bias"], v + w[f"blk.{l}.attn_v.bias"]
        q = rope(q.reshape(T, heads, hd))
        k = jnp.repeat(rope(k.reshape(T, kv, hd)), heads // kv, axis=1)
        v = jnp.repeat(v.reshape(T, kv, hd), heads // kv, axis=1)
        s = jnp.einsum("thd,jhd->htj", q, k) / np.sqrt(hd)
        p = jax.nn.softmax(jnp.where(mask[None], s, -jnp.inf), -1)
        o = jnp.einsum("htj,jhd->thd", p, v).reshape(T, d)
        x = x + proj(l, "o_proj", o)
        xn = norm(x, w[f"blk.{l}.ffn_norm.weight"])
        act = jax.nn.silu(proj(l, "gate_proj", xn)) * proj(l, "up_proj", xn)
        x = x + proj(l, "down_proj", act)
    logits = norm(x, w["output_norm.weight"]) @ w["output.weight"].T
    lp = jax.nn.log_softmax(logits[:-1], -1)
    picked = jnp.take_along_axis(lp, np.asarray(tokens[1:])[:, None], 1)[:, 0]
    return -jnp.sum(jnp.where(np.asarray(trained[1:]) != 0, picked, 0.0))


def tensor_name(key, half):
    layer, module = key.split(".")
    part = "self_attn" if module[0] in "qkvo" else "mlp"
    return f"base_model.model.model.layers.{layer}.{part}.{module}.lora_{half}.weight"


class FinetuneGradientsTest(unittest.TestCase):
    def check(self, weft_dir, want, what, rtol=2e-3):
        got = load_file(os.path.join(weft_dir, "adapter_model.safetensors"))
        for key, (a, b) in want.items():
            for half, ref in (("A", a), ("B", b)):
                mine = got[tensor_name(key, half)]
                scale = float(np.max(np.abs(ref))) + 1e-12
                err = float(np.max(np.abs(mine - ref)))
                self.assertLessEqual(err, rtol * scale + 1e-7, f"{what}: {key} {half}: max error {err:.3g} of {scale:.3g}")

    def test_gradients_and_optimizer_steps_equal_jax(self):
        rng = np.random.default_rng(0)
        tokens = [int(t) for t in rng.integers(0, 64, 24)]
        trained = [0] * 8 + [1] * 16
        cases = [(t, "llama") for t in ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k")]
        cases += [("q8_0", "qwen2")]
        with tempfile.TemporaryDirectory() as tmp:
            for type_, arch in cases:
                with self.subTest(type=type_, arch=arch):
                    model = os.path.join(tmp, f"{type_}-{arch}.gguf")
                    subprocess.run([TOOL, "model", type_, arch, model], check=True)
                    cfg, w = read_model(model)
                    d, hd = w["token_embd.weight"].shape[1], w["token_embd.weight"].shape[1] // cfg["heads"]
                    shapes = {"q_proj": (d, d), "k_proj": (cfg["kv_heads"] * hd, d), "v_proj": (cfg["kv_heads"] * hd, d),
                              "o_proj": (d, d), "gate_proj": (w["blk.0.ffn_up.weight"].shape[0], d),
                              "up_proj": (w["blk.0.ffn_up.weight"].shape[0], d),
                              "down_proj": (d, w["blk.0.ffn_up.weight"].shape[0])}
                    lora = {}
                    for l in range(cfg["layers"]):
                        for m in MODULES:
                            out, inp = shapes[m]
                            lora[f"{l}.{m}"] = (rng.normal(0, inp ** -0.5, (RANK, inp)).astype(np.float32),
                                                rng.normal(0, 0.2, (out, RANK)).astype(np.float32))
                    adapter = os.path.join(tmp, "adapter")
                    os.makedirs(adapter, exist_ok=True)
                    save_file({tensor_name(k, h): v for k, (a, b) in lora.items() for h, v in (("A", a), ("B", b))},
                              os.path.join(adapter, "adapter_model.safetensors"))
                    with open(os.path.join(adapter, "adapter_config.json"), "w") as f:
                        json.dump({"peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "target_modules": MODULES}, f)
                    out_dir = os.path.join(tmp, f"out-{type_}-{arch}")
                    run = subprocess.run([TOOL, "grads", model, adapter, ",".join(map(str, tokens)),
                                          ",".join(map(str, trained)), out_dir], capture_output=True, text=True)
                    self.assertEqual(run.returncode, 0, run.stderr)

                    loss, grads = jax.value_and_grad(lambda p: loss_fn(cfg, w, p, tokens, trained))(lora)
                    self.assertAlmostEqual(float(run.stdout), float(loss), delta=1e-4 * abs(float(loss)))
                    grads = {k: (np.asarray(a), np.asarray(b)) for k, (a, b) in grads.items()}
                    self.check(os.path.join(out_dir, "grads"), grads, "gradients")

                    # One optimizer step each, as PyTorch defines them (lr 0.01, weight decay 0.1,
                    # SGD momentum 0.9, clip 0.5) on weft's gradients (checked above) averaged over
                    # the trained tokens: Adam's first step divides a gradient by its own size, so
                    # JAX's would flip the sign of the near-zero ones.
                    n = sum(trained[1:])
                    mine = load_file(os.path.join(out_dir, "grads", "adapter_model.safetensors"))
                    g = {k: (mine[tensor_name(k, "A")] / n, mine[tensor_name(k, "B")] / n) for k in lora}
                    norm = np.sqrt(sum(float(np.sum(a * a) + np.sum(b * b)) for a, b in g.values()))
                    clip = min(1.0, 0.5 / (norm + 1e-6))
                    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-8
                    adamw, sgd = {}, {}
                    for k in lora:
                        pa, pb = [], []
                        for p, gr in zip(lora[k], g[k]):
                            gr = gr * clip
                            m, v = (1 - b1) * gr, (1 - b2) * gr * gr
                            pa.append(p * (1 - lr * wd) - (lr / (1 - b1)) * m / (np.sqrt(v) / np.sqrt(1 - b2) + eps))
                            pb.append(p - lr * (gr + wd * p))
                        adamw[k], sgd[k] = tuple(pa), tuple(pb)
                    self.check(os.path.join(out_dir, "adamw"), adamw, "AdamW step", rtol=1e-4)
                    self.check(os.path.join(out_dir, "sgd"), sgd, "SGD step", rtol=1e-4)


if __name__ == "__main__":
    if jax is None:
        print("JAX is not installed (scripts/setup installs it); skipped")
        sys.exit(77)
    unittest.main(verbosity=2)
