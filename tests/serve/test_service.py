"""Running as a service: bounded caches, the configuration file, and (with the
app) health, readiness and metrics."""
from __future__ import annotations

import threading

import pytest

from rag.cache import LRUCache
from rag.config import Config
from rag.errors import ConfigError


class TestLRUCache:
    def test_never_exceeds_its_size_and_drops_the_least_recently_used(self):
        cache: LRUCache[int, int] = LRUCache(3)
        for key in (1, 2, 3):
            cache.get_or_compute(key, lambda k: k * 10)
        cache.get_or_compute(1, lambda k: -1)  # hit: 1 becomes the most recent
        cache.get_or_compute(4, lambda k: k * 10)  # evicts 2
        assert len(cache) == 3
        calls = []
        assert cache.get_or_compute(1, lambda k: calls.append(k) or 0) == 10 and not calls
        assert cache.get_or_compute(2, lambda k: calls.append(k) or 20) == 20 and calls == [2]
        assert cache.stats()["size"] == 3 and cache.stats()["hits"] == 2

    def test_size_zero_caches_nothing(self):
        cache: LRUCache[str, int] = LRUCache(0)
        assert cache.get_or_compute("a", len) == 1 and len(cache) == 0
        with pytest.raises(ValueError, match="maxsize"):
            LRUCache(-1)

    def test_stays_bounded_under_concurrent_use(self):
        cache: LRUCache[int, int] = LRUCache(100)

        def work(offset: int) -> None:
            for i in range(2000):
                cache.get_or_compute(offset + i, lambda k: k)

        threads = [threading.Thread(target=work, args=(n * 10_000,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(cache) == 100


class TestConfigFile:
    def test_file_is_below_environment_and_overrides(self, tmp_path):
        path = tmp_path / "rag.toml"
        path.write_text('top_k = 8\nreader_mode = "rules"\nindex_dir = "/srv/kb/index"\n', encoding="utf-8")
        config = Config.from_env({}, config_file=path)
        assert (config.top_k, config.reader_mode, str(config.index_dir)) == (8, "rules", "/srv/kb/index")
        config = Config.from_env({"RAG_CONFIG": str(path), "RAG_TOP_K": "3"})
        assert (config.top_k, config.reader_mode) == (3, "rules")
        assert Config.from_env({"RAG_CONFIG": str(path)}, top_k=4).top_k == 4

    def test_unknown_keys_and_bad_files_are_named(self, tmp_path):
        path = tmp_path / "rag.toml"
        path.write_text("topk = 8\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="unknown setting 'topk'"):
            Config.from_env({}, config_file=path)
        path.write_text("top_k = [", encoding="utf-8")
        with pytest.raises(ConfigError, match="not valid TOML"):
            Config.from_env({}, config_file=path)
        with pytest.raises(ConfigError, match="does not exist"):
            Config.from_env({}, config_file=tmp_path / "missing.toml")
        path.write_text("top_k = 0\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="top_k"):
            Config.from_env({}, config_file=path)


@pytest.mark.slow
def test_answering_caches_stay_within_their_limits(real_config):
    """Many distinct questions fill the caches up to their sizes, never beyond."""
    from rag.serve.assistant import Assistant

    assistant = Assistant.open(real_config.replace(term_cache_size=50, tag_cache_size=40, reader_mode="rules"))
    answerer = assistant.state.answerer
    chars = "园区政务服务改革审批局一站式窗口企业许可权集中办件量标准化"
    questions = [f"{chars[i % 20]}{chars[(i * 7) % 25]}{chars[(i * 3) % 23]}第{i}项是什么？" for i in range(120)]
    assistant.ask_many(questions)
    stats = answerer.cache_stats()
    assert stats["idf_cache"]["size"] <= 50 and stats["in_corpus_cache"]["size"] <= 50
    assert stats["tag_cache"]["size"] <= 40
    assert stats["idf_cache"]["misses"] > 50  # the limit was reached, not merely unused


class TestService:
    """The probes, metrics and request log over a stand-in assistant (the
    app's wiring is tested in test_app.py)."""

    def _service(self, tmp_path, log_questions=False):
        from types import SimpleNamespace

        from rag.serve.service import Service

        state = SimpleNamespace(index=SimpleNamespace(path=tmp_path / "20261201-abc", documents={"a": 1, "b": 2},
                                                      passages=[1, 2, 3]),
                                answerer=SimpleNamespace(reader=None, cache_stats=lambda: {"idf_cache": {"size": 7}}))
        assistant = SimpleNamespace(_state=state, counts={"build": 1, "load": 2})
        return Service(assistant, tmp_path / "logs" / "requests.jsonl", log_questions)

    def _answer(self, refused=False):
        from rag.schema import Answer

        return Answer(question="园区的审批局是哪年成立的？", text="…", short_answer="2015年", qtype="date",
                      confidence=0.9, refused=refused)

    def test_metrics_parse_and_count_outcomes(self, tmp_path):
        from prometheus_client.parser import text_string_to_metric_families

        service = self._service(tmp_path)
        with service.track("ask") as answers:
            answers.append(self._answer())
        with service.track("ask") as answers:
            answers.append(self._answer(refused=True))
        with pytest.raises(ValueError), service.track("batch"):
            raise ValueError("boom")
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(service.metrics().decode())
                   for s in family.samples}
        assert samples[("rag_questions_total", (("endpoint", "ask"), ("outcome", "answered")))] == 1
        assert samples[("rag_questions_total", (("endpoint", "ask"), ("outcome", "refused")))] == 1
        assert samples[("rag_questions_total", (("endpoint", "batch"), ("outcome", "failed")))] == 1
        assert samples[("rag_answer_latency_seconds_count", (("endpoint", "ask"),))] == 2
        assert samples[("rag_index_info", (("index_id", "20261201-abc"),))] == 1
        assert samples[("rag_documents", ())] == 2
        assert samples[("rag_requests_in_flight", ())] == 0
        assert samples[("rag_cache_entries", (("cache", "idf_cache"),))] == 7

    def test_request_log_keeps_questions_out_unless_enabled(self, tmp_path):
        import json

        service = self._service(tmp_path)
        with service.track("chat") as answers:
            answers.append(self._answer())
        line = json.loads((tmp_path / "logs" / "requests.jsonl").read_text(encoding="utf-8").splitlines()[-1])
        assert line["endpoint"] == "chat" and line["qtype"] == "date" and line["index_id"] == "20261201-abc"
        assert "question" not in line and "审批局" not in json.dumps(line, ensure_ascii=False)
        service = self._service(tmp_path / "with", log_questions=True)
        with service.track("chat") as answers:
            answers.append(self._answer())
        assert "审批局" in (tmp_path / "with" / "logs" / "requests.jsonl").read_text(encoding="utf-8")

    def test_stopping_waits_for_requests_in_flight_and_refuses_new_ones(self, tmp_path):
        from rag.serve.service import ShuttingDown

        service = self._service(tmp_path)
        started, release, finished = threading.Event(), threading.Event(), []

        def slow_request():
            with service.track("ask") as answers:
                started.set()
                release.wait(5)
                answers.append(self._answer())
            finished.append(True)

        worker = threading.Thread(target=slow_request)
        worker.start()
        started.wait(5)
        assert service.stop_accepting(wait_seconds=0.1) is False  # one still in flight
        with pytest.raises(ShuttingDown):
            with service.track("ask"):
                pass
        assert service.readiness()[0] is False
        release.set()
        assert service.stop_accepting(wait_seconds=5) is True
        worker.join(5)
        assert finished == [True]


    def test_readiness_asks_the_knowledge_base_store(self, tmp_path, monkeypatch):
        from types import SimpleNamespace

        import rag.serve.service
        from rag.index.milvus import KnowledgeBaseUnavailable

        service = self._service(tmp_path)
        assert service.readiness()[0] is True          # a stand-in without a store
        answer = {"build": "20261201-abc"}

        def current_build():
            if isinstance(answer["build"], Exception):
                raise answer["build"]
            return answer["build"]

        service.assistant.store = SimpleNamespace(current_build=current_build, describe=lambda: "Milvus db:19530")
        monkeypatch.setattr(rag.serve.service, "STORE_CHECK_SECONDS", 0.0)
        assert service.readiness() == (True, service.readiness()[1])
        answer["build"] = KnowledgeBaseUnavailable("cannot reach Milvus at db:19530")
        ready, body = service.readiness()
        assert not ready and "knowledge base unreachable (Milvus db:19530)" in body["problems"][0]
        answer["build"] = None
        ready, body = service.readiness()
        assert not ready and body["problems"] == ["no published knowledge base in Milvus db:19530"]
        # Checked at most every STORE_CHECK_SECONDS: a probe storm does not load the store.
        monkeypatch.setattr(rag.serve.service, "STORE_CHECK_SECONDS", 60.0)
        answer["build"] = "20261201-abc"
        assert service.readiness()[0] is False


# ---------------------------------------------------------------- the app
@pytest.mark.slow
def test_probes_and_metrics_are_served_next_to_the_app(assistant):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from tests.conftest import serve_app

    with serve_app(assistant) as (demo, url):
        def get(path):
            with urllib.request.urlopen(url.rstrip("/") + path, timeout=10) as r:
                return r.status, r.headers.get("content-type", ""), r.read().decode()

        status, _, body = get("/healthz")
        assert status == 200 and '"ok"' in body
        status, _, body = get("/readyz")
        import json
        ready = json.loads(body)
        assert status == 200 and ready["ready"] and ready["documents"] == len(assistant.index.documents)
        assert ready["index_id"] == assistant.index.path.name
        from gradio_client import Client

        client = Client(url, verbose=False)
        client.predict("园区的行政审批局是什么时候成立的？", api_name="/ask")
        status, ctype, body = get("/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(body) for s in f.samples}
        answered = sum(v for (n, labels), v in samples.items()
                       if n == "rag_questions_total" and ("endpoint", "ask") in labels)
        assert answered == 1
        assert samples[("rag_index_info", (("index_id", assistant.index.path.name),))] == 1
        log_lines = (demo.service.request_log.handlers[0].baseFilename)
        assert "行政审批局" not in open(log_lines, encoding="utf-8").read()


APP_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import rag.serve.assistant, rag.index.build
from tests.fakes import HashEmbedder
rag.serve.assistant.Embedder = rag.index.build.Embedder = lambda config: HashEmbedder()
ask_many = rag.serve.assistant.Assistant.ask_many
def slow(self, *args, **kwargs):  # every question takes a second: a burst stays in flight
    time.sleep(1.0)
    return ask_many(self, *args, **kwargs)
rag.serve.assistant.Assistant.ask_many = slow
from rag.serve import ui as app
sys.exit(app.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigterm_finishes_the_questions_in_flight_and_exits_0(tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from rag.config import PROJECT_ROOT
    from tests.conftest import CORPUS, free_port

    port = free_port()
    script = tmp_path / "serve.py"
    script.write_text(APP_SCRIPT.format(root=str(PROJECT_ROOT)), encoding="utf-8")
    log_path = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--index", str(tmp_path / "index"), "--corpus", str(CORPUS),
         "--set", "model=test-hash", "--set", "reader_mode=rules", "--set", f"request_log_path={log_path}",
         "--set", f"feedback_path={tmp_path / 'feedback.jsonl'}", "--concurrency", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if json.loads(r.read())["ready"]:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the app did not become ready"
            time.sleep(0.5)
        from gradio_client import Client

        client = Client(url + "/", verbose=False)
        jobs = [client.submit("园区的行政审批局是什么时候成立的？", api_name="/ask") for _ in range(4)]
        time.sleep(1.5)  # two are being answered, two wait in the queue
        proc.send_signal(signal.SIGTERM)

        def outcome(job):
            try:
                return "answered" if job.result(timeout=60)["answer"] else "empty"
            except Exception as exc:  # noqa: BLE001 - the message is what is checked
                return "refused: " + str(exc)

        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(outcome, jobs))
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    answered = outcomes.count("answered")
    # every request that had begun was answered; later ones were told the service is stopping
    assert answered >= 2, outcomes
    assert all(o == "answered" or "shutting down" in o or "服务正在停止" in o for o in outcomes), outcomes
    assert len(log_path.read_text(encoding="utf-8").splitlines()) == answered


STARTUP_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import rag.serve.assistant, rag.index.build
from tests.fakes import HashEmbedder
rag.serve.assistant.Embedder = rag.index.build.Embedder = lambda config: HashEmbedder()
build = rag.serve.assistant.build_index
def slow_build(*args, **kwargs):  # the first build takes a while
    time.sleep(4)
    return build(*args, **kwargs)
rag.serve.assistant.build_index = slow_build
from rag.serve import ui as app
sys.exit(app.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_readyz_says_not_ready_while_the_first_index_is_built(tmp_path):
    import json
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from rag.config import PROJECT_ROOT
    from tests.conftest import CORPUS, free_port

    port = free_port()
    script = tmp_path / "serve.py"
    script.write_text(STARTUP_SCRIPT.format(root=str(PROJECT_ROOT)), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--index", str(tmp_path / "index"), "--corpus", str(CORPUS),
         "--set", "model=test-hash", "--set", "reader_mode=rules",
         "--set", f"request_log_path={tmp_path / 'requests.jsonl'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    seen.append((r.status, json.loads(r.read())))
                    break
            except urllib.error.HTTPError as exc:
                seen.append((exc.code, json.loads(exc.read())))
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(30)
    not_ready = [body for status, body in seen if status == 503]
    assert not_ready and "index" in not_ready[0]["problems"][0]
    assert seen[-1][0] == 200 and seen[-1][1]["ready"] and seen[-1][1]["documents"] == 1
