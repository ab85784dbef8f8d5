"""Hugging Face transformers on the GPU: the peer of bench/gpu_bench.cc.

A LlamaForCausalLM of SmolLM2-135M's shape (random weights, bf16), the workloads gpu_bench runs:
decode at batch 1, 8 and 64 (32-token prompts, greedy generate(); the time of generating one
token is subtracted so prefill is not counted) and a 512-token prefill. Prints one flat JSON
object of tokens/s.
"""
import json
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def timed(fn, reps=3):
    best = float("inf")
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    cfg = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                      num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192, rope_theta=100000.0,
                      rms_norm_eps=1e-5, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16).eval()
    out = {}
    with torch.no_grad():
        for batch in (1, 8, 64):
            ids = torch.randint(100, 49000, (batch, 32), device="cuda")
            mask = torch.ones_like(ids)

            def gen(n):
                model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               pad_token_id=0)

            steps = 32
            gen(2)  # warm-up
            t_many = timed(lambda: gen(steps + 1))
            t_one = timed(lambda: gen(1))
            out[f"decode_b{batch}"] = batch * steps / max(t_many - t_one, 1e-9)
            print(f"transformers decode_b{batch}: {out[f'decode_b{batch}']:.1f} tokens/s", file=sys.stderr)
        ids = torch.randint(100, 49000, (1, 512), device="cuda")
        model(ids)
        out["prefill_512"] = 512 / timed(lambda: model(ids), reps=5)
        print(f"transformers prefill_512: {out['prefill_512']:.0f} tokens/s", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
