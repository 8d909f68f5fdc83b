"""What an operator needs to run the app for months: liveness and readiness
probes, Prometheus metrics, a privacy-preserving request log, and a graceful
stop (finish the questions in flight, take no new ones).

The app (``app.py``) mounts :func:`routes` on the same server as the Gradio
UI and wraps every answering endpoint in :meth:`Service.track`."""
from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rag.schema import Answer

log = logging.getLogger(__name__)

# Seconds; answers take ~50 ms warm, a queue of 50 clients a few seconds.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REQUEST_LOG_BYTES = 20 * 1024 * 1024
REQUEST_LOG_BACKUPS = 5
# /readyz asks the knowledge base store (a Milvus server, the index
# directory) whether it is there at most this often.
STORE_CHECK_SECONDS = 5.0


class ShuttingDown(RuntimeError):
    """The app is stopping and takes no new questions."""


class Service:
    """Counters and state shared by the app's endpoints and probes."""

    def __init__(self, assistant, request_log: Path | None = None, log_questions: bool = False) -> None:
        self.assistant = assistant
        self._store_checked: tuple[float, str | None] | None = None
        self.registry = CollectorRegistry()
        self.questions = Counter("rag_questions_total", "Questions handled, by endpoint and outcome",
                                 ["endpoint", "outcome"], registry=self.registry)
        self.latency = Histogram("rag_answer_latency_seconds", "Time to answer a request, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("rag_requests_in_flight", "Requests being answered now (queue depth)",
                               registry=self.registry)
        self.index_info = Gauge("rag_index_info", "The index being served (value 1)", ["index_id"],
                                registry=self.registry)
        self.documents = Gauge("rag_documents", "Documents in the served index", registry=self.registry)
        self.index_events = Gauge("rag_index_events", "Index builds and loads (incl. refreshes) since start",
                                  ["kind"], registry=self.registry)
        self.cache_entries = Gauge("rag_cache_entries", "Entries in each bounded cache", ["cache"],
                                   registry=self.registry)
        self.accepting = True
        self._active = 0
        self._idle = threading.Condition()
        self.request_log = _request_logger(request_log) if request_log else None
        self.log_questions = log_questions

    # ----------------------------------------------------------- answering
    @contextlib.contextmanager
    def track(self, endpoint: str) -> Iterator[list[Answer]]:
        """Count one request: yields a list the endpoint appends its answers
        to (for outcomes and the request log).  Refused with ShuttingDown
        once a stop has begun."""
        with self._idle:
            if not self.accepting:
                raise ShuttingDown("the service is shutting down; retry on another instance / 服务正在停止，请稍后重试")
            self._active += 1
            self.in_flight.inc()
        answers: list[Answer] = []
        t0 = time.perf_counter()
        try:
            yield answers
        except Exception:
            self.questions.labels(endpoint, "failed").inc()
            raise
        finally:
            seconds = time.perf_counter() - t0
            self.latency.labels(endpoint).observe(seconds)
            with self._idle:
                self._active -= 1
                self.in_flight.dec()
                self._idle.notify_all()
        for answer in answers:
            self.questions.labels(endpoint, "refused" if answer.refused else "answered").inc()
            self._log(endpoint, answer, seconds)

    def _log(self, endpoint: str, answer: Answer, seconds: float) -> None:
        if self.request_log is None:
            return
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "endpoint": endpoint,
            "latency_ms": round(seconds * 1000, 1), "qtype": answer.qtype,
            "confidence": round(answer.confidence, 4), "refused": answer.refused,
            "citations": [c.passage_id for c in answer.citations], "index_id": self.index_id(),
        }
        if self.log_questions:
            record["question"] = answer.question
        self.request_log.info(json.dumps(record, ensure_ascii=False))

    # ---------------------------------------------------------------- stop
    def stop_accepting(self, wait_seconds: float) -> bool:
        """Take no new questions and wait (at most ``wait_seconds``) for the
        ones in flight; True when none is left."""
        with self._idle:
            self.accepting = False
            deadline = time.monotonic() + wait_seconds
            while self._active and time.monotonic() < deadline:
                self._idle.wait(timeout=max(0.0, deadline - time.monotonic()))
            return self._active == 0

    # -------------------------------------------------------------- probes
    def index_id(self) -> str | None:
        state = getattr(self.assistant, "_state", None)
        return state.index.path.name if state is not None else None

    def store_problem(self) -> str | None:
        """Why the knowledge base store cannot be reached (a Milvus server
        down, the index directory gone), or None.  Asked at most every
        STORE_CHECK_SECONDS: a probe every second must not load the store."""
        store = getattr(self.assistant, "store", None)
        if store is None:
            return None
        now = time.monotonic()
        if self._store_checked is not None and now - self._store_checked[0] < STORE_CHECK_SECONDS:
            return self._store_checked[1]
        try:
            problem = None if store.current_build() is not None else f"no published knowledge base in {store.describe()}"
        except Exception as exc:  # KnowledgeBaseUnavailable, or whatever the client raised
            problem = f"knowledge base unreachable ({store.describe()}): {exc}"
        self._store_checked = (now, problem)
        return problem

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when an index is loaded and the question encoder is ready,
        the knowledge base store answers, and the service is taking questions."""
        state = getattr(self.assistant, "_state", None)
        problems = []
        if state is None:
            problems.append("no index loaded yet")
        store_problem = self.store_problem()
        if store_problem:
            problems.append(store_problem)
        if not self.accepting:
            problems.append("shutting down")
        body: dict[str, Any] = {"ready": not problems, "index_id": self.index_id(),
                                "documents": len(state.index.documents) if state is not None else 0,
                                "passages": len(state.index.passages) if state is not None else 0,
                                "reader": bool(state is not None and state.answerer.reader is not None)}
        if problems:
            body["problems"] = problems
        return not problems, body

    def metrics(self) -> bytes:
        state = getattr(self.assistant, "_state", None)
        if state is not None:
            self.index_info.clear()
            self.index_info.labels(state.index.path.name).set(1)
            self.documents.set(len(state.index.documents))
            for name, stats in state.answerer.cache_stats().items():
                self.cache_entries.labels(name).set(stats["size"])
        for kind, count in getattr(self.assistant, "counts", {}).items():
            self.index_events.labels(kind).set(count)
        return generate_latest(self.registry)


def _request_logger(path: Path) -> logging.Logger:
    """A logger writing bare JSON lines to a rotating file, never to the console."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"rag.requests.{path.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=REQUEST_LOG_BYTES,
                                                       backupCount=REQUEST_LOG_BACKUPS, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger


def routes(service: Service) -> Sequence:
    """Starlette routes for the probes and metrics (plain async handlers:
    they answer at once even while every worker is busy answering)."""
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def healthz(request):
        return JSONResponse({"status": "ok", "index_id": service.index_id()})

    async def readyz(request):
        # In a worker thread: asking a remote store must not hold up the event loop.
        ready, body = await anyio.to_thread.run_sync(service.readiness)
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request):
        return Response(service.metrics(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"])]


class StartupProbes:
    """While the app loads (or builds, the first time) its index, before the
    Gradio server exists: a small server on the same address answering
    /healthz (alive) and /readyz (503, what it is doing), so an orchestrator
    sees "not ready" instead of a refused connection.  Stopped just before
    the app itself listens."""

    def __init__(self, host: str, port: int) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        self.state = "loading the index"

        async def healthz(request):
            return JSONResponse({"status": "ok", "index_id": None})

        async def readyz(request):
            return JSONResponse({"ready": False, "problems": [self.state]}, status_code=503)

        app = Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="startup-probes", daemon=True)

    def __enter__(self) -> "StartupProbes":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
