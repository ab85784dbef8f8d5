"""weft serve against its own OpenAPI description (serving/openapi.json), fuzzed by schemathesis:
every operation with valid and invalid inputs, checking that the server never answers 5xx or drops
a connection, that every status code, content type and body (server-sent events included) is the
documented one, that invalid input is refused and valid input accepted, that the API key is
enforced, and OpenAI's conventions a schema cannot express (below). The server must still be up
and exit cleanly at the end. Reproducible: deterministic generation (no random seed, no example
database) on one worker. Also, HTTP below what the description covers: HEAD, pipelining.
Usage: serve_fuzz_test.py PATH/TO/weft   (exits 77, "skipped", without schemathesis)

This file is also the hooks module of the schemathesis run it starts (SCHEMATHESIS_HOOKS): it
caps generation lengths, so that the run takes a minute or two rather than hours (a fuzzed
max_tokens may be anything, and chat's default is the whole context). The cap only lowers a valid
max_tokens (or sets one where none is given): the request stays exactly as valid or invalid as it
was generated, and the parsing of the uncapped value has already been tested by then."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

try:
    import schemathesis
except ImportError:  # scripts/setup installs it; without it the test is skipped (below)
    schemathesis = None
hook = schemathesis.hook if schemathesis else lambda f: f
check = schemathesis.check if schemathesis else lambda f: f

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also when loaded as schemathesis' hooks
from weft_server import WeftServer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "serving", "openapi.json")
API_KEY = "fuzz-key"
MAX_TOKENS = 4  # the most tokens a fuzzed request generates
MAX_EXAMPLES = 100  # per operation and phase
STREAM_DONE = "[DONE]"


# ---- schemathesis hooks (run inside the schemathesis process) --------------------------------

def _is_int(v):
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


@hook
def before_call(context, case, kwargs):
    body = case.body
    if case.method != "POST" or not isinstance(body, dict):
        return
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(key)
    if value is None:
        body["max_tokens"] = MAX_TOKENS
    elif _is_int(value) and value > MAX_TOKENS:
        body[key] = MAX_TOKENS


def _parameters(spec_path):
    with open(spec_path) as f:
        schemas = json.load(f)["components"]["schemas"]
    return {k for name in ("CompletionRequest", "ChatCompletionRequest") for k in schemas[name]["properties"]}


PARAMETERS = _parameters(SPEC)


def _sent_body(response):
    try:
        body = json.loads(response.request.body or b"")
    except (ValueError, TypeError):
        return None
    return body if isinstance(body, dict) else None


def _requested_max_tokens(body):
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            return int(body[key])
    return None


def _check_logprobs(logprobs, chat, tokens_expected, offset=0):
    if chat:
        content = logprobs["content"]
        assert len(content) == tokens_expected, f"{len(content)} logprobs for {tokens_expected} tokens"
        for t in content:
            assert bytes(t["bytes"]).decode("utf-8", "replace") == t["token"] or "\ufffd" in t["token"], t
        return
    n = len(logprobs["tokens"])
    assert n == tokens_expected, f"{n} logprobs for {tokens_expected} tokens"
    for k in ("token_logprobs", "top_logprobs", "text_offset"):
        assert len(logprobs[k]) == n, f"logprobs.{k} has {len(logprobs[k])} entries for {n} tokens"
    for token, at in zip(logprobs["tokens"], logprobs["text_offset"]):
        assert at == offset, f"text_offset {logprobs['text_offset']} (from {offset}) for {logprobs['tokens']}"
        offset += len(token)
    return offset


@check
def openai_conventions(ctx, response, case):
    """What OpenAI clients rely on beyond each body's shape: usage adds up and respects max_tokens,
    a stream is one response (one id, one finish, [DONE] last, usage last when asked), logprobs
    cover every token, and an error's `param` names a parameter of the request."""
    path = case.operation.path
    if not path.startswith("/v1/") or case.method != "POST":
        return None
    body = _sent_body(response)
    ctype = response.headers.get("content-type", [""])[0]
    chat = path == "/v1/chat/completions"
    if response.status_code >= 400:
        err = json.loads(response.content)["error"]
        if err["param"] is not None:
            assert err["param"].split(".")[0] in PARAMETERS, f"error.param {err['param']!r} is no parameter"
        if response.status_code == 404:
            assert err["code"] == "model_not_found" and body is not None and body.get("model") is not None
        return None
    if response.status_code != 200:
        return None
    assert body is not None
    limit = _requested_max_tokens(body)
    want_logprobs = body.get("logprobs") is not None and body.get("logprobs") is not False  # 0 asks for them
    if ctype.startswith("application/json"):
        assert not body.get("stream"), "a stream was asked for"
        r = json.loads(response.content)
        u = r["usage"]
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
        assert u["prompt_tokens"] >= 1, u
        choice = r["choices"][0]
        if limit is not None:
            assert u["completion_tokens"] <= limit, (u, limit)
            if choice["finish_reason"] == "length":
                assert u["completion_tokens"] == limit, (u, limit)
        assert (choice["logprobs"] is not None) == want_logprobs, choice["logprobs"]
        if want_logprobs:
            _check_logprobs(choice["logprobs"], chat, u["completion_tokens"])
        return None
    assert ctype.startswith("text/event-stream"), ctype
    assert body.get("stream") is True, "a stream that was not asked for"
    events = [line[len("data: "):] for line in response.content.decode().split("\n\n") if line]
    assert events and events[-1] == STREAM_DONE, f"the stream does not end with [DONE]: {events[-1:]}"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all("error" not in c for c in chunks), chunks
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1, "chunks of different responses"
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if include_usage:
        last = chunks.pop()
        assert last["choices"] == [] and last["usage"] is not None, last
        u = last["usage"]
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
        if limit is not None:
            assert u["completion_tokens"] <= limit, (u, limit)
    for c in chunks:
        assert len(c["choices"]) == 1, c
        if include_usage:
            assert "usage" in c and c["usage"] is None, c
        else:
            assert "usage" not in c, c
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1]), finishes
    if chat:
        assert chunks[0]["choices"][0]["delta"].get("role") == "assistant", chunks[0]
    tokens, offset = 0, 0
    for c in chunks:
        lp = c["choices"][0]["logprobs"]
        if lp is not None:
            assert want_logprobs, c
            tokens += len(lp["content"] if chat else lp["tokens"])
            if not chat:  # offsets go on from chunk to chunk
                offset = _check_logprobs(lp, False, len(lp["tokens"]), offset)
    if include_usage and want_logprobs:
        assert tokens == u["completion_tokens"], (tokens, u)
    return None


