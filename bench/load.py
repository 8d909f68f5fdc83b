"""Load test: the Gradio app (real model, loopback only) in a subprocess,
driven by N concurrent gradio_client clients.

    RAG_CACHE_DIR=/tmp/proto/cache .venv/bin/python bench/load.py            # N = 1, 10, 50 -> results/load.{json,md}
    .venv/bin/python bench/load.py --clients 1 10 50 --questions 10 --concurrency 2
    .venv/bin/python bench/load.py --quick                                    # N = 1, 10; 3 questions each

Each client is a gradio_client.Client in its own thread (created, and warmed
with one request, before the clock starts); at a barrier all of them start
sending the questions of tests/data/dev_qa.jsonl to /ask, one after another
(closed loop: the next question leaves when the answer to the last one has
arrived), each client starting at a different question.  Bounded: K
questions per client, a per-request timeout and a wall-clock cap per level.

Reported per N: requests, errors (exceptions, timeouts, and answers without
the expected fields), throughput (answers per second of wall time), latency
p50/p95/p99/max (client side: submit to result), the server's CPU use and
the CPU used by other processes during the run (the machine is shared)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
QA = ROOT / "tests" / "data" / "dev_qa.jsonl"
TICK = os.sysconf("SC_CLK_TCK")
TARGET_P95_MS = 1500


# -------------------------------------------------------------- measuring
def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (as rag.eval.metrics)."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def machine_busy_seconds() -> float:
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / TICK


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the app
def start_app(port: int, concurrency: int, index: str | None, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port),
           "--concurrency", str(concurrency)]
    if index:
        cmd += ["--index", index]
    log = open(log_path, "w")
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the app was not ready after {timeout} s")


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: nothing else is touched
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# ------------------------------------------------------------------- load
def make_clients(url: str, n: int) -> list:
    """n gradio_client Clients, created in parallel (each fetches the API
    description) and warmed with one request; not timed."""
    from gradio_client import Client

    clients: list = [None] * n
    errors: list[BaseException] = []

    def create(i: int) -> None:
        try:
            # ssl_verify=False: the URL is plain http on loopback, so there is
            # no certificate to check; with True, gradio_client builds an SSL
            # context from certifi's bundle for every request (~90 ms of CPU
            # each here), and the load generator would take the server's CPU.
            c = Client(url, verbose=False, ssl_verify=False)
            c.predict("放管服具体指什么？", 5, api_name="/ask")
            clients[i] = c
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    for start in range(0, n, 10):  # ten at a time: creating them is the slow part
        threads = [threading.Thread(target=create, args=(i,)) for i in range(start, min(n, start + 10))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise RuntimeError(f"could not create {len(errors)} clients: {errors[0]!r}")
    return clients


def run_level(clients: list, questions: list[str], per_client: int, timeout: float, cap: float,
              server_pid: int) -> dict[str, Any]:
    n = len(clients)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n + 1)
    deadline: list[float] = [0.0]

    def client_loop(i: int) -> None:
        client = clients[i]
        barrier.wait()
        for j in range(per_client):
            if time.perf_counter() > deadline[0]:
                with lock:
                    errors.append("not sent: the level's time cap was reached")
                continue
            question = questions[(i * 7 + j) % len(questions)]
            t0 = time.perf_counter()
            try:
                answer = client.submit(question, 5, api_name="/ask").result(timeout=timeout)
                ok = isinstance(answer, dict) and "short_answer" in answer and "refused" in answer
                problem = None if ok else f"unexpected answer {str(answer)[:100]}"
            except Exception as exc:  # counted, reported
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            elapsed = time.perf_counter() - t0
            with lock:
                if problem:
                    errors.append(problem)
                else:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    busy0, own0, server0 = machine_busy_seconds(), own_cpu_seconds(), process_cpu_seconds(server_pid)
    t0 = time.perf_counter()
    deadline[0] = t0 + cap
    barrier.wait()
    for t in threads:
        t.join(max(1.0, deadline[0] + timeout + 5 - time.perf_counter()))
    wall = time.perf_counter() - t0
    busy = machine_busy_seconds() - busy0
    own, server = own_cpu_seconds() - own0, process_cpu_seconds(server_pid) - server0
    hung = sum(t.is_alive() for t in threads)
    if hung:
        errors.extend(["client thread still waiting at the end"] * hung)
    ms = [x * 1000 for x in latencies]

    def r(x: float | None, d: int = 1) -> float | None:
        return None if x is None else round(x, d)

    return {
        "clients": n, "questions_per_client": per_client, "requests": n * per_client, "answered": len(latencies),
        "errors": len(errors), "error_examples": sorted(set(errors))[:5], "wall_s": r(wall, 2),
        "throughput_rps": r(len(latencies) / wall if wall else None, 1),
        "latency_ms": {"p50": r(percentile(ms, 50)), "p95": r(percentile(ms, 95)), "p99": r(percentile(ms, 99)),
                       "max": r(max(ms) if ms else None), "mean": r(statistics.fmean(ms) if ms else None)},
        "cpu_cores": {"server": r(server / wall, 2), "load_generator": r(own / wall, 2),
                      "other_processes": r(max(0.0, busy - own - server) / wall, 2)},
        "server_rss_mb": r(rss_mb(server_pid), 0),
    }


# ---------------------------------------------------------------- reports
def write_reports(result: dict[str, Any], stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Load test: concurrent gradio_client clients against the app",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; Python "
        f"{result['machine']['python']}. App: real model, index of {result['app']['passages']} passages, "
        f"`--concurrency {result['app']['concurrency']}` (Gradio queue), loopback only; ready "
        f"{result['app']['ready_s']} s after start. Each client sends {result['questions_per_client']} questions "
        f"from `tests/data/dev_qa.jsonl` to `/ask` (top_k 5) one after another; clients are created and warmed "
        "before the clock starts. Latency is client side (submit to result).",
        "",
        "| clients | requests | errors | throughput (answers/s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) "
        "| server CPU (cores) | load generator CPU | other processes CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in result["levels"]:
        lat, cpu = lv["latency_ms"], lv["cpu_cores"]
        lines.append(f"| {lv['clients']} | {lv['requests']} | {lv['errors']} | {lv['throughput_rps']} | {lat['p50']} "
                     f"| {lat['p95']} | {lat['p99']} | {lat['max']} | {cpu['server']} | {cpu['load_generator']} "
                     f"| {cpu['other_processes']} |")
    target = result.get("target")
    if target:
        lines += ["", f"Target ({target['clients']} clients): 0 errors and p95 ≤ {target['p95_ms']:.0f} ms — "
                      + ("**met**" if target["met"] else "**missed**") + f" ({target['detail']})."]
    for lv in result["levels"]:
        if lv["error_examples"]:
            lines += ["", f"Errors at {lv['clients']} clients: " + "; ".join(lv["error_examples"])]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50], help="concurrency levels (default 1 10 50)")
    p.add_argument("--questions", type=int, default=10, help="questions per client per level (default 10)")
    p.add_argument("--concurrency", type=int, default=None, help="the app's --concurrency (default: the app's own)")
    p.add_argument("--index", help="index directory for the app (default: the app's)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request before it counts as an error")
    p.add_argument("--cap", type=float, default=180.0, help="seconds per level after which no request is sent")
    p.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for the app to start")
    p.add_argument("--quick", action="store_true", help="N = 1, 10 with 3 questions each; results not written")
    p.add_argument("--out", default="load", help="results file stem under bench/results (default load; a path or .md name is cut to its stem)")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.questions = [1, 10], 3
    questions = [json.loads(line)["question"] for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]

    sys.path.insert(0, str(ROOT))
    import app as app_module  # noqa: E402  (only for its defaults)

    concurrency = args.concurrency or int(os.environ.get("RAG_CONCURRENCY", app_module.DEFAULT_CONCURRENCY))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = Path(tempfile.gettempdir()) / f"policy-qa-load-{port}.log"
    proc = start_app(port, concurrency, args.index, log_path)
    levels = []
    try:
        ready = wait_ready(url, proc, args.ready_timeout)
        import httpx

        info = httpx.get(url + "gradio_api/info", timeout=10).json()
        assert "/ask" in info["named_endpoints"], info
        for n in args.clients:
            print(f"[{n} clients] creating clients ...", file=sys.stderr, flush=True)
            clients = make_clients(url, n)
            print(f"[{n} clients] {n * args.questions} questions ...", file=sys.stderr, flush=True)
            level = run_level(clients, questions, args.questions, args.timeout, args.cap, proc.pid)
            print(f"[{n} clients] {json.dumps(level, ensure_ascii=False)}", file=sys.stderr, flush=True)
            levels.append(level)
            for c in clients:
                try:
                    c.close()
                except Exception:
                    pass
        passages = None
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if "passages" in line and "loaded" in line:
                passages = line.split("(")[1].split(" passages")[0]
    finally:
        stop_app(proc)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    result: dict[str, Any] = {
        "command": "RAG_CACHE_DIR=/tmp/proto/cache .venv/bin/python bench/load.py "
                   + " ".join(a for a in (argv if argv is not None else sys.argv[1:])),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()},
        "app": {"concurrency": concurrency, "ready_s": round(ready, 1), "passages": passages,
                "endpoint": "/ask", "top_k": 5},
        "questions_per_client": args.questions,
        "levels": levels,
    }
    top = max(levels, key=lambda lv: lv["clients"]) if levels else None
    if top and top["clients"] >= 50:  # issue 13's target: 0 errors, p95 <= 1.5 s at 50 clients
        met = top["errors"] == 0 and top["latency_ms"]["p95"] is not None and top["latency_ms"]["p95"] <= TARGET_P95_MS
        result["target"] = {"clients": top["clients"], "p95_ms": TARGET_P95_MS, "met": met,
                            "detail": f"{top['errors']} errors, p95 {top['latency_ms']['p95']} ms"}
    if not args.quick:
        # ("--out bench/results/load_x.md" means the stem load_x: the run is not lost to a path)
        stem = Path(args.out).name.removesuffix(".md").removesuffix(".json")
        write_reports(result, stem)
        print(f"wrote {RESULTS / (stem + '.json')} and .md", file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if all(lv["errors"] == 0 for lv in levels) else 1


if __name__ == "__main__":
    sys.exit(main())
