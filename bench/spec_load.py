"""Client of the speculative decoding benchmark: the sessions of a workload (spec_workloads.py) at a
fixed concurrency against an OpenAI-compatible server, greedy, streaming /v1/chat/completions.

  spec_load.py run --url URL --label NAME [--workloads chat,agentic] [--concurrency 1,16] [--scale 1]
                   --texts replies.json > loads.jsonl
  spec_load.py compare BASE.jsonl BASE.json OTHER.jsonl OTHER.json [--must-match]

`run` prints one JSON line per (workload, concurrency): decode tokens/s (per stream, after each
reply's first token), output tokens/s (all completion tokens over the load's wall time), TPOT and
TTFT (p50, ms) and, when the server is weft (its /metrics read before and
after), the acceptance rate, mean tokens per verify step and speculation time per step and per
speculated token. Every reply is saved to --texts. `compare` prints the usual {"bench", ..., "ratio"}
lines of OTHER against BASE and checks the replies are the same text; with --must-match any
difference fails (exit 1) after naming the first one.

Sessions: 2 x concurrency x scale of them (at least 6), seeded by the concurrency, so two servers
see the same sessions and each load its own.
"""
import argparse
import asyncio
import json
import re
import sys
import time
import urllib.request

import aiohttp

from serve_load import percentile, streamed
from spec_workloads import sessions


async def one_turn(http, url, model, messages, max_tokens):
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    return await streamed(http, url, "/v1/chat/completions", body,
                          lambda choice: (choice.get("delta") or {}).get("content"))


async def run_session(http, url, model, turns):
    messages, results = [], []
    if turns[0].get("system"):
        messages.append({"role": "system", "content": turns[0]["system"]})
    for turn in turns:
        messages.append({"role": "user", "content": turn["user"]})
        r = await one_turn(http, url, model, list(messages), turn["max_tokens"])
        results.append(r)
        if "error" in r:
            break
        messages.append({"role": "assistant", "content": r["text"]})
    return results


def weft_counters(url):
    """weft's speculation counters, or None from a server without them."""
    try:
        text = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    except Exception:
        return None
    out = {}
    for name in ("weft_spec_draft_tokens_total", "weft_spec_accepted_tokens_total", "weft_spec_verify_steps_total",
                 "weft_spec_seconds_total", "weft_generation_tokens_total"):
        m = re.search(r"^" + name + r"\{[^}]*\} (\S+)$", text, re.M)
        if not m:
            return None
        out[name] = float(m.group(1))
    return out


async def run_load(url, model, label, workload, concurrency, scale):
    n = max(6, int(round(2 * concurrency * scale)))
    work = sessions(workload, n, seed=concurrency)
    before = weft_counters(url)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600), connector=connector) as http:
        gate = asyncio.Semaphore(concurrency)

        async def gated(turns):
            async with gate:
                return await run_session(http, url, model, turns)

        start = time.perf_counter()
        results = await asyncio.gather(*(gated(t) for t in work))
        duration = time.perf_counter() - start
    after = weft_counters(url)
    turns = [r for session in results for r in session]
    ok = [r for r in turns if "error" not in r]
    tokens = sum(r["tokens"] for r in ok)
    tpot = [(r["end"] - r["stamps"][0]) * 1e3 / (r["tokens"] - 1) for r in ok if r["tokens"] > 1 and r["stamps"]]
    ttft = [(r["stamps"][0] - r["start"]) * 1e3 for r in ok if r["stamps"]]
    # Per stream, after the first token: what a user sees while a reply is written.
    decoded = sum(r["tokens"] - 1 for r in ok if r["tokens"] > 1 and r["stamps"])
    decode_s = sum(r["end"] - r["stamps"][0] for r in ok if r["tokens"] > 1 and r["stamps"])
    line = {"server": label, "workload": workload, "load": f"concurrency_{concurrency}", "sessions": n,
            "requests": len(turns), "errors": len(turns) - len(ok), "duration_s": round(duration, 3),
            "output_tokens": tokens, "output_tokens_per_s": round(tokens / duration, 2),
            "decode_tokens_per_s": round(decoded / decode_s, 2) if decode_s > 0 else None,
            "tpot_p50_ms": round(percentile(tpot, 50), 2) if tpot else None,
            "ttft_p50_ms": round(percentile(ttft, 50), 2) if ttft else None}
    if before and after:
        d = {k: after[k] - before[k] for k in after}
        drafted, accepted, steps = (d["weft_spec_draft_tokens_total"], d["weft_spec_accepted_tokens_total"],
                                    d["weft_spec_verify_steps_total"])
        line["acceptance_rate"] = round(accepted / drafted, 3) if drafted else None
        line["tokens_per_verify_step"] = round(1 + accepted / steps, 3) if steps else None
        line["spec_ms_per_step"] = round(d["weft_spec_seconds_total"] * 1e3 / steps, 3) if steps else None
        line["spec_us_per_drafted_token"] = round(d["weft_spec_seconds_total"] * 1e6 / drafted, 2) if drafted else None
        line["spec_share_of_time"] = round(d["weft_spec_seconds_total"] / duration, 4)
    errors = [r["error"] for r in turns if "error" in r]
    if errors:
        line["first_error"] = errors[0]
    texts = [[r.get("text") for r in session] for session in results]
    return line, texts


