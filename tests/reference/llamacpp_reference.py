"""Produces the llama.cpp reference data that weft's tokenizer and generation are checked against.

  llamacpp_reference.py tokens MODEL.gguf OUT.json    token ids of tests/reference/tricky_strings.txt
  llamacpp_reference.py greedy MODEL.gguf OUT.json    greedy continuations of tests/reference/prompts.txt

The outputs are checked in under tests/data/ so that the tests run without llama.cpp.

The checked-in data comes from llama-cpp-python 0.3.36 built for AVX2 without AVX-512, the
arithmetic that weft's fast mode reproduces bit for bit (a -march=native build on an AVX-512
machine organises its sums in 16 lanes and gives different low bits, hence different near-ties):

  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF" \
    .venv-peers/bin/pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python==0.3.36
"""
import json
import sys
from pathlib import Path

import llama_cpp

HERE = Path(__file__).parent


def lines(name):
    text = (HERE / name).read_text(encoding="utf-8")
    # One case per line; backslash-n, -t and -r are escapes, and a doubled backslash is one backslash.
    out = []
    for l in text.split("\n"):
        if not l or l.startswith("#"):
            continue
        out.append(l.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t")
                    .replace("\\r", "\r").replace("\0", "\\"))
    return out


def tokens(model, out):
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    cases = []
    for s in lines("tricky_strings.txt"):
        b = s.encode("utf-8")
        cases.append({
            "text": s,
            "plain": llm.tokenize(b, add_bos=False, special=False),
            "special": llm.tokenize(b, add_bos=False, special=True),
        })
    json.dump({"llama_cpp_python": llama_cpp.__version__, "model": Path(model).name, "cases": cases},
              open(out, "w", encoding="utf-8"), ensure_ascii=False, indent=1)


def greedy(model, out, n_predict=64):
    # Flash attention off: the reference numerics are the plain mul_mat + soft_max path.
    llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_threads=2, seed=0, logits_all=True, flash_attn=False,
                          verbose=False)
    end_of_generation = {llm.token_eos()} | {
        i for i in range(llm.n_vocab())
        if llm.detokenize([i], special=True) in (b"<|im_end|>", b"<|endoftext|>", b"<|eot_id|>")}
    cases = []
    for p in lines("prompts.txt"):
        prompt = llm.tokenize(p.encode("utf-8"), add_bos=True, special=True)
        llm.reset()
        llm.eval(prompt)
        generated = []
        while len(generated) < n_predict:
            tok = int(llm.scores[llm.n_tokens - 1].argmax())
            generated.append(tok)
            if tok in end_of_generation:
                break
            llm.eval([tok])
        cases.append({"prompt": p, "prompt_tokens": prompt, "generated": generated,
                      "text": llm.detokenize(generated).decode("utf-8", errors="replace")})
    json.dump({"llama_cpp_python": llama_cpp.__version__, "model": Path(model).name, "n_predict": n_predict,
               "cases": cases}, open(out, "w", encoding="utf-8"), ensure_ascii=False, indent=1)


if __name__ == "__main__":
    mode, model, out = sys.argv[1:4]
    {"tokens": tokens, "greedy": greedy}[mode](model, out)
