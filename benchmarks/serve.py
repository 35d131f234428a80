"""Serving the tuned model: transformers (fp32, bf16) vs llama.cpp (f16, Q8_0, Q4_1), side by side in one run.

Goal (issue 14): the served tuned model decodes >= 6x the transformers path's tokens/s (notebook 07's
`generate` in fp32, batch 1) with its sentiment accuracy inside the transformers model's 95 % interval.
The ratio is printed last.

What is measured, all in this one run, on this machine:
- batch 1 (one person chatting): time to first token and decode tokens/s of a 128-token answer to the
  FAQ question of notebook 07 (end-of-turn banned, so every run does the same work); median of
  `--repeats` runs after one warm-up. transformers runs `helpers.deploy.chat.stream_tokens` in a child
  process per precision; llama.cpp is reached through its OpenAI-compatible server on loopback, streamed
  with the `openai` client, so its numbers include HTTP (what an application sees);
- memory: the resident memory of each child (transformers) or server (llama.cpp) after its runs;
- quality: greedy answers to `--reviews` held-out reviews (sentiment, Wilson 95 % interval) and `--faq`
  held-out FAQ questions per format, scored by `helpers.instruct.scoring`;
- concurrency: `--clients` clients sending `--requests` short sentiment requests in total to the server
  of the fastest format whose accuracy stays inside the fp32 interval; p50/p95 latency, failures.

The llama.cpp processes never inherit OMP_WAIT_POLICY (helpers.deploy.runtime.runtime_env). The
machines this was written on have 2 cores shared with other work: compare ratios within one run only.

Run:  cd /work/main && .venv/bin/python benchmarks/serve.py [--reviews 200 --faq 60 --requests 200]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import psutil
import torch

from helpers.core.data import test_set
from helpers.course.catchup import tuned_model
from helpers.deploy.chat import stream_tokens
from helpers.deploy.gguf import export_gguf
from helpers.deploy.runtime import default_threads
from helpers.deploy.serve import LlamaServer, ServerConfig, answer_all, client, load_test, measure_stream
from helpers.instruct.instructions import FAQ_SYSTEM, load_faq, sentiment_prompt
from helpers.instruct.scoring import faq_accuracy, score_faq, score_sentiment, sentiment_accuracy
from helpers.measure.intervals import wilson_interval
from helpers.measure.latency import measure

GOAL = 6.0  # llama.cpp's decode tokens/s over transformers fp32's, at equal quality (issue 14)
QUESTION = [{"role": "system", "content": FAQ_SYSTEM},  # notebook 07's question
            {"role": "user", "content": "How much is shipping within Italy?"}]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def sentiment_chats(reviews: pd.DataFrame) -> list[list[dict]]:
    """The held-out reviews as the chat an application would send (the same text scoring.prompt_ids renders)."""
    return [[{"role": "user", "content": sentiment_prompt(t)}] for t in reviews["text"]]


def faq_chats(items) -> list[list[dict]]:
    return [[{"role": "system", "content": FAQ_SYSTEM}, {"role": "user", "content": i.question}] for i in items]


def transformers_worker(dtype: str, args: argparse.Namespace) -> dict:
    """One precision of the transformers path, measured in this (child) process."""
    tuned = tuned_model()
    model = tuned.model.merge_and_unload().to(DTYPES[dtype]).eval()
    tok = tuned.tokenizer
    ids = list(tok.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=True)["input_ids"])
    stats = measure(lambda: stream_tokens(model, ids, args.new_tokens, stop_ids=[]), args.repeats,
                    prompt_tokens=len(ids))
    sentiment = sentiment_accuracy(model, tok, test_set(args.reviews))
    faq = faq_accuracy(model, tok, load_faq("heldout", args.faq), max_new_tokens=args.faq_tokens)
    return {"first_token_s": stats.first_token_seconds, "tokens_per_s": stats.tokens_per_second,
            "memory_mb": psutil.Process().memory_info().rss / 2**20,  # resident now, after the runs
            "sentiment": [sentiment.correct, sentiment.n], "faq": [faq.correct, faq.n],
            "eos_ids": [int(i) for i in ([tok.eos_token_id] if tok.eos_token_id is not None else [])]}


def run_transformers(dtype: str, argv: list[str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, __file__, *argv, "--worker", dtype, "--worker-out", out.name], check=True)
        return json.loads(Path(out.name).read_text())


def run_llama(path: Path, args: argparse.Namespace, eos_ids: list[int]) -> dict:
    """One GGUF through the OpenAI-compatible server: batch-1 speed, memory, quality."""
    reviews, items = test_set(args.reviews), load_faq("heldout", args.faq)
    with LlamaServer(ServerConfig(path, threads=args.threads)) as server:
        api = client(server.base_url)
        stats = measure_stream(api, QUESTION, args.new_tokens, eos_ids, args.repeats)
        sentiment = score_sentiment(answer_all(api, sentiment_chats(reviews), 4), list(reviews["label"]))
        faq = score_faq(answer_all(api, faq_chats(items), args.faq_tokens), items)
        return {"first_token_s": stats.first_token_seconds, "tokens_per_s": stats.tokens_per_second,
                "memory_mb": server.memory_mb(),
                "sentiment": [sentiment.correct, sentiment.n], "faq": [faq.correct, faq.n],
                "startup_s": server.startup_seconds, "file_mb": path.stat().st_size / 1e6}


def table(rows: dict[str, dict]) -> pd.DataFrame:
    out = {}
    for name, r in rows.items():
        iv = wilson_interval(*r["sentiment"])
        out[name] = {"first token (s)": round(r["first_token_s"], 3), "tokens/s": round(r["tokens_per_s"], 1),
                     "memory (MB)": round(r["memory_mb"]), "sentiment acc [95 % CI]": str(iv),
                     "FAQ acc": f"{r['faq'][0]}/{r['faq'][1]}"}
    return pd.DataFrame(out).T


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reviews", type=int, default=200)
    parser.add_argument("--faq", type=int, default=60)
    parser.add_argument("--faq-tokens", type=int, default=40)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--deadline", type=float, default=300.0, help="s: no load-test request starts later")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (default: helpers.deploy.runtime.default_threads(), cores - 1)")
    parser.add_argument("--worker", choices=sorted(DTYPES), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        Path(args.worker_out).write_text(json.dumps(transformers_worker(args.worker, args)))
        return 0

    rows = {f"transformers {d}": run_transformers(d, argv) for d in DTYPES}
    eos_ids = rows["transformers fp32"]["eos_ids"]
    with tempfile.TemporaryDirectory() as tmp:
        tuned = tuned_model()
        export = export_gguf(tuned.model.merge_and_unload(), tuned.tokenizer, tmp, "tuned", system=FAQ_SYSTEM)
        del tuned
        gc.collect()
        for kind, f in export.files.items():
            rows[f"llama.cpp {kind}"] = run_llama(f.path, args, eos_ids)
        print(f"threads: torch {torch.get_num_threads()} (OMP_WAIT_POLICY=PASSIVE), llama.cpp "
              f"{args.threads or default_threads()} (its own environment, no OMP_WAIT_POLICY)")
        print(table(rows).to_string())

        reference = wilson_interval(*rows["transformers fp32"]["sentiment"])
        ok = {k: r for k, r in rows.items() if k.startswith("llama.cpp")
              and reference.contains(r["sentiment"][0] / r["sentiment"][1])}
        best = max(ok or rows, key=lambda k: rows[k]["tokens_per_s"])
        print(f"\nfastest llama.cpp format with sentiment accuracy inside fp32's interval {reference}: {best}")
        with LlamaServer(ServerConfig(export.files[best.split()[-1]].path, threads=args.threads)) as server:
            chats = sentiment_chats(test_set(min(args.reviews, args.requests)))
            load = load_test(client(server.base_url), chats, args.clients, args.requests, 4, args.deadline)
        print(f"load test ({best}): {args.clients} clients, {args.requests} requests in {load.seconds:.1f} s: "
              f"p50 {load.p50:.3f} s, p95 {load.p95:.3f} s, {load.requests_per_second:.1f} requests/s, "
              f"{len(load.failures)} failed" + (f" (first: {load.failures[0]})" if load.failures else ""))
    ratio = rows[best]["tokens_per_s"] / rows["transformers fp32"]["tokens_per_s"]
    print(f"decode speed, {best} vs transformers fp32: {ratio:.1f}x (goal >= {GOAL:g}x: "
          f"{'met' if ratio >= GOAL and ok else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
