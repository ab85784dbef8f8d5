"""weft serve end to end: the real default model behind real sockets, driven by the official
openai client and by raw HTTP. Usage: serve_e2e_test.py PATH/TO/weft"""
import asyncio
import concurrent.futures
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import openai
from weft_server import WeftServer

WEFT = sys.argv.pop(1) if len(sys.argv) > 1 else "build/apps/weft"


class Server(WeftServer):
    def __init__(self, *args):
        super().__init__(WEFT, *args)
        self.client = openai.OpenAI(base_url=self.url + "/v1", api_key=args[args.index("--api-key") + 1]
                                    if "--api-key" in args else "none", max_retries=0, timeout=120)
        self.model = self.client.models.list().data[0].id

    def raw(self, data, read=True):
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(data)
            if not read:
                return b""
            chunks = []
            while True:
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    break
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks)


def generate_alone(prompt, max_tokens, *flags, model="default"):
    out = subprocess.run([WEFT, "generate", "--model", model, "--max-tokens", str(max_tokens), *flags, prompt],
                         capture_output=True, text=True, check=True).stdout
    return out[:-1] if out.endswith("\n") else out


PROMPTS = ["The capital of France is", "def fibonacci(n):", "Water boils at", "My favourite colour is",
           "The three laws of robotics are", "Once upon a time"]


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()

    @classmethod
    def tearDownClass(cls):
        cls.assertEqual(unittest.TestCase(), cls.s.stop(), 0)

    def test_completion_equals_generate_and_counts_usage(self):
        r = self.s.client.completions.create(model=self.s.model, prompt=PROMPTS[0], max_tokens=24, temperature=0)
        self.assertEqual(r.choices[0].text, generate_alone(PROMPTS[0], 24))
        self.assertEqual(r.usage.completion_tokens, 24)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + 24)
        self.assertEqual(r.choices[0].finish_reason, "length")

    def test_streamed_chat_with_usage(self):
        stream = self.s.client.chat.completions.create(
            model=self.s.model, messages=[{"role": "user", "content": "Write a haiku about task graphs."}],
            max_tokens=30, stream=True, stream_options={"include_usage": True})
        text, usage, finish = "", None, None
        for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
        self.assertTrue(text.strip())
        self.assertIn(finish, ("stop", "length"))
        self.assertGreater(usage.prompt_tokens, 10)
        self.assertGreaterEqual(usage.completion_tokens, 1)
        whole = self.s.client.chat.completions.create(
            model=self.s.model, messages=[{"role": "user", "content": "Write a haiku about task graphs."}],
            max_tokens=30)
        self.assertEqual(whole.choices[0].message.content, text)  # greedy: the same both ways

    def test_stop_strings_seed_and_logprobs(self):
        r = self.s.client.completions.create(model=self.s.model, prompt="Count: 1, 2, 3, 4,", max_tokens=40,
                                             stop=[" 7", "\n"])
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertNotIn(" 7", r.choices[0].text)
        a, b = [self.s.client.completions.create(model=self.s.model, prompt="Once upon a time", max_tokens=20,
                                                 temperature=0.9, seed=42).choices[0].text for _ in range(2)]
        self.assertEqual(a, b)
        c = self.s.client.chat.completions.create(model=self.s.model, messages=[{"role": "user", "content": "Hi"}],
                                                  max_tokens=3, logprobs=True, top_logprobs=2)
        lp = c.choices[0].logprobs.content
        self.assertEqual(len(lp), c.usage.completion_tokens)
        self.assertLessEqual(lp[0].logprob, 0)
        self.assertEqual(len(lp[0].top_logprobs), 2)

    def test_64_concurrent_streams_and_a_disconnect(self):
        def one(i):
            stream = self.s.client.completions.create(model=self.s.model, prompt=PROMPTS[i % len(PROMPTS)],
                                                      max_tokens=16, stream=True, extra_body={"ignore_eos": True},
                                                      stream_options={"include_usage": True})
            n = 0
            usage = None
            for chunk in stream:
                usage = chunk.usage or usage
                n += len(chunk.choices)
            return usage.completion_tokens
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            self.assertEqual(list(pool.map(one, range(64))), [16] * 64)
        # A client that goes away mid-stream frees its KV blocks.
        s = socket.create_connection(("127.0.0.1", self.s.port))
        body = json.dumps({"prompt": "Tell me a story.", "max_tokens": 2000, "stream": True, "ignore_eos": True})
        s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        s.recv(4096)
        time.sleep(0.3)
        self.assertGreater(self.s.metrics()["weft_kv_cache_blocks_used"], 0)
        s.close()
        for _ in range(200):
            if self.s.metrics()["weft_kv_cache_blocks_used"] == 0:
                break
            time.sleep(0.05)
        self.assertEqual(self.s.metrics()["weft_kv_cache_blocks_used"], 0)
        self.assertEqual(self.s.metrics()["weft_num_requests_running"], 0)

    def test_256_concurrent_streams_without_a_thread_each(self):
        async def all_streams():
            client = openai.AsyncOpenAI(base_url=self.s.url + "/v1", api_key="none", max_retries=0, timeout=600)

            async def one(i):
                stream = await client.completions.create(model=self.s.model, prompt=PROMPTS[i % len(PROMPTS)],
                                                         max_tokens=4, stream=True, extra_body={"ignore_eos": True},
                                                         stream_options={"include_usage": True})
                usage = None
                async for chunk in stream:
                    usage = chunk.usage or usage
                return usage.completion_tokens

            tasks = [asyncio.create_task(one(i)) for i in range(256)]
            # While they are all open, the server's threads stay few: one for I/O, the runtime's.
            await asyncio.sleep(1.0)
            with open(f"/proc/{self.s.proc.pid}/status") as f:
                threads = int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))
            results = await asyncio.gather(*tasks)
            await client.close()
            return threads, results
        threads, results = asyncio.run(all_streams())
        self.assertEqual(results, [4] * 256)
        self.assertLess(threads, 32)

    def test_hostile_input_gets_errors_never_a_crash(self):
        def post(body, path="/v1/completions"):
            req = urllib.request.Request(self.s.url + path, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())
        for body in [b"{oops", b"[]", b'{"prompt": 7}', b'{"prompt": "x", "max_tokens": "many"}',
                     b'{"prompt": "x", "max_tokens": 1e400}', b'{"prompt": "x", "temperature": -1}',
                     b'{"prompt": "\xff\xfe"}', b'{"prompt": "x", "stop": {"a": 1}}', b'{"prompt": "x", "n": 3}',
                     b'{"prompt": "' + b"word " * 10000 + b'"}']:
            code, err = post(body)
            self.assertEqual(code, 400, body[:60])
            self.assertIn("message", err["error"])
        self.assertEqual(post(b'{"model": "gpt-9", "prompt": "x"}')[0], 404)
        self.assertEqual(post(b'{"messages": [{"role": 1}]}', "/v1/chat/completions")[0], 400)
        self.assertIn(b" 413 ", self.s.raw(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 5242880\r\n\r\n{")[:20])
        self.assertIn(b" 400 ", self.s.raw(b"NOT HTTP AT ALL\r\n\r\n")[:20])
        self.s.raw(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pro", read=False)
        slow = socket.create_connection(("127.0.0.1", self.s.port))
        slow.sendall(b"GET /health HTTP/1.1\r\nHo")  # never finishes its headers
        self.assertEqual(urllib.request.urlopen(self.s.url + "/health").status, 200)
        slow.close()
        self.assertEqual(self.s.client.completions.create(model=self.s.model, prompt="Hi", max_tokens=2).usage.completion_tokens, 2)


class SmallCacheTest(unittest.TestCase):
    def test_preemption_keeps_greedy_output(self):
        s = Server("--kv-cache-memory", "4", "--api-key", "sekrit")
        try:
            with self.assertRaises(openai.AuthenticationError):
                openai.OpenAI(base_url=s.url + "/v1", api_key="wrong", max_retries=0).models.list()
            def one(p):
                return s.client.completions.create(model=s.model, prompt=p, max_tokens=40, temperature=0,
                                                   extra_body={"ignore_eos": True}).choices[0].text
            with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
                got = list(pool.map(one, PROMPTS))
            self.assertGreater(s.metrics()["weft_num_preemptions_total"], 0)
            for p, text in zip(PROMPTS, got):
                self.assertEqual(text, generate_alone(p, 40, "--ignore-eos"), p)
        finally:
            self.assertEqual(s.stop(), 0)


class WorkerProcessesTest(unittest.TestCase):
    def test_a_server_on_a_multi_process_runtime_answers(self):
        # $WEFT_PROCESSES makes weft::init start worker processes; the server's tasks and actors,
        # which name the service of its own process, must stay there and not wait forever.
        os.environ["WEFT_PROCESSES"] = "2"
        try:
            s = Server()
        finally:
            del os.environ["WEFT_PROCESSES"]
        try:
            got = s.client.completions.create(model=s.model, prompt=PROMPTS[0], max_tokens=8, temperature=0)
            self.assertEqual(got.choices[0].text, generate_alone(PROMPTS[0], 8))
        finally:
            self.assertEqual(s.stop(), 0)


class SuffixSpeculationTest(unittest.TestCase):
    def test_speculation_keeps_greedy_output_and_accepts_repeated_text(self):
        # Every proposed node verified: the test is about the machinery, not about what pays here.
        s = Server("--speculate", "suffix", "--speculate-policy", "every")
        try:
            verse = "Row, row, row your boat, gently down the stream. Merrily, merrily, merrily, merrily, "
            prompts = [verse + "life is but a dream. " + verse + "life is but a dream. " + verse] + PROMPTS[:3]

            def one(p):
                return s.client.completions.create(model=s.model, prompt=p, max_tokens=32,
                                                   temperature=0).choices[0].text
            with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
                got = list(pool.map(one, prompts))
            for p, text in zip(prompts, got):
                self.assertEqual(text, generate_alone(p, 32), p)
            m = s.metrics()
            self.assertGreater(m["weft_spec_accepted_tokens_total"], 0)
            self.assertLessEqual(m["weft_spec_accepted_tokens_total"], m["weft_spec_draft_tokens_total"])
            self.assertGreater(m["weft_spec_verify_steps_total"], 0)
        finally:
            self.assertEqual(s.stop(), 0)


class SloSpeculationTest(unittest.TestCase):
    def test_requests_with_their_own_targets_keep_greedy_output_and_are_judged_per_class(self):
        # AdaServe (the default policy) with a latency-critical class the server's defaults make tight.
        s = Server("--speculate", "suffix", "--slo-tpot-ms", "5,200,1000", "--slo-ttft-ms", "60000,60000,60000")
        try:
            verse = "Row, row, row your boat, gently down the stream. Merrily, merrily, merrily, merrily, "
            repetitive = verse + "life is but a dream. " + verse + "life is but a dream. " + verse
            asks = [(repetitive, "latency-critical", None), (PROMPTS[0], "standard", None),
                    (PROMPTS[1], "batch", 600000), (PROMPTS[2], 0, 2)]

            def one(ask):
                prompt, priority, tpot = ask
                body = {"priority": priority, "ignore_eos": True}
                if tpot is not None:
                    body["tpot_ms"] = tpot
                return s.client.completions.create(model=s.model, prompt=prompt, max_tokens=32, temperature=0,
                                                   extra_body=body).choices[0].text
            with concurrent.futures.ThreadPoolExecutor(len(asks)) as pool:
                got = list(pool.map(one, asks))
            for (p, _, _), text in zip(asks, got):
                self.assertEqual(text, generate_alone(p, 32, "--ignore-eos"), p)
            text = urllib.request.urlopen(s.url + "/metrics", timeout=30).read().decode()
            judged = {m.group(1): float(m.group(2)) for m in
                      re.finditer(r'weft_slo_requests_total\{[^}]*slo="(\w+)"\} (\S+)', text)}
            attained = {m.group(1): float(m.group(2)) for m in
                        re.finditer(r'weft_slo_attained_total\{[^}]*slo="(\w+)"\} (\S+)', text)}
            self.assertEqual(judged, {"latency_critical": 2, "standard": 1, "batch": 1})
            self.assertEqual(attained["batch"], 1)  # ten minutes per token
            self.assertLessEqual(attained["latency_critical"], 1)  # 2 ms per token on two cores: missed
            self.assertIn('weft_slo_attainment{model_name="' + s.model + '",slo="batch"} 1', text)
        finally:
            self.assertEqual(s.stop(), 0)

    def test_bad_slo_flags_are_refused(self):
        for flags, says in ((["--slo-tpot-ms", "50,200"], "three targets"),
                            (["--slo-ttft-ms", "50,-1,9"], "three targets"),
                            (["--speculate", "suffix", "--speculate-policy", "fastest"], "slo, cost or every"),
                            (["--scheduling-policy", "sideways"], "slo, priority or fcfs")):
            r = subprocess.run([WEFT, "serve", "--port", "0", *flags], capture_output=True, text=True, timeout=120)
            self.assertNotEqual(r.returncode, 0, flags)
            self.assertIn(says, r.stderr, flags)


class DraftSpeculationTest(unittest.TestCase):
    def test_a_q8_0_copy_served_with_the_q4_1_file_as_its_draft(self):
        with tempfile.TemporaryDirectory() as tmp:
            q8 = os.path.join(tmp, "model.Q8_0.gguf")
            subprocess.run([WEFT, "convert", "--type", "q8_0", "--out", q8], check=True, capture_output=True)
            s = Server("--model", q8, "--speculate", "merged", "--draft-model", "default",
                       "--draft-expansion", "1,1,2,1", "--speculate-policy", "every")
            try:
                def one(p):
                    return s.client.completions.create(model=s.model, prompt=p, max_tokens=24,
                                                       temperature=0).choices[0].text
                with concurrent.futures.ThreadPoolExecutor(3) as pool:
                    got = list(pool.map(one, PROMPTS[:3]))
                for p, text in zip(PROMPTS[:3], got):
                    self.assertEqual(text, generate_alone(p, 24, model=q8), p)
                # Sampling requests take the draft's sampled children with min(1, p/q).
                sampled = s.client.completions.create(model=s.model, prompt=PROMPTS[0], max_tokens=24, temperature=0.8,
                                                      seed=7, extra_body={"ignore_eos": True})
                self.assertEqual(sampled.usage.completion_tokens, 24)
                m = s.metrics()
                self.assertGreater(m["weft_spec_accepted_tokens_total"], 0)
                self.assertGreater(m["weft_spec_mean_accepted_length"], 1.0)
                self.assertGreater(m["weft_spec_seconds_total"], 0)
                self.assertLessEqual(m["weft_spec_acceptance_rate"], 1.0)
            finally:
                self.assertEqual(s.stop(), 0)

    def test_bad_speculation_flags_are_refused(self):
        for flags in (["--speculate", "draft"], ["--speculate", "sideways"],
                      ["--speculate", "draft", "--draft-layers", "2", "--draft-expansion", "1,,2"],
                      ["--speculate", "draft", "--draft-layers", "99"]):
            r = subprocess.run([WEFT, "serve", "--port", "0", *flags], capture_output=True, text=True, timeout=120)
            self.assertNotEqual(r.returncode, 0, flags)
            self.assertIn("draft" if "99" not in flags else "layers", r.stderr, flags)


SMOL = {"layers": 30, "d": 576, "q": 576, "kv": 192, "ffn": 1536, "heads": 9, "kv_heads": 3}
LORA_SHAPES = {"q_proj": ("q", "d"), "k_proj": ("kv", "d"), "v_proj": ("kv", "d"), "o_proj": ("d", "q"),
               "gate_proj": ("ffn", "d"), "up_proj": ("ffn", "d"), "down_proj": ("d", "ffn")}
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
              "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}


def random_lora(seed, modules, rank=8, std=0.05):
    """{(layer, module): (A [rank, in], B [out, rank])} in Hugging Face's row order."""
    import numpy as np
    rng = np.random.default_rng(seed)
    out = {}
    for layer in range(SMOL["layers"]):
        for m in modules:
            rows, cols = (SMOL[k] for k in LORA_SHAPES[m])
            out[(layer, m)] = (rng.normal(0, 1 / cols ** 0.5, (rank, cols)).astype("float32"),
                               rng.normal(0, std, (rows, rank)).astype("float32"))
    return out


def hf_to_gguf(b, heads):
    """llama.cpp's converter's permutation of q/k rows (written here independently of weft)."""
    return b.reshape(heads, 2, b.shape[0] // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def write_peft(path, lora, alpha):
    from safetensors.numpy import save_file
    os.makedirs(path, exist_ok=True)
    tensors = {}
    for (layer, m), (a, b) in lora.items():
        part = "self_attn" if m[0] in "qkvo" else "mlp"
        prefix = f"base_model.model.model.layers.{layer}.{part}.{m}"
        tensors[prefix + ".lora_A.weight"] = a
        tensors[prefix + ".lora_B.weight"] = b
    save_file(tensors, os.path.join(path, "adapter_model.safetensors"), metadata={"format": "pt"})
    rank = next(iter(lora.values()))[0].shape[0]
    with open(os.path.join(path, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
                   "target_modules": sorted({m for _, m in lora}), "bias": "none", "use_rslora": False}, f)


def write_gguf_adapter(path, lora, alpha):
    import gguf
    w = gguf.GGUFWriter(path, "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", alpha)
    for (layer, m), (a, b) in lora.items():
        if m in ("q_proj", "k_proj"):
            b = hf_to_gguf(b, SMOL["heads"] if m == "q_proj" else SMOL["kv_heads"])
        name = f"blk.{layer}.{GGUF_NAMES[m]}.weight"
        w.add_tensor(name + ".lora_a", a)
        w.add_tensor(name + ".lora_b", b)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


class LoraServingTest(unittest.TestCase):
    def post(self, s, path, body, key="k"):
        req = urllib.request.Request(s.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_adapters_from_peft_and_gguf_files_served_side_by_side_and_loaded_at_run_time(self):
        with tempfile.TemporaryDirectory() as tmp:
            attn = random_lora(1, ["q_proj", "k_proj", "v_proj", "o_proj"], std=0.3)
            mlp = random_lora(2, ["gate_proj", "up_proj", "down_proj"], rank=4, std=0.3)
            write_peft(os.path.join(tmp, "attn"), attn, 16)
            write_gguf_adapter(os.path.join(tmp, "attn.gguf"), attn, 16)
            write_gguf_adapter(os.path.join(tmp, "mlp.gguf"), mlp, 8)
            corrupt = os.path.join(tmp, "corrupt.gguf")
            with open(os.path.join(tmp, "mlp.gguf"), "rb") as f:
                data = f.read()
            with open(corrupt, "wb") as f:
                f.write(data[:len(data) // 2])
            s = Server("--lora", "attn=" + os.path.join(tmp, "attn"), "--lora", "mlp=" + os.path.join(tmp, "mlp.gguf"),
                       "--api-key", "k")
            try:
                models = {m.id: m for m in s.client.models.list().data}
                self.assertEqual(set(models), {s.model, "attn", "mlp"})
                self.assertEqual(models["attn"].model_extra["parent"], s.model)

                def one(model, prompt=PROMPTS[0]):
                    r = s.client.completions.create(model=model, prompt=prompt, max_tokens=16, temperature=0,
                                                    extra_body={"ignore_eos": True})
                    self.assertEqual(r.model, model)
                    return r.choices[0].text
                alone = {m: one(m) for m in (s.model, "attn", "mlp")}
                self.assertEqual(alone[s.model], generate_alone(PROMPTS[0], 16, "--ignore-eos"))
                self.assertNotEqual(alone["attn"], alone[s.model])
                self.assertNotEqual(alone["mlp"], alone[s.model])

                # The same adapter as a GGUF file (q and k rows permuted as llama.cpp's converter
                # does) gives the same tokens as the PEFT directory; loaded while requests run.
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    running = [pool.submit(one, m) for m in (s.model, "attn", "mlp") * 2]
                    self.assertEqual(self.post(s, "/v1/load_lora_adapter",
                                               {"lora_name": "attn-gguf", "lora_path": os.path.join(tmp, "attn.gguf")}),
                                     (200, "Success: LoRA adapter 'attn-gguf' added successfully."))
                    running += [pool.submit(one, "attn-gguf")]
                    got = [f.result() for f in running]
                self.assertEqual(got, [alone[m] for m in (s.model, "attn", "mlp") * 2] + [alone["attn"]])

                # Bad commands get errors and change nothing.
                self.assertEqual(self.post(s, "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": corrupt})[0], 400)
                self.assertEqual(self.post(s, "/v1/load_lora_adapter",
                                           {"lora_name": "x", "lora_path": os.path.join(tmp, "nowhere")})[0], 404)
                code, body = self.post(s, "/v1/load_lora_adapter",
                                       {"lora_name": "mlp", "lora_path": os.path.join(tmp, "attn.gguf")})
                self.assertEqual(code, 400)
                self.assertIn("already", body)
                self.assertEqual(self.post(s, "/v1/load_lora_adapter",
                                           {"lora_name": "y", "lora_path": os.path.join(tmp, "attn.gguf")},
                                           key="wrong")[0], 401)
                self.assertEqual(self.post(s, "/v1/unload_lora_adapter", {"lora_name": "mlp"}, key="wrong")[0], 401)

                self.assertEqual(self.post(s, "/v1/unload_lora_adapter", {"lora_name": "mlp"})[0], 200)
                self.assertEqual(self.post(s, "/v1/unload_lora_adapter", {"lora_name": "mlp"})[0], 404)
                with self.assertRaises(openai.NotFoundError):
                    one("mlp")
                self.assertEqual({m.id for m in s.client.models.list().data}, {s.model, "attn", "attn-gguf"})
                self.assertEqual(one("attn", PROMPTS[1]), one("attn-gguf", PROMPTS[1]))
            finally:
                self.assertEqual(s.stop(), 0)

    def test_a_bad_adapter_at_start_is_refused_by_name(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "empty"))
            for flag, want in (("broken=" + os.path.join(tmp, "empty"), "adapter_config.json"),
                               ("=x", "NAME=PATH"), ("model", "NAME=PATH")):
                r = subprocess.run([WEFT, "serve", "--port", "0", "--lora", flag], capture_output=True, text=True,
                                   timeout=120)
                self.assertNotEqual(r.returncode, 0, flag)
                self.assertIn(want, r.stderr, flag)


if __name__ == "__main__":
    unittest.main(verbosity=2)
