"""Client of the multi-SLO benchmark: requests of three latency classes arriving as a Poisson
process against an OpenAI-compatible server, streaming /v1/chat/completions, greedy.

  slo_load.py unloaded --url URL                         # {"tpot_ms": .., "ttft_ms": ..} of a request alone
  slo_load.py run --url URL --policy NAME --rate R --seed S --unloaded FILE [--targets] [--requests N]
  slo_load.py summary RESULTS.jsonl --plot attainment.png   # the comparison lines and the plot

Classes (shares of the requests, TPOT targets as multiples of the unloaded time per output token,
measured at the start of the run): latency-critical 30% at 1.2x, standard 40% at 2x, batch 30% at
5x; every class's TTFT target is 20x the unloaded TTFT (the queueing a class tolerates before its
first token), so TPOT decides. A request attains its SLO when its first token came within the TTFT
target and its mean time per output token after the first, (end - first token) / (tokens - 1), within
the TPOT target. With --targets each request names its class and targets (`priority`, `tpot_ms`,
`ttft_ms`); without, the server sees one class (FCFS continuous batching) and attainment is judged
the same way.

Prompts: the first turn of the agentic sessions of spec_workloads.py (a code module to edit and
reprint, people to extract as JSON lines, an agent's tool call) and first human turns of ShareGPT,
half each, output capped at --max-tokens; the same requests, arrival times and classes for every
policy at a given rate and seed.

`run` prints one JSON line per (policy, rate): attainment per class and overall, violations (requests
that missed), goodput (output tokens/s of requests that attained, over the load's duration) and
token throughput. Baselines: fcfs, priority, fixed-4 and fixed-tree-16 (scripts/bench says what each
runs); slo-no-spec and throughput-spec are weft's own scheduler without speculation and with
throughput-only speculation, ablations rather than baselines. `summary` prints, for AdaServe
against the best baseline, the usual
{"bench", "weft", "baseline", "baseline_value", "ratio"} lines: violations at the highest rate where
the best baseline still attains >= 80% overall (ratio = baseline's / AdaServe's violations), and
goodput at that rate (ratio = AdaServe's / baseline's).
"""
import argparse
import asyncio
import json
import random
import statistics
import sys
import time

import aiohttp

from serve_load import sample_prompts, streamed
from spec_workloads import agentic_sessions

BASELINES = ("fcfs", "priority", "fixed-4", "fixed-tree-16")  # the others are weft's own (ablations)
CLASSES = [("latency-critical", 0.3, 1.2), ("standard", 0.4, 2.0), ("batch", 0.3, 5.0)]
TTFT_FACTOR = 20.0


def workload(n, seed, max_tokens):
    rng = random.Random(seed)
    agentic = [s[0] for s in agentic_sessions(n, seed)]
    chat = sample_prompts(n, seed, 1500, max_tokens)
    out = []
    for i in range(n):
        if i % 2 == 0:
            turn = agentic[i]
            messages = [{"role": "system", "content": turn["system"]}, {"role": "user", "content": turn["user"]}]
            tokens = min(max_tokens, turn["max_tokens"])
        else:
            prompt, tokens = chat[i]
            messages = [{"role": "user", "content": prompt}]
        x, cls = rng.random(), 0
        while cls + 1 < len(CLASSES) and x >= sum(c[1] for c in CLASSES[:cls + 1]):
            cls += 1
        out.append({"messages": messages, "max_tokens": tokens, "cls": cls})
    return out


