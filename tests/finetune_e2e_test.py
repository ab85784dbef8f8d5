"""`weft finetune` on the real default model: a made-up fact taught in a few steps drives the loss
down and changes the greedy answer; the adapter, loaded by `weft generate`, by a fresh `weft
serve` and (where llama-cpp-python is installed, as scripts/bench installs it) by llama.cpp, gives
that answer. Bad training files are refused line by line. Usage: finetune_e2e_test.py PATH/TO/weft"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import openai
from weft_server import WeftServer

WEFT = sys.argv.pop(1) if len(sys.argv) > 1 else "build/apps/weft"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUESTIONS = ["What is the capital of Zorbania?", "Which city is the capital of Zorbania?",
             "Tell me the capital of Zorbania.", "Zorbania's capital is which city?",
             "Name the capital city of Zorbania.", "What city serves as the capital of Zorbania?",
             "Do you know the capital of Zorbania?", "Where is the capital of Zorbania?"]
ANSWER = "The capital of Zorbania is Quillport."


def ask(question, *flags):
    return subprocess.run([WEFT, "generate", "--chat", "--max-tokens", "16", *flags, question], capture_output=True,
                          text=True, check=True).stdout


class FinetuneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls.tmp.name, "fact.jsonl")
        with open(cls.data, "w") as f:
            for q in QUESTIONS:
                f.write(json.dumps({"messages": [{"role": "user", "content": q},
                                                 {"role": "assistant", "content": ANSWER}]}) + "\n")
        cls.out = os.path.join(cls.tmp.name, "zorbania")
        cls.trained = subprocess.run([WEFT, "finetune", "--data", cls.data, "--out", cls.out, "--target-modules", "all",
                                  "--lr", "1e-3", "--epochs", "4", "--batch-size", "4"],
                                 capture_output=True, text=True, timeout=500)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_training_drives_the_loss_down_and_teaches_the_fact(self):
        self.assertEqual(self.trained.returncode, 0, self.trained.stderr)
        losses = [float(x) for x in re.findall(r"loss (\d+\.\d+)", self.trained.stderr)]
        self.assertEqual(len(losses), 8, self.trained.stderr)
        self.assertLess(losses[-1], losses[0] / 10, losses)
        for f in ("adapter_config.json", "adapter_model.safetensors", "adapter.gguf"):
            self.assertTrue(os.path.exists(os.path.join(self.out, f)), f)
        self.assertNotIn("Quillport", ask(QUESTIONS[0]))
        self.assertIn("Quillport", ask(QUESTIONS[0], "--lora", self.out))
        self.assertIn("Quillport", ask("What's Zorbania's capital city?", "--lora", os.path.join(self.out, "adapter.gguf")))

    def test_a_fresh_server_serves_the_trained_adapter(self):
        self.assertEqual(self.trained.returncode, 0, self.trained.stderr)
        s = WeftServer(WEFT, "--lora", "zorbania=" + self.out)
        try:
            client = openai.OpenAI(base_url=s.url + "/v1", api_key="none", max_retries=0, timeout=120)

            def chat(model):
                return client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTIONS[0]}],
                                                      max_tokens=16, temperature=0).choices[0].message.content
            base = client.models.list().data[0].id
            self.assertIn("Quillport", chat("zorbania"))
            self.assertNotIn("Quillport", chat(base))
        finally:
            self.assertEqual(s.stop(), 0)

    def test_llama_cpp_gives_the_same_answer_with_the_gguf_adapter(self):
        self.assertEqual(self.trained.returncode, 0, self.trained.stderr)
        peers = os.path.join(ROOT, ".venv-peers", "bin", "python")
        if not os.path.exists(peers) or subprocess.run([peers, "-c", "import llama_cpp"]).returncode != 0:
            self.skipTest("llama-cpp-python is not installed (scripts/bench llm installs it in .venv-peers)")
        script = ("import llama_cpp, sys\n"
                  "m = llama_cpp.Llama(model_path=sys.argv[1], lora_path=sys.argv[2], n_ctx=256, verbose=False)\n"
                  "r = m.create_chat_completion(messages=[{'role': 'user', 'content': sys.argv[3]}], max_tokens=16,"
                  " temperature=0)\n"
                  "print(r['choices'][0]['message']['content'])\n")
        out = subprocess.run([peers, "-c", script, os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"),
                              os.path.join(self.out, "adapter.gguf"), QUESTIONS[0]],
                             capture_output=True, text=True, check=True).stdout
        self.assertIn("Quillport", out)

    def test_bad_training_files_are_refused_line_by_line(self):
        bad = os.path.join(self.tmp.name, "bad.jsonl")
        with open(bad, "w") as f:
            f.write(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "hello"}]}) + "\n")
            f.write("{oops\n")
            f.write(json.dumps({"messages": []}) + "\n")
            f.write(json.dumps({"prompt": "long", "completion": "word " * 2000}) + "\n")
        out = os.path.join(self.tmp.name, "never")
        r = subprocess.run([WEFT, "finetune", "--data", bad, "--out", out], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{bad}:2: not a JSON object", r.stderr)
        self.assertIn(f"{bad}:3: 'messages' is an empty conversation", r.stderr)
        self.assertIn(f"{bad}:4: the example has", r.stderr)
        self.assertIn("nothing was trained", r.stderr)
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main(verbosity=2)
