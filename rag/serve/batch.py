"""Batch answering of question files.

Input: JSON Lines (``{"id", "question", ...}``; other fields are passed
through), CSV with a ``question`` column, or plain text with one question per
line.  Output: JSON Lines, one answer per line, written and flushed as each
batch finishes, so an interrupted run keeps everything it finished.
Malformed lines are reported with their line number and skipped."""
from __future__ import annotations

import csv
import functools
import io
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from rag.errors import InputError, RagError, WriteError

log = logging.getLogger(__name__)

OUTPUT_KEYS = ("id", "question", "answer", "short_answer", "qtype", "lang", "confidence", "refused", "citations",
               "passages", "documents", "conflict", "latency_ms")
MAX_INPUT_BYTES = 200 * 1024 * 1024


@dataclass
class Problem:
    line: int
    message: str
    unit: str = "line"  # "item" for the elements of a JSON array file

    def __str__(self) -> str:
        return f"{self.unit} {self.line}: {self.message}"


@dataclass
class QuestionFile:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    format: str = "jsonl"


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, or else GB18030 (files
    saved by Chinese Windows tools).  Anything else is refused with the place
    of the first byte that is not UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    else:
        log.warning("%s is not UTF-8; read it as GB18030", path)
        return text
    at = utf8_error.start
    line = data[:at].count(b"\n") + 1
    raise InputError(f"{path}: not UTF-8 text (byte 0x{data[at]:02x} at line {line}, byte offset {at}) and not "
                     "GB18030 either; save the file as UTF-8")


def detect_format(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".txt", ".text", ".md"):
        return "text"
    first = next((line for line in _lines(text) if line.strip()), "")
    return "jsonl" if first.lstrip().startswith(("{", "[")) else "text"


def _lines(text: str) -> list[str]:
    """Lines split at "\\n" only (a trailing "\\r" dropped): str.splitlines()
    would also split at U+2028, U+0085 and form feeds, which may stand
    inside a JSON string and do not end a line for editors or other tools."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def read_questions(path: Path) -> QuestionFile:
    """Parse a question file.  Bad lines become Problems; they never stop the
    rest of the file from being read."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"question file {path} does not exist")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a question file")
    size = path.stat().st_size
    if size > MAX_INPUT_BYTES:
        raise InputError(f"{path} is {size / 1e6:.0f} MB; split it into files under {MAX_INPUT_BYTES // 2**20} MiB")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read question file {path}: {exc.strerror or exc}") from None
    if not data:
        raise InputError(f"{path} is empty (0 bytes): there are no questions to answer")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path} looks like a binary file, not questions")
    text = _decode(data, path)
    if not text.strip():
        raise InputError(f"{path} holds only whitespace: there are no questions to answer")
    result = QuestionFile(format=detect_format(path, text))
    reader = {"jsonl": _read_jsonl, "csv": _read_csv, "text": _read_text}[result.format]
    items = _json_array(text) if result.format == "jsonl" else None
    unit = "line" if items is None else "item"
    if items is not None:
        reader = lambda _text: _read_jsonl(_text, items)  # noqa: E731
    seen: set[str] = set()
    for line_no, row, problem in reader(text):
        if problem:
            result.problems.append(Problem(line_no, problem, unit))
            continue
        assert row is not None
        row["id"] = str(row.get("id") if row.get("id") not in (None, "") else
                        f"q{line_no}" if unit == "line" else f"item{line_no}")
        if row["id"] in seen:
            row["id"] = f"{row['id']}@{line_no}"
        seen.add(row["id"])
        result.rows.append(row)
    return result


def _check_question(row: dict[str, Any]) -> str | None:
    if "question" not in row:
        return "no \"question\" field"
    q = row["question"]
    if not isinstance(q, str):
        return f"\"question\" must be a string, got {_json_type(q)}"
    if not q.strip():
        return "\"question\" is empty"
    return None


