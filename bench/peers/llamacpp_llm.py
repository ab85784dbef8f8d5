"""llama.cpp's numbers for the LLM benchmarks, measured on this machine in the same run as weft's.

Same workloads as bench/llm_bench.cc, through llama-cpp-python's low-level API (llama_decode on
explicit batches, so no sampling or Python per-token work is timed beyond the call itself):
  prefill_{128,512,2048}: one prompt in one batch, logits for the last token
  decode_b1:              a 32-token prompt, then 64 single-token steps with logits
  decode_b{4,8,16}:       N sequences with 32-token prompts, then 32 steps of N tokens
  decode_b1_ctx1024:      a 1024-token prompt, then 32 single-token steps
Token ids follow the same formula as weft's bench. Each figure is the best of three repetitions.
Prints one JSON object: {"prefill_512_tokens_per_s": ..., "decode_b1_tokens_per_s": ..., ...};
--only NAME measures one workload (scripts/bench llm alternates llama.cpp and weft workload by
workload, so both see the same moment of a shared machine).
"""
import argparse
import json
import time

import llama_cpp as L


def token(i, vocab):
    return 100 + (i * 7919) % (vocab - 200)


def decode(ctx, items):
    """items: (token, pos, seq, logits) tuples as one batch."""
    batch = L.llama_batch_init(len(items), 0, 8)
    try:
        for k, (tok, pos, seq, logits) in enumerate(items):
            batch.token[k] = tok
            batch.pos[k] = pos
            batch.n_seq_id[k] = 1
            batch.seq_id[k][0] = seq
            batch.logits[k] = logits
        batch.n_tokens = len(items)
        rc = L.llama_decode(ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
    finally:
        L.llama_batch_free(batch)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--only", help="measure one workload (e.g. decode_b8), as llm_bench --only")
    args = ap.parse_args()

    def want(name):
        return args.only is None or args.only == name

    L.llama_backend_init()
    mparams = L.llama_model_default_params()
    model = L.llama_model_load_from_file(args.model.encode(), mparams)
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))

    def context(seqs, n_ctx, n_batch):
        cparams = L.llama_context_default_params()
        cparams.n_ctx = n_ctx  # split evenly between the sequences
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = seqs
        cparams.n_threads = args.threads
        cparams.n_threads_batch = args.threads
        return L.llama_init_from_model(model, cparams)

    def best(ctx, fn, reps=3):
        mem = L.llama_get_memory(ctx)
        out = []
        for _ in range(reps):
            L.llama_memory_clear(mem, True)
            out.append(fn(ctx))
        return max(out)

    def prefill(n):
        def once(ctx):
            items = [(token(i, vocab), i, 0, i == n - 1) for i in range(n)]
            t = time.perf_counter()
            decode(ctx, items)
            return n / (time.perf_counter() - t)

        return once

    def decode_steps(seqs, prompt, steps):
        def once(ctx):
            decode(ctx, [(token(q * 1000 + i, vocab), i, q, i == prompt - 1) for q in range(seqs) for i in range(prompt)])
            t = time.perf_counter()
            for s in range(steps):
                decode(ctx, [(token(q * 1000 + prompt + s, vocab), prompt + s, q, True) for q in range(seqs)])
            return seqs * steps / (time.perf_counter() - t)

        return once

    result = {}
    for n in (128, 512, 2048):
        if want(f"prefill_{n}"):
            ctx = context(1, n + 64, n)
            result[f"prefill_{n}_tokens_per_s"] = best(ctx, prefill(n))
            L.llama_free(ctx)
    for seqs in (1, 4, 8, 16):
        if want(f"decode_b{seqs}"):
            steps = 64 if seqs == 1 else 32
            ctx = context(seqs, seqs * 128, 512)
            result[f"decode_b{seqs}_tokens_per_s"] = best(ctx, decode_steps(seqs, 32, steps))
            L.llama_free(ctx)
    if want("decode_b1_ctx1024"):
        ctx = context(1, 1024 + 64, 1024)
        result["decode_b1_ctx1024_tokens_per_s"] = best(ctx, decode_steps(1, 1024, 32))
        L.llama_free(ctx)
    result["llama_cpp_python"] = L.__version__
    result["system_info"] = L.llama_print_system_info().decode().strip()
    L.llama_model_free(model)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