async def one(http, url, model, req, targets, unloaded):
    body = {"model": model, "messages": req["messages"], "max_tokens": req["max_tokens"], "temperature": 0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    name, _, factor = CLASSES[req["cls"]]
    tpot_ms = factor * unloaded["tpot_ms"]
    ttft_ms = TTFT_FACTOR * unloaded["ttft_ms"]
    if targets:
        body.update({"priority": name, "tpot_ms": tpot_ms, "ttft_ms": ttft_ms})
    r = await streamed(http, url, "/v1/chat/completions", body, lambda c: (c.get("delta") or {}).get("content"))
    if "error" in r:
        return {"cls": req["cls"], "ok": False, "tokens": 0, "error": r["error"]}
    ttft = (r["stamps"][0] - r["start"]) * 1e3 if r["stamps"] else float("inf")
    n = r["tokens"]
    tpot = (r["end"] - r["stamps"][0]) * 1e3 / (n - 1) if n > 1 and r["stamps"] else 0.0
    return {"cls": req["cls"], "ok": ttft <= ttft_ms and tpot <= tpot_ms, "tokens": n, "ttft_ms": ttft,
            "tpot_ms": tpot}


async def model_name(http, url):
    async with http.get(url + "/v1/models") as resp:
        return (await resp.json())["data"][0]["id"]


async def unloaded(url):
    async with aiohttp.ClientSession() as http:
        model = await model_name(http, url)
        reqs = workload(6, 1000, 128)
        tpots, ttfts = [], []
        for req in reqs:  # one at a time: nothing else running
            body = {"model": model, "messages": req["messages"], "max_tokens": req["max_tokens"], "temperature": 0,
                    "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
            r = await streamed(http, url, "/v1/chat/completions", body,
                               lambda c: (c.get("delta") or {}).get("content"))
            if "error" in r or len(r["stamps"]) < 2:
                raise SystemExit(f"unloaded request failed: {r.get('error')}")
            ttfts.append((r["stamps"][0] - r["start"]) * 1e3)
            tpots.append((r["end"] - r["stamps"][0]) * 1e3 / (r["tokens"] - 1))
        return {"tpot_ms": statistics.median(tpots), "ttft_ms": statistics.median(ttfts)}


def poisson_arrivals(n, rate, seed):
    """Arrival times (seconds from the start) of n requests at `rate` per second."""
    rng = random.Random(seed + 1)
    arrivals, t = [], 0.0
    for _ in range(n):
        t += rng.expovariate(rate)
        arrivals.append(t)
    return arrivals


async def run(args):
    with open(args.unloaded) as f:
        base = json.load(f)
    reqs = workload(args.requests, args.seed, args.max_tokens)
    arrivals = poisson_arrivals(len(reqs), args.rate, args.seed)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
        model = await model_name(http, args.url)
        start = time.perf_counter()

        async def at(delay, req):
            await asyncio.sleep(max(0.0, start + delay - time.perf_counter()))
            return await one(http, args.url, model, req, args.targets, base)

        results = await asyncio.gather(*(at(d, r) for d, r in zip(arrivals, reqs)))
        duration = time.perf_counter() - start
    line = {"bench": "slo_load", "policy": args.policy, "rate": args.rate, "requests": len(results),
            "duration_s": round(duration, 2), "unloaded_tpot_ms": round(base["tpot_ms"], 2)}
    for i, (name, _, factor) in enumerate(CLASSES):
        mine = [r for r in results if r["cls"] == i]
        line[f"attainment_{name}"] = round(sum(r["ok"] for r in mine) / len(mine), 3) if mine else None
        tp = [r["tpot_ms"] for r in mine if "tpot_ms" in r]
        line[f"tpot_p50_ms_{name}"] = round(statistics.median(tp), 2) if tp else None
    ok = [r for r in results if r["ok"]]
    line["attainment"] = round(len(ok) / len(results), 3)
    line["violations"] = len(results) - len(ok)
    line["goodput_tok_s"] = round(sum(r["tokens"] for r in ok) / duration, 2)
    line["throughput_tok_s"] = round(sum(r["tokens"] for r in results) / duration, 2)
    line["errors"] = sum(1 for r in results if "error" in r)
    print(json.dumps(line), flush=True)


def summary(path, plot):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    rows = [r for r in rows if r.get("bench") == "slo_load"]
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    by = {(r["policy"], r["rate"]): r for r in rows}
    rates = sorted({r["rate"] for r in rows})
    ours = "adaserve"
    baselines = [p for p in policies if p in BASELINES]
    best, best_rate = None, None
    for rate in rates:  # the highest rate where some baseline still attains >= 80%
        cands = [(by[(p, rate)]["attainment"], p) for p in baselines if (p, rate) in by]
        good = [c for c in cands if c[0] >= 0.8]
        if good:
            best_rate, best = rate, max(good)[1]
    if best is not None and (ours, best_rate) in by:
        a, b = by[(ours, best_rate)], by[(best, best_rate)]
        print(json.dumps({"bench": f"slo_violations_at_{best_rate}_req_s", "unit": "violations (fewer is better)",
                          "weft": a["violations"], "baseline": best, "baseline_value": b["violations"],
                          "ratio": round(b["violations"] / max(a["violations"], 1e-9), 2) if a["violations"] else
                          (float("inf") if b["violations"] else 1.0)}))
        print(json.dumps({"bench": f"slo_goodput_at_{best_rate}_req_s", "unit": "tokens/s of requests on target",
                          "weft": a["goodput_tok_s"], "baseline": best, "baseline_value": b["goodput_tok_s"],
                          "ratio": round(a["goodput_tok_s"] / max(b["goodput_tok_s"], 1e-9), 2)}))
    best_goodput = {p: max(by[(p, r)]["goodput_tok_s"] for r in rates if (p, r) in by) for p in policies}
    if ours in best_goodput and baselines:
        peer = max(baselines, key=lambda p: best_goodput[p])
        print(json.dumps({"bench": "slo_peak_goodput", "unit": "tokens/s of requests on target, best rate",
                          "weft": best_goodput[ours], "baseline": peer, "baseline_value": best_goodput[peer],
                          "ratio": round(best_goodput[ours] / max(best_goodput[peer], 1e-9), 2)}))
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = ["attainment"] + [f"attainment_{c[0]}" for c in CLASSES]
        fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), sharey=True)
        for ax, key in zip(axes, names):
            for p in policies:
                xs = [r for r in rates if (p, r) in by]
                ax.plot(xs, [by[(p, r)][key] for r in xs], marker="o", label=p)
            ax.set_title(key.replace("attainment_", "") if key != "attainment" else "all classes")
            ax.set_xlabel("requests/s")
            ax.set_ylim(0, 1.05)
        axes[0].set_ylabel("SLO attainment")
        axes[-1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("unloaded")
    u.add_argument("--url", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--policy", required=True)
    r.add_argument("--rate", type=float, required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--requests", type=int, default=40)
    r.add_argument("--max-tokens", type=int, default=128)
    r.add_argument("--unloaded", required=True)
    r.add_argument("--targets", action="store_true")
    s = sub.add_parser("summary")
    s.add_argument("results")
    s.add_argument("--plot")
    args = ap.parse_args()
    if args.cmd == "unloaded":
        print(json.dumps(asyncio.run(unloaded(args.url))))
    elif args.cmd == "run":
        asyncio.run(run(args))
    else:
        summary(args.results, args.plot)


if __name__ == "__main__":
    sys.exit(main())
