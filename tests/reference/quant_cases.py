"""Writes a GGUF file of quantization test cases, dequantized by an independent implementation.

For each tensor type, random blocks (with finite fp16/bf16 scales) are stored as tensor
"<TYPE>", and gguf-py's numpy dequantization of them as F32 tensor "<TYPE>.expected". weft's
kernels must reproduce the expected values (kernels/cpu/dequantize_test.cc).

usage: quant_cases.py OUT.gguf [--rows R] [--seed S]
"""
import argparse

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

# Byte offsets of fp16 scale fields within one block, per type.
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
TYPES = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q4_K, T.Q5_K, T.Q6_K]


def random_blocks(rng, qtype, rows, blocks_per_row):
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * blocks_per_row
    if qtype == T.F32:
        return rng.standard_normal(n_blocks, dtype=np.float32).view(np.uint8)
    if qtype == T.F16:
        return rng.standard_normal(n_blocks).astype(np.float16).view(np.uint8)
    if qtype == T.BF16:
        f = rng.standard_normal(n_blocks).astype(np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    data = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off in HALF_FIELDS[qtype]:
        scale = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        data[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return data.reshape(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    w = gguf.GGUFWriter(a.out, "weft-quant-cases")
    for qtype in TYPES:
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        blocks_per_row = 2 if block_elems > 1 else 512
        cols = blocks_per_row * block_elems
        raw = random_blocks(rng, qtype, a.rows, blocks_per_row).reshape(a.rows, blocks_per_row * block_bytes)
        expected = quants.dequantize(raw, qtype).astype(np.float32).reshape(a.rows, cols)
        w.add_tensor(qtype.name, raw, raw_dtype=qtype)
        w.add_tensor(qtype.name + ".expected", expected)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
