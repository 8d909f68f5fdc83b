"""Soak: drive many distinct questions through the library (and optionally the
running app) and record resident memory over time.  With the caches bounded
(Config.term_cache_size / tag_cache_size) the curve must be flat after warm-up.

    .venv/bin/python bench/soak.py --questions 100000 [--reader-mode rules] --out bench/results/soak.md
    .venv/bin/python bench/soak.py --app --questions 20000 --out bench/results/soak_app.md

Questions are random phrases made of the report's own characters (so they
reach the retrieval and extraction code, and are all distinct)."""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE = os.sysconf("SC_PAGE_SIZE")
ENDINGS = ("是什么？", "有哪些？", "是哪一年？", "有多少？", "为什么？", "怎么办理？")


def rss_mib(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def questions(n: int, seed: int = 1) -> list[str]:
    text = (ROOT / "corpus" / "suzhou_sip_reform_2024.txt").read_text("utf-8")
    chars = [c for c in text if "\u4e00" <= c <= "\u9fff"]
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        q = "".join(rng.choice(chars) for _ in range(rng.randint(4, 12))) + rng.choice(ENDINGS)
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


def soak_library(qs: list[str], reader_mode: str, every: int) -> list[tuple[int, float, float]]:
    from rag.serve.assistant import Assistant
    from rag.config import Config

    assistant = Assistant.open(Config.from_env(reader_mode=reader_mode))
    curve = [(0, 0.0, rss_mib())]
    t0 = time.perf_counter()
    for i in range(0, len(qs), 32):
        assistant.ask_many(qs[i:i + 32])
        done = min(i + 32, len(qs))
        if done % every < 32 or done == len(qs):
            curve.append((done, time.perf_counter() - t0, rss_mib()))
            print(f"{done} questions, {curve[-1][1]:.0f} s, RSS {curve[-1][2]:.0f} MiB", flush=True)
    stats = assistant.state.answerer.cache_stats()
    print(json.dumps(stats))
    return curve


def soak_app(qs: list[str], reader_mode: str, every: int, port: int = 7931) -> list[tuple[int, float, float]]:
    from gradio_client import Client

    env = dict(os.environ, RAG_READER_MODE=reader_mode)
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        curve = [(0, 0.0, rss_mib(proc.pid))]
        t0 = time.perf_counter()
        for i in range(0, len(qs), 50):
            client.predict(qs[i:i + 50], api_name="/batch")
            done = min(i + 50, len(qs))
            if done % every < 50 or done == len(qs):
                curve.append((done, time.perf_counter() - t0, rss_mib(proc.pid)))
                print(f"{done} questions, {curve[-1][1]:.0f} s, RSS {curve[-1][2]:.0f} MiB", flush=True)
        return curve
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--questions", type=int, default=100_000)
    p.add_argument("--reader-mode", default="combined", choices=("combined", "reader", "rules"))
    p.add_argument("--app", action="store_true", help="through the running app's /batch endpoint")
    p.add_argument("--every", type=int, default=2000, help="sample RSS every N questions")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    qs = questions(args.questions)
    curve = (soak_app if args.app else soak_library)(qs, args.reader_mode, args.every)
    warm = [r for n, _, r in curve if n >= max(len(qs) // 5, 1)]
    growth = (max(warm) - min(warm)) if warm else 0.0
    where = "app (/batch, 50 per call)" if args.app else "library (Assistant.ask_many, 32 per call)"
    from rag.config import Config
    config = Config.from_env()
    where += f", term_cache_size={config.term_cache_size}, tag_cache_size={config.tag_cache_size}"
    print(f"after warm-up (last 80 %): RSS {min(warm):.0f}–{max(warm):.0f} MiB, spread {growth:.0f} MiB")
    if args.out:
        lines = [f"# Soak: {len(qs)} distinct questions through the {where}, reader_mode={args.reader_mode}", "",
                 f"After warm-up (the last 80 % of the run): RSS {min(warm):.0f}–{max(warm):.0f} MiB, "
                 f"spread **{growth:.0f} MiB**.", "", "| questions | seconds | RSS MiB |", "|---|---|---|"]
        lines += [f"| {n} | {t:.0f} | {r:.0f} |" for n, t, r in curve]
        args.out.write_text("\n".join(lines) + "\n", "utf-8")
        args.out.with_suffix(".json").write_text(json.dumps({"questions": len(qs), "where": where,
                                                             "reader_mode": args.reader_mode, "curve": curve}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