def _json_array(text: str) -> list | None:
    """The items of a file that is one JSON array (``[{...}, {...}]``, e.g.
    pretty-printed), else None.  A file that starts with "[" but is not
    valid JSON as a whole is refused with the place of the error."""
    if not text.lstrip().startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        first = next((line for line in _lines(text) if line.strip()), "")
        try:
            json.loads(first)  # "[...]" on every line: JSON Lines of arrays, reported line by line
        except json.JSONDecodeError:
            raise InputError(f"the file starts with \"[\" but is not a valid JSON array ({exc.msg} at line "
                             f"{exc.lineno}, column {exc.colno}); give JSON Lines (one object per line) or "
                             "one valid JSON array of objects") from None
        return None
    return value if isinstance(value, list) else None


def _read_jsonl(text: str, items: list | None = None) -> Iterator[tuple[int, dict | None, str | None]]:
    if items is not None:  # one JSON array of objects instead of JSON Lines
        for n, row in enumerate(items, 1):
            if not isinstance(row, dict):
                yield n, None, f"expected a JSON object, got {_json_type(row)}"
                continue
            problem = _check_question(row)
            yield n, (None if problem else row), problem
        return
    for n, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = "; one JSON object per line is expected" if n == 1 and line.strip() == "{" else ""
            yield n, None, f"not valid JSON ({exc.msg} at column {exc.colno}){hint}"
            continue
        if not isinstance(row, dict):
            yield n, None, f"expected a JSON object, got {_json_type(row)}"
            continue
        problem = _check_question(row)
        yield n, (None if problem else row), problem


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _read_csv(text: str) -> Iterator[tuple[int, dict | None, str | None]]:
    dialect = "excel-tab" if text.split("\n", 1)[0].count("\t") > text.split("\n", 1)[0].count(",") else "excel"
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames or "question" not in [f.strip() for f in reader.fieldnames]:
        yield 1, None, f"CSV header has no \"question\" column (columns: {reader.fieldnames})"
        return
    while True:
        starts_at = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's size limit: this record is skipped
            yield starts_at, None, f"not valid CSV ({exc})"
            continue
        line = reader.line_num
        clean = {(k or "").strip(): v for k, v in row.items() if k is not None}
        if None in row:
            yield line, None, "more fields than the header has columns"
            continue
        if "question" in clean and clean["question"] is None:
            yield line, None, "fewer fields than the header has columns (no question)"
            continue
        problem = _check_question(clean)
        yield line, (None if problem else clean), problem


