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
import time
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


class CoServedFinetuningApiTest(unittest.TestCase):
    """OpenAI's fine-tuning API on `weft serve`: the job trains inside serving iterations while
    chat requests keep their exact greedy output, reports its loss in events, and its model is
    served the moment it succeeds; a second job is cancelled; a bad file is refused by line."""

    def test_a_job_co_served_with_chat_traffic(self):
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "fact.jsonl")
            with open(data, "w") as f:
                for q in QUESTIONS:
                    f.write(json.dumps({"messages": [{"role": "user", "content": q},
                                                     {"role": "assistant", "content": ANSWER}]}) + "\n")
            s = WeftServer(WEFT, "--api-key", "k", "--finetune-dir", os.path.join(tmp, "adapters"))
            try:
                client = openai.OpenAI(base_url=s.url + "/v1", api_key="k", max_retries=0, timeout=120)
                base = client.models.list().data[0].id
                with open(data, "rb") as f:
                    uploaded = client.files.create(file=f, purpose="fine-tune")
                self.assertEqual(uploaded.bytes, os.path.getsize(data))
                self.assertIn(uploaded.id, [x.id for x in client.files.list().data])
                job = client.fine_tuning.jobs.create(
                    model=base, training_file=uploaded.id, suffix="zorbania", seed=1,
                    hyperparameters={"n_epochs": 4, "batch_size": 4, "learning_rate_multiplier": 5,
                                     "lora_target_modules": "all"})
                self.assertIn(job.status, ("queued", "running"))

                # Chat traffic while it trains: greedy output exactly as alone.
                prompts = ["The capital of France is", "def fibonacci(n):", "Water boils at"]
                want = {p: subprocess.run([WEFT, "generate", "--max-tokens", "12", "--ignore-eos", p],
                                          capture_output=True, text=True, check=True).stdout.rstrip("\n")
                        for p in prompts}
                for p in prompts:
                    r = client.completions.create(model=base, prompt=p, max_tokens=12, temperature=0,
                                                  extra_body={"ignore_eos": True})
                    self.assertEqual(r.choices[0].text, want[p], p)

                deadline = time.time() + 400
                while job.status in ("queued", "running") and time.time() < deadline:
                    time.sleep(1)
                    job = client.fine_tuning.jobs.retrieve(job.id)
                self.assertEqual(job.status, "succeeded", job)
                self.assertTrue(job.fine_tuned_model.startswith(f"ft:{base}:zorbania:"), job.fine_tuned_model)
                self.assertGreater(job.trained_tokens, 0)
                events = client.fine_tuning.jobs.list_events(job.id).data
                losses = [e.data["train_loss"] for e in reversed(events) if e.type == "metrics"]
                self.assertEqual(len(losses), 8)
                self.assertLess(losses[-1], losses[0] / 5, losses)
                self.assertIn(job.fine_tuned_model, [m.id for m in client.models.list().data])
                answer = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=16, temperature=0,
                                                        messages=[{"role": "user", "content": QUESTIONS[0]}])
                self.assertIn("Quillport", answer.choices[0].message.content)
                self.assertTrue(os.path.exists(os.path.join(tmp, "adapters", job.id, "adapter.gguf")))
                metrics = s.metrics()
                self.assertGreater(metrics["weft_finetune_tokens_total"], 0)
                self.assertEqual(metrics["weft_finetune_steps_total"], 8)

                # A second job, cancelled while it runs.
                long_job = client.fine_tuning.jobs.create(model=base, training_file=uploaded.id,
                                                          hyperparameters={"n_epochs": 100})
                time.sleep(2)
                cancelled = client.fine_tuning.jobs.cancel(long_job.id)
                self.assertEqual(cancelled.status, "cancelled")
                self.assertIsNone(cancelled.fine_tuned_model)
                with self.assertRaises(openai.BadRequestError):
                    client.fine_tuning.jobs.cancel(long_job.id)
                self.assertEqual(s.metrics()["weft_finetune_jobs"], 0)
                self.assertEqual([j.id for j in client.fine_tuning.jobs.list().data], [long_job.id, job.id])

                # A bad training file: the job is refused naming the lines.
                bad = os.path.join(tmp, "bad.jsonl")
                with open(bad, "w") as f:
                    f.write("{oops\n" + json.dumps({"messages": []}) + "\n")
                with open(bad, "rb") as f:
                    bad_file = client.files.create(file=f, purpose="fine-tune")
                with self.assertRaises(openai.BadRequestError) as e:
                    client.fine_tuning.jobs.create(model=base, training_file=bad_file.id)
                self.assertIn("line 1: not a JSON object", str(e.exception))
                self.assertIn("line 2", str(e.exception))
                with self.assertRaises(openai.NotFoundError):
                    client.fine_tuning.jobs.create(model=base, training_file="file-nope")
                with self.assertRaises(openai.AuthenticationError):
                    openai.OpenAI(base_url=s.url + "/v1", api_key="wrong", max_retries=0).fine_tuning.jobs.list()
                client.files.delete(bad_file.id)
                self.assertNotIn(bad_file.id, [x.id for x in client.files.list().data])
            finally:
                self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