async def run_all(args):
    async with aiohttp.ClientSession() as http:
        async with http.get(args.url + "/v1/models") as resp:
            model = args.model or (await resp.json())["data"][0]["id"]
        await one_turn(http, args.url, model, [{"role": "user", "content": "Hello"}], 8)  # warm-up
    texts = {}
    for workload in [w for w in args.workloads.split(",") if w]:
        for c in [int(c) for c in args.concurrency.split(",") if c]:
            line, replies = await run_load(args.url, model, args.label, workload, c, args.scale)
            texts[f"{workload}/concurrency_{c}"] = replies
            print(json.dumps(line), flush=True)
    with open(args.texts, "w") as f:
        json.dump(texts, f)


def compare(base_lines, base_texts, other_lines, other_texts, must_match):
    def load(path):
        with open(path) as f:
            return {(d["workload"], d["load"]): d for d in map(json.loads, filter(str.strip, f))}

    base, other = load(base_lines), load(other_lines)
    with open(base_texts) as f:
        bt = json.load(f)
    with open(other_texts) as f:
        ot = json.load(f)
    first_difference = None
    for key, o in other.items():
        b = base.get(key)
        name = f"{key[0]}/{key[1]}"
        a_texts, b_texts = ot.get(name, []), bt.get(name, [])
        pairs = [(x, y) for sa, sb in zip(a_texts, b_texts) for x, y in zip(sa, sb)]
        same = sum(1 for x, y in pairs if x == y)
        if first_difference is None and (same != len(pairs) or len(a_texts) != len(b_texts)):
            for i, (x, y) in enumerate(pairs):
                if x != y:
                    first_difference = (name, i, y, x)
                    break
        for key_name, unit, higher in (("decode_tokens_per_s", "tokens/s", True), ("output_tokens_per_s", "tokens/s", True),
                                       ("tpot_p50_ms", "ms", False)):
            v, bv = o.get(key_name), b.get(key_name) if b else None
            ratio = round(v / bv if higher else bv / v, 3) if v and bv else None
            print(json.dumps({"bench": f"spec_{key[0]}_{key[1]}_{key_name}", "unit": unit, "weft": v,
                              "label": o["server"], "baseline": b["server"] if b else "none", "baseline_value": bv,
                              "ratio": ratio, "same_replies": f"{same}/{len(pairs)}",
                              **{k: o[k] for k in ("acceptance_rate", "tokens_per_verify_step", "spec_ms_per_step",
                                                   "spec_us_per_drafted_token", "spec_share_of_time") if k in o}}))
    if first_difference:
        name, i, want, got = first_difference
        print(f"replies differ in {name}, turn {i}:\n--- {base_lines}\n{want!r}\n--- {other_lines}\n{got!r}",
              file=sys.stderr)
        if must_match:
            return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--url", required=True)
    run.add_argument("--label", required=True)
    run.add_argument("--model", default=None)
    run.add_argument("--workloads", default="chat,agentic")
    run.add_argument("--concurrency", default="1,16")
    run.add_argument("--scale", type=float, default=1.0)
    run.add_argument("--texts", required=True)
    cmp = sub.add_parser("compare")
    for name in ("base_lines", "base_texts", "other_lines", "other_texts"):
        cmp.add_argument(name)
    cmp.add_argument("--must-match", action="store_true")
    args = parser.parse_args()
    if args.command == "run":
        asyncio.run(run_all(args))
        return 0
    return compare(args.base_lines, args.base_texts, args.other_lines, args.other_texts, args.must_match)


if __name__ == "__main__":
    sys.exit(main())