@check
class EveryOperationSucceedsSometimes:
    """A run in which some operation only ever failed tested its error paths alone."""

    def __init__(self):
        self.tested, self.succeeded = set(), set()

    def after_response(self, ctx, response, case):
        self.tested.add(case.operation.label)
        if 200 <= response.status_code < 300:
            self.succeeded.add(case.operation.label)

    def after_run(self, ctx):
        never = self.tested - self.succeeded
        assert not never, f"never answered 2xx: {sorted(never)}"


# ---- the test -----------------------------------------------------------------------------------

class ServeFuzzTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = WeftServer(WEFT, "--api-key", API_KEY, "--max-num-seqs", "8", "--kv-cache-memory", "64")

    @classmethod
    def tearDownClass(cls):
        code = cls.s.stop()
        assert code == 0, f"weft serve exited with {code}: {cls.s.stderr[-5000:]}"

    def test_schemathesis_finds_nothing(self):
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as scratch:  # whatever the run writes stays out of the tree
            run = subprocess.run(
                [sys.executable, "-m", "schemathesis.cli", "--no-color", "run", SPEC, "--url", self.s.url,
                 "--header", f"Authorization: Bearer {API_KEY}",
                 "--checks", "all",
                 # Checks for APIs with resources that are created and deleted: none here.
                 "--exclude-checks", "use_after_free,ensure_resource_availability,object_level_authorization",
                 # Loading an adapter succeeds only for files on the server's disk, and these
                 # operations on files and jobs only for ids made earlier: serve_e2e and finetune_e2e
                 # test them with real adapters, files and jobs, good and bad.
                 *[arg for op in ("loadLoraAdapter", "unloadLoraAdapter", "uploadFile", "retrieveFile", "deleteFile",
                                  "createFineTuningJob", "retrieveFineTuningJob", "cancelFineTuningJob",
                                  "listFineTuningEvents") for arg in ("--exclude-operation-id", op)],
                 "--phases", "examples,coverage,fuzzing",
                 "--max-examples", str(MAX_EXAMPLES), "--generation-deterministic",
                 "--workers", "1", "--request-timeout", "60",
                 "--suppress-health-check", "too_slow,filter_too_much", "--max-failures", "20"],
                cwd=scratch, env={**os.environ, "SCHEMATHESIS_HOOKS": os.path.abspath(__file__)},
                capture_output=True, text=True, timeout=600)
        print(run.stdout[-20000:], run.stderr[-5000:], sep="\n", file=sys.stderr)
        print(f"schemathesis {schemathesis.__version__}: {time.monotonic() - started:.0f} s", file=sys.stderr)
        self.assertIsNone(self.s.proc.poll(), "the server died")
        self.assertEqual(run.returncode, 0, "schemathesis found failures (above)")
        self.assertEqual(urllib.request.urlopen(self.s.url + "/health").status, 200)

    # HTTP below what the description covers, on one connection each (its last request closes it).
    def exchange(self, *requests, pause=0.0):
        with socket.create_connection(("127.0.0.1", int(self.s.url.rsplit(":", 1)[1])), timeout=30) as c:
            for r in requests:
                c.sendall(r)
                time.sleep(pause)
            data = b""
            while chunk := c.recv(65536):
                data += chunk
            return data

    def test_head_answers_headers_only(self):
        data = self.exchange(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n",
                             b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, rest = data.split(b"\r\n\r\n", 1)
        self.assertIn(b"200 OK", head)
        self.assertIn(b"Content-Length: 15", head)
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 OK"), rest[:40])  # no body before the next response
        self.assertTrue(rest.endswith(b'{"status":"ok"}'), rest[-40:])
        data = self.exchange(b"HEAD /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertIn(b"401 Unauthorized", data)
        self.assertTrue(data.endswith(b"\r\n\r\n"), data[-40:])

    def test_request_pipelined_during_generation_is_answered(self):
        body = json.dumps({"prompt": "Hello", "max_tokens": 24, "ignore_eos": True})
        data = self.exchange(
            f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}".encode(),
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", pause=0.1)
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2, data[-200:])
        self.assertTrue(data.endswith(b'{"status":"ok"}'), data[-100:])


if __name__ == "__main__":
    WEFT = sys.argv.pop(1) if len(sys.argv) > 1 else "build/apps/weft"
    if schemathesis is None:
        print("serve_fuzz_test: skipped, missing schemathesis", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