def _read_text(text: str) -> Iterator[tuple[int, dict | None, str | None]]:
    for n, line in enumerate(_lines(text), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield n, {"question": line.strip()}, None


def answer_row(row: dict[str, Any], answer, latency_ms: float) -> dict[str, Any]:
    d = answer.to_dict()
    out: dict[str, Any] = {"id": row["id"], "question": row["question"]}
    for key in OUTPUT_KEYS[2:]:
        out[key] = d.get(key) if key != "latency_ms" else round(latency_ms, 2)
    # Input fields pass through; one named like an output field (e.g. "lang"
    # in a labelled QA file) is kept under "input" rather than dropped.
    extra = {k: v for k, v in row.items() if k not in ("id", "question")}
    clashes = {k: v for k, v in extra.items() if k in OUTPUT_KEYS or k == "input"}
    out.update({k: v for k, v in extra.items() if k not in clashes})
    if clashes:
        out["input"] = clashes
    return out


# Line breaks that JSON allows raw inside strings but str.splitlines() (and
# some JSON Lines readers) split at: written as escapes.
_RAW_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def json_line(row: dict[str, Any]) -> str:
    """One JSON Lines record: UTF-8 text, the odd line breaks escaped."""
    return json.dumps(row, ensure_ascii=False).translate(_RAW_BREAKS) + "\n"


def completed_ids(path: Path) -> set[str]:
    """Ids already answered in an (interrupted) output file; a torn last
    line is ignored."""
    done: set[str] = set()
    if not path.exists():
        return done
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                done.add(str(json.loads(line)["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


def answer_chunk(assistant, chunk: list[dict[str, Any]], top_k: int | None) -> tuple[str, int, list[str]]:
    """Answer one batch of question rows: (their answer lines, how many were
    answered, a problem line per question skipped)."""
    t_batch = time.perf_counter()
    problems: list[str] = []
    try:
        answers = assistant.ask_many([r["question"] for r in chunk], top_k)
        results = list(zip(chunk, answers))
    except InputError:
        results = []  # one bad question: answer the chunk one by one
        for r in chunk:
            try:
                results.append((r, assistant.ask(r["question"], top_k)))
            except InputError as exc:
                problems.append(f"id {r['id']}: {exc}")
    per_question = (time.perf_counter() - t_batch) * 1000 / max(len(chunk), 1)
    return "".join(json_line(answer_row(r, ans, per_question)) for r, ans in results), len(results), problems


# --workers N: N processes, each with its own Assistant (its own encoder and
# reader sessions, one onnxruntime thread each), opened once per process.
_WORKER_ASSISTANT = None
_WORKER_OPEN_ERROR: Exception | None = None


def _open_worker(config) -> None:
    """A pool initializer that raises makes multiprocessing start another
    worker, which fails the same way, forever, and the batch hangs: so the
    error is kept and raised by the worker's first task instead."""
    global _WORKER_ASSISTANT, _WORKER_OPEN_ERROR
    from rag.serve.assistant import Assistant

    logging.getLogger().setLevel(logging.WARNING)
    try:
        _WORKER_ASSISTANT = Assistant.open(config, rebuild="never")
    except RagError as exc:
        _WORKER_OPEN_ERROR = exc
    except Exception as exc:  # anything else (OSError, MemoryError ...) must not hang the batch either
        _WORKER_OPEN_ERROR = RagError(f"a batch worker could not open the knowledge base: "
                                      f"{type(exc).__name__}: {exc}")


def _answer_chunk_in_worker(chunk: list[dict[str, Any]], top_k: int | None) -> tuple[str, int, list[str]]:
    if _WORKER_ASSISTANT is None:
        raise _WORKER_OPEN_ERROR or RagError("a batch worker has no knowledge base open")
    return answer_chunk(_WORKER_ASSISTANT, chunk, top_k)


def _worker_pool(config, workers: int):
    """Worker processes started fresh (spawn, not fork: onnxruntime's thread
    pools do not survive a fork), each answering with one thread."""
    import multiprocessing

    worker_config = config.replace(query_threads=1)
    return multiprocessing.get_context("spawn").Pool(workers, initializer=_open_worker, initargs=(worker_config,))


# --workers by default: one process for a short file (a worker takes a few
# seconds to start, about a hundred answers' time) and on 2 cores, where one
# process answers a batch's questions side by side on both (534 questions,
# wall clock with start-up: 19.5 s in one process, 21.5 s in two); else one per
# core up to 4 (each holds its own ~1.1 GB of models and index).
AUTO_WORKERS_MIN_QUESTIONS = 200
AUTO_WORKERS_MIN_CORES = 3
AUTO_WORKERS_MAX = 4


def auto_workers(questions: int) -> int:
    cores = os.cpu_count() or 1
    if questions < AUTO_WORKERS_MIN_QUESTIONS or cores < AUTO_WORKERS_MIN_CORES:
        return 1
    return min(cores, AUTO_WORKERS_MAX)


def run_batch(assistant, questions: Path, output: Path, top_k: int | None = None, batch_size: int = 32,
              progress: bool = True, resume: bool = False, overwrite: bool = False,
              workers: int | None = 1) -> dict[str, Any]:
    """Answer every question in ``questions`` into ``output`` (JSON Lines),
    appending and fsync-ing after each batch of ``batch_size``, in input
    order.  An existing non-empty output is kept unless ``resume`` (answer
    only the ids not in it yet) or ``overwrite`` (start again) is given.
    ``workers`` > 1 answers batches in that many processes (each opens the
    index itself; the output is the same, in the same order); None chooses
    (``auto_workers``)."""
    from tqdm import tqdm

    from rag.serve.assistant import validate_top_k

    questions, output = Path(questions), Path(output)
    config = getattr(assistant, "config", None)
    if top_k is not None and config is not None:  # a bad -k fails once, not once per question
        top_k = validate_top_k(top_k, config.top_k, config.max_top_k)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"--batch-size must be a whole number of at least 1, got {batch_size!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--workers must be a whole number of at least 1, got {workers!r}")
    if resume and overwrite:
        raise InputError("give --resume (keep the answers in the output) or --overwrite (replace them), not both")
    if output.exists() and questions.exists() and output.resolve() == questions.resolve():
        raise InputError(f"the output {output} is the question file itself; choose another output path")
    if output.is_dir():
        raise InputError(f"the output {output} is a directory; give a file path such as {output / 'answers.jsonl'}")
    parsed = read_questions(questions)
    for problem in parsed.problems:
        print(f"{questions}: {problem} (skipped)", file=sys.stderr)
    if output.exists() and output.stat().st_size > 0 and not (resume or overwrite):
        raise InputError(f"{output} already exists; use --resume to continue it or --overwrite to replace it")
    if output.exists() and resume:
        _repair_tail(output)
    done = completed_ids(output) if resume else set()
    rows = [r for r in parsed.rows if r["id"] not in done]
    if workers is None:
        workers = auto_workers(len(rows))
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        # backslashreplace: a lone surrogate passed through from the input (JSON
        # allows "\\ud800") is written back as that JSON escape, not a crash.
        fh = open(output, "a" if resume else "w", encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        raise WriteError(f"cannot write answers to {output}: {exc.strerror or exc}") from None
    answered = failed = 0
    pool = None
    t0 = time.perf_counter()
    bar = tqdm(total=len(rows), desc="answering", unit="q", file=sys.stderr, disable=not progress)
    try:
        chunks = [rows[start:start + batch_size] for start in range(0, len(rows), batch_size)]
        if workers > 1 and len(chunks) > 1:
            pool = _worker_pool(assistant.config, min(workers, len(chunks)))
            # imap keeps the input order: chunk i is written i-th whichever worker finishes first
            done_chunks = pool.imap(functools.partial(_answer_chunk_in_worker, top_k=top_k), chunks)
        else:
            done_chunks = (answer_chunk(assistant, chunk, top_k) for chunk in chunks)
        for chunk, (text, n_answered, problems) in zip(chunks, done_chunks):
            for problem in problems:
                failed += 1
                print(f"{questions}: {problem} (skipped)", file=sys.stderr)
            # One write per batch, then fsync: an interruption leaves whole
            # batches (a crash of the machine at worst one torn last line,
            # which --resume drops).
            try:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise WriteError(
                    f"writing answers to {output} failed after {answered} answers in this run "
                    f"({exc.strerror or exc}); the answers written so far are kept: fix the cause and continue "
                    "with --resume") from None
            answered += n_answered
            bar.update(len(chunk))
    except KeyboardInterrupt:
        print(f"\ninterrupted after {answered} answers in this run; {output} holds only complete answers: "
              "continue with --resume", file=sys.stderr)
        raise
    finally:
        if pool is not None:
            pool.terminate()  # after an error or Ctrl-C: the workers stop; written batches are whole
            pool.join()
        bar.close()
        try:
            fh.close()
        except OSError:  # the error was reported above; nothing more to flush
            pass
    elapsed = time.perf_counter() - t0
    return {"read": len(parsed.rows) + len(parsed.problems), "answered": answered, "already_done": len(done),
            "skipped_lines": len(parsed.problems), "skipped_questions": failed, "format": parsed.format,
            "seconds": round(elapsed, 2), "questions_per_second": round(answered / elapsed, 1) if elapsed else None,
            "workers": workers, "output": str(output)}


def _repair_tail(path: Path) -> None:
    """An interrupted write can leave half a line at the end: cut it off so
    appended answers start on a fresh line.  A complete last answer that
    merely lacks its newline is kept (and given one)."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    try:
        json.loads(data[cut:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        with open(path, "r+b") as fh:
            fh.truncate(cut)
        log.warning("%s: dropped an incomplete last line (%d bytes) before resuming", path, len(data) - cut)
    else:
        with open(path, "ab") as fh:
            fh.write(b"\n")


__all__ = ["read_questions", "run_batch", "QuestionFile", "Problem", "RagError"]
