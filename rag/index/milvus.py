"""The knowledge base in Milvus: an embedded milvus-lite file or a Milvus
server / cluster, the second backend beside the index directory
(:mod:`rag.index.local`).  Chosen by ``Config.store``::

    store = "local"                      the index directory (default, no server)
    store = "milvus:///data/kb.db"       milvus-lite, embedded (no server)
    store = "http://host:19530"          a Milvus server or cluster

A server's credentials come from the environment only, never from Config
(which is logged): ``MILVUS_TOKEN`` (``user:password`` or an API key) and
``MILVUS_DB`` (database name).

Layout: every build is three collections named after the build id,

    <name>_<build>_passages   primary key passage_id; row, doc_id, ordinal,
                              kind, heading path, offsets, sentences, text;
                              the passage vector (FLAT / HNSW / IVF_FLAT by
                              size, as :func:`rag.index.dense.choose_kind` decides);
                              the project's BM25 as a sparse vector (jieba
                              tokens with the domain dictionary, bm25s weights:
                              an inner product with the query's token counts is
                              exactly bm25s's score); optionally Milvus's own
                              BM25 over the same text with its jieba analyzer
                              (``milvus_bm25 = "native"``, for comparison)
    <name>_<build>_sentences  sentence vectors and their passage row / span
    <name>_<build>_blobs      the manifest, tokenizer settings, documents
                              (raw text + offsets) and the bm25s arrays, as
                              chunked text

and an alias ``<name>`` names the current build's blobs collection.  A build
writes new collections and then moves the alias (one ``alter_alias`` call):
readers keep using the previous build until then, and a build killed half way
leaves the previous one serving (its leftover collections are dropped by the
next build).  Every call carries a timeout (``milvus_timeout_s``): an
unreachable server is a :class:`KnowledgeBaseUnavailable` error, not a hang.

What stays in the serving process's memory, as with the local backend: the
passages and documents (for citations), the sentence vectors and the BM25
vocabulary (for answer extraction).  What Milvus does: the dense and BM25
searches over all passages.
"""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rag.index import dense
from rag.errors import IndexCorruptError, IndexNotFoundError, IndexStaleError, RagError
from rag.schema import Passage
from rag.index.sparse import BM25Index
from rag.index.base import (FORMAT_VERSION, IndexArtifacts, LazyScores, LoadedIndex, Ranking, check_references,
                            document_from_dict, document_to_dict)
from rag.tokenize import TokenizerSettings

log = logging.getLogger(__name__)

BLOB_CHARS = 60_000          # VARCHAR holds 65,535 bytes; base64/ASCII JSON chunks stay below
TEXT_MAX = 65_535
INSERT_BATCH = 500
QUERY_BATCH = 1_000
ROW_PAGE = 10_000            # a query's window is capped at 16,384 rows
NATIVE_ANALYZER = {"tokenizer": "jieba"}
BM25_MODES = ("project", "native")


class KnowledgeBaseUnavailable(RagError):
    """Milvus cannot be reached or does not answer in time."""

    exit_code = 10


def parse_store(store: str) -> tuple[str, str]:
    """``("local", "")``, ``("lite", path)`` or ``("server", uri)`` for a
    ``Config.store`` value."""
    s = (store or "local").strip()
    if s == "local":
        return "local", ""
    if s.startswith("milvus://"):
        path = s[len("milvus://"):]
        if not path:
            raise ValueError("a milvus-lite store needs a file: milvus:///path/kb.db")
        return "lite", path
    if re.match(r"^(https?|tcp)://", s):
        return "server", s
    raise ValueError(f"store must be 'local', 'milvus:///path/kb.db' (milvus-lite) or 'http://host:19530' "
                     f"(a Milvus server), got {store!r}")


def redact(uri: str) -> str:
    """A URI fit for a log line (no user:password@)."""
    return re.sub(r"//[^/@]*@", "//", uri)


def _import_pymilvus():
    try:
        import pymilvus
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RagError("the Milvus backend needs pymilvus (and milvus-lite for milvus:///file.db stores): "
                       "pip install 'pymilvus==3.0.2' 'milvus-lite==3.2.2'") from exc
    return pymilvus


def bm25_rows(bm25: BM25Index) -> list[dict[int, float]]:
    """Each passage's BM25 weights {token id: idf·tf-saturation} from the
    bm25s eager index (stored per token, CSC): the query side is the token
    counts, and their inner product is bm25s's score."""
    s = bm25._model.scores
    data, indices, indptr = (np.asarray(s[k]) for k in ("data", "indices", "indptr"))
    tokens = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    rows: list[dict[int, float]] = [{} for _ in range(int(s["num_docs"]))]
    for doc, tok, val in zip(indices[order].tolist(), tokens[order].tolist(), data[order].tolist()):
        if val > 0:
            rows[doc][tok] = val
    return rows


def query_sparse(bm25: BM25Index, tokens: Sequence[str]) -> dict[int, float]:
    """The query side of the project's BM25: counts of known tokens."""
    vocab = bm25._model.vocab_dict
    q: dict[int, float] = {}
    for t in tokens:
        i = vocab.get(t)
        if i is not None:
            q[int(i)] = q.get(int(i), 0.0) + 1.0
    return q


class MilvusSearch:
    """Dense and BM25 searches of one build, in Milvus.  Speaks row ids and
    scores, like :mod:`rag.index.dense` and :mod:`rag.index.sparse`."""

    def __init__(self, store: "MilvusStore", passages_collection: str, bm25: BM25Index, bm25_mode: str,
                 dense_kind: str) -> None:
        self.store = store
        self.collection = passages_collection
        self.bm25_index = bm25
        self.bm25_mode = bm25_mode
        self.dense_kind = dense_kind

    def _search(self, data: list, field: str, limit: int, rows: Sequence[int] | None,
                params: dict[str, Any]) -> list[tuple[int, float]]:
        if limit < 1 or not data:
            return []
        kwargs: dict[str, Any] = {}
        if rows is not None:
            if not len(rows):
                return []
            kwargs["filter"] = f"row in [{','.join(str(int(r)) for r in rows)}]"
        res = self.store.call("search", self.collection, data=data, anns_field=field, limit=min(limit, 16_384),
                              output_fields=["row"], search_params=params, **kwargs)
        hits = [(int(h["entity"]["row"]), float(h["distance"])) for h in res[0]]
        if field == "bm25_native":  # milvus-lite reports BM25 as a negative distance
            hits = [(r, abs(s)) for r, s in hits]
        return sorted(hits, key=lambda rs: (-rs[1], rs[0]))

    def dense_search(self, query_vector: np.ndarray, k: int,
                     rows: Sequence[int] | None = None) -> list[tuple[int, float]]:
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.dense_kind == dense.HNSW:
            params["params"] = {"ef": max(dense.HNSW_EF_SEARCH, k)}
        elif self.dense_kind == dense.IVF:
            params["params"] = {"nprobe": dense.IVF_NPROBE}
        return self._search([np.asarray(query_vector, np.float32).tolist()], "vector", k, rows, params)

    def dense_scores(self, query_vector: np.ndarray, rows: Sequence[int]) -> dict[int, float]:
        """Exact inner products for the given rows (their stored vectors)."""
        vectors = self.store.passage_vectors(self.collection, rows)
        return {int(r): float(v @ query_vector) for r, v in zip(rows, vectors)}

    def bm25_search(self, question: str, tokens: Sequence[str], k: int,
                    rows: Sequence[int] | None = None) -> list[tuple[int, float]]:
        if self.bm25_mode == "native":
            return self._search([question], "bm25_native", k, rows, {"metric_type": "BM25"})
        q = query_sparse(self.bm25_index, tokens)
        if not q:
            return []
        return [(r, s) for r, s in self._search([q], "bm25", k, rows, {"metric_type": "IP"}) if s > 0]

    def bm25_scores(self, question: str, tokens: Sequence[str], rows: Sequence[int]) -> dict[int, float]:
        """BM25 scores of the given rows (0 where no token matches)."""
        found = dict(self.bm25_search(question, tokens, len(rows), rows)) if len(rows) else {}
        return {int(r): found.get(int(r), 0.0) for r in rows}

    # The search interface retrieval speaks (rag.index.base.SearchBackend).
    def dense(self, query_vector: np.ndarray, depth: int, rows: Sequence[int] | None = None) -> Ranking:
        hits = self.dense_search(query_vector, depth, rows)
        return Ranking([r for r, _ in hits], LazyScores(dict(hits), lambda wanted: self.dense_scores(query_vector, wanted)))

    def bm25(self, question: str, tokens: Sequence[str], depth: int, rows: Sequence[int] | None = None) -> Ranking:
        hits = self.bm25_search(question, tokens, depth, rows)
        return Ranking([r for r, _ in hits],
                       LazyScores(dict(hits), lambda wanted: self.bm25_scores(question, tokens, wanted), rows))

    def passage_vectors(self) -> np.ndarray:
        return self.store.passage_vectors(self.collection, range(self.bm25_index.rows))


class MilvusStore:
    """The same interface as :class:`rag.index.local.IndexStore` (exists,
    read_manifest, publish, load, current_build, lock_path), in Milvus."""

    def __init__(self, uri: str, name: str = "policy_qa", timeout: float = 10.0, bm25_mode: str = "project",
                 lock_dir: Path | None = None) -> None:
        kind, target = parse_store(uri)
        if kind == "local":
            raise ValueError("MilvusStore needs a milvus:// or http(s):// store")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,120}", name):
            raise ValueError(f"milvus_collection must be letters, digits and underscores, got {name!r}")
        if bm25_mode not in BM25_MODES:
            raise ValueError(f"milvus_bm25 must be one of {BM25_MODES}, got {bm25_mode!r}")
        if timeout <= 0:
            raise ValueError("milvus_timeout_s must be greater than 0.")
        self.kind, self.target, self.name, self.timeout, self.bm25_mode = kind, target, name, timeout, bm25_mode
        if kind == "lite":
            self.target = str(Path(target).expanduser().resolve())
        self._lock_dir = Path(lock_dir) if lock_dir else None
        self._client = None
        self._loaded: set[str] = set()

    @classmethod
    def from_config(cls, config) -> "MilvusStore":
        return cls(config.store, config.milvus_collection, config.milvus_timeout_s, config.milvus_bm25,
                   lock_dir=config.index_dir)

    # ------------------------------------------------------------ plumbing
    def describe(self) -> str:
        return f"milvus-lite {self.target}" if self.kind == "lite" else f"Milvus {redact(self.target)}"

    @property
    def root(self) -> Path:
        return Path(self.target) if self.kind == "lite" else Path(self.describe())

    @property
    def lock_path(self) -> Path:
        """Builds into one store take this file lock (on this machine; builds
        from several machines into one cluster are not coordinated)."""
        if self.kind == "lite":
            return Path(self.target + ".build.lock")
        base = self._lock_dir or Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        return base / f".milvus-{self.name}.build.lock"

    def client(self):
        if self._client is None:
            pymilvus = _import_pymilvus()
            kwargs: dict[str, Any] = {"timeout": self.timeout}
            if self.kind == "server":
                token = os.environ.get("MILVUS_TOKEN")
                db = os.environ.get("MILVUS_DB")
                if token:
                    kwargs["token"] = token
                if db:
                    kwargs["db_name"] = db
            else:
                Path(self.target).parent.mkdir(parents=True, exist_ok=True)
                # milvus-lite's in-process gRPC server logs a traceback for every
                # AllocTimestamp call pymilvus 3 makes on insert (not implemented
                # there, and harmless): keep it off the user's console.
                logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
                # ... and its query iterator warns that milvus-lite keeps no MVCC
                # timestamp (it reads the latest data, which is what we want).
                logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
            try:
                self._client = pymilvus.MilvusClient(self.target, **kwargs)
            except Exception as exc:
                raise KnowledgeBaseUnavailable(
                    f"the knowledge base is unavailable: cannot connect to {self.describe()} within "
                    f"{self.timeout:g} s ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
                    "; check the server, or use store=local") from None
        return self._client

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One client call with the timeout; connection failures become
        KnowledgeBaseUnavailable."""
        client = self.client()
        kwargs.setdefault("timeout", self.timeout)
        return self._guarded(method, getattr(client, method), *args, **kwargs)

    def _guarded(self, method: str, fn, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            pymilvus = _import_pymilvus()
            code = getattr(exc, "code", None)
            text = str(exc)
            unavailable = isinstance(exc, (pymilvus.exceptions.MilvusUnavailableException, TimeoutError)) \
                or code in (1, 2) or "UNAVAILABLE" in text or "DEADLINE" in text.upper() or "timeout" in text.lower() \
                or "closed channel" in text.lower()
            if unavailable:
                self._client = None
                self._loaded.clear()
                raise KnowledgeBaseUnavailable(
                    f"the knowledge base is unavailable: {self.describe()} did not answer {method} within "
                    f"{self.timeout:g} s ({type(exc).__name__})") from None
            raise

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def _collections(self) -> list[str]:
        return list(self.call("list_collections"))

    def current_build(self) -> str | None:
        """The blobs collection the alias names (None: no knowledge base yet)."""
        aliases = self.call("list_aliases")
        if self.name not in (aliases.get("aliases", []) if isinstance(aliases, dict) else aliases):
            return None
        info = self.call("describe_alias", alias=self.name)
        return info.get("collection_name") if info else None

    def exists(self) -> bool:
        return self.current_build() is not None

    @staticmethod
    def _build_of(blobs_collection: str) -> str:
        return blobs_collection[:-len("_blobs")]

    # --------------------------------------------------------------- blobs
    def _blob_schema(self):
        pymilvus = _import_pymilvus()
        s = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", pymilvus.DataType.VARCHAR, max_length=512, is_primary=True)
        s.add_field("name", pymilvus.DataType.VARCHAR, max_length=512)
        s.add_field("seq", pymilvus.DataType.INT64)
        s.add_field("data", pymilvus.DataType.VARCHAR, max_length=TEXT_MAX)
        s.add_field("v", pymilvus.DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        return s

    def _put_blobs(self, collection: str, blobs: dict[str, str]) -> None:
        rows = []
        for name, text in blobs.items():
            chunks = [text[i:i + BLOB_CHARS] for i in range(0, len(text), BLOB_CHARS)] or [""]
            for seq, chunk in enumerate(chunks):
                rows.append({"key": f"{name}#{seq}", "name": name, "seq": seq, "data": chunk, "v": [0.0, 0.0]})
        for i in range(0, len(rows), 50):
            self.call("insert", collection, rows[i:i + 50])

    def _get_blobs(self, collection: str, prefix: str | None = None, names: Sequence[str] = ()) -> dict[str, str]:
        self._ensure_loaded(collection)
        if names:
            flt = "name in [" + ",".join(json.dumps(n, ensure_ascii=False) for n in names) + "]"
        else:
            flt = f'name like "{prefix}%"' if prefix else 'seq >= 0'
        rows = self._query_all(collection, flt, ["name", "seq", "data"])
        parts: dict[str, list[tuple[int, str]]] = {}
        for r in rows:
            parts.setdefault(r["name"], []).append((int(r["seq"]), r["data"]))
        return {n: "".join(d for _, d in sorted(p)) for n, p in parts.items()}

    def _ensure_loaded(self, collection: str) -> None:
        """Collections are searchable once loaded (a new milvus-lite process
        finds them released); idempotent, done once per collection here."""
        if collection not in self._loaded:
            state = self.call("get_load_state", collection)
            if "Loaded" not in str(state.get("state") if isinstance(state, dict) else state):
                self.call("load_collection", collection)
            self._loaded.add(collection)

    def _query_all(self, collection: str, flt: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``flt``, through a query iterator (primary-key
        cursor): offset paging re-reads every earlier row on each page."""
        it = self.call("query_iterator", collection, batch_size=QUERY_BATCH, filter=flt, output_fields=fields)
        out: list[dict[str, Any]] = []
        try:
            while True:
                batch = self._guarded("query_iterator", it.next)
                if not batch:
                    return out
                out.extend(batch)
        finally:
            with contextlib.suppress(Exception):
                it.close()

    def _query_rows(self, collection: str, count: int, fields: list[str]) -> list[dict[str, Any]]:
        """Rows 0..count-1 of a collection numbered by its ``row`` field, a
        range of rows per query (linear; offset paging took minutes at 100k
        passages in milvus-lite), plus any row numbered past ``count`` (which
        the caller's count check then refuses)."""
        out: list[dict[str, Any]] = []
        for a in range(0, count, ROW_PAGE):
            out.extend(self.call("query", collection, filter=f"row >= {a} and row < {a + ROW_PAGE}",
                                 output_fields=fields, limit=ROW_PAGE))
        out.extend(self.call("query", collection, filter=f"row >= {count}", output_fields=fields, limit=1))
        return out

    # ---------------------------------------------------------------- read
    def read_manifest(self) -> dict[str, Any]:
        blobs = self.current_build()
        if blobs is None:
            raise IndexNotFoundError(f"no knowledge base {self.name!r} in {self.describe()}; build it with: "
                                     "python -m rag build")
        text = self._get_blobs(blobs, names=["manifest"]).get("manifest")
        if text is None:
            raise IndexCorruptError(f"knowledge base {self.name!r} in {self.describe()} has no manifest; "
                                    "rebuild with: python -m rag build")
        manifest = json.loads(text)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexStaleError(f"knowledge base {self.name!r} has format version "
                                  f"{manifest.get('format_version')!r}, this program reads version {FORMAT_VERSION}; "
                                  "rebuild with: python -m rag build")
        return manifest

    def passage_vectors(self, collection: str, rows: Sequence[int]) -> np.ndarray:
        rows = [int(r) for r in rows]
        if not rows:
            return np.zeros((0, 0), np.float32)
        got: dict[int, list[float]] = {}
        for i in range(0, len(rows), QUERY_BATCH):
            part = rows[i:i + QUERY_BATCH]
            for r in self.call("query", collection, filter=f"row in [{','.join(map(str, part))}]",
                               output_fields=["row", "vector"]):
                got[int(r["row"])] = r["vector"]
        return np.asarray([got[r] for r in rows], dtype=np.float32)

    def load(self) -> LoadedIndex:
        """Everything but the searches into memory (passages, documents,
        sentence vectors, BM25 vocabulary); searches go to Milvus."""
        blobs_coll = self.current_build()
        if blobs_coll is None:
            raise IndexNotFoundError(f"no knowledge base {self.name!r} in {self.describe()}; build it with: "
                                     "python -m rag build")
        build = self._build_of(blobs_coll)
        try:
            blobs = self._get_blobs(blobs_coll)
            manifest = json.loads(blobs["manifest"])
            counts = manifest["counts"]
            dim = manifest["model"]["dimension"]
            documents = {d.doc_id: d for d in (document_from_dict(json.loads(v))
                                               for k, v in sorted(blobs.items()) if k.startswith("doc:"))}
            tokenizer = TokenizerSettings.from_dict(json.loads(blobs["tokenizer"]))
            bm25 = self._bm25_from_blobs(blobs, counts["passages"])
            for part in ("passages", "sentences"):
                self._ensure_loaded(f"{build}_{part}")
            rows = self._query_rows(f"{build}_passages", counts["passages"],
                                    ["row", "passage_id", "doc_id", "ordinal", "kind", "heading_path", "text", "start",
                                    "end", "clean_start", "clean_end", "sentences"])
            rows.sort(key=lambda r: int(r["row"]))
            passages = [Passage.from_dict(dict(r, heading_path=json.loads(r["heading_path"]),
                                               sentences=json.loads(r["sentences"]))) for r in rows]
            srows = self._query_rows(f"{build}_sentences", counts["sentences"],
                                     ["row", "passage_row", "start", "end", "vector"])
            srows.sort(key=lambda r: int(r["row"]))
            sentence_rows = np.asarray([[r["passage_row"], r["start"], r["end"]] for r in srows],
                                       dtype=np.int32).reshape(-1, 3)
            sentence_vectors = np.asarray([r["vector"] for r in srows], dtype=np.float32).reshape(-1, dim)
        except RagError:
            raise
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise IndexCorruptError(f"knowledge base {self.name!r} in {self.describe()} cannot be read "
                                    f"({type(exc).__name__}: {str(exc)[:200]}); rebuild with: python -m rag build") \
                from exc
        if len(passages) != counts["passages"] or len(documents) != counts["documents"] \
                or len(sentence_rows) != counts["sentences"] or [int(r["row"]) for r in rows] != list(range(len(rows))):
            raise IndexCorruptError(f"knowledge base {self.name!r} has {len(passages)} passages, {len(documents)} "
                                    f"documents and {len(sentence_rows)} sentences; its manifest says "
                                    f"{counts['passages']}, {counts['documents']} and {counts['sentences']}; "
                                    "rebuild with: python -m rag build")
        check_references(documents, passages, sentence_rows)
        search = MilvusSearch(self, f"{build}_passages", bm25, self.bm25_mode, manifest.get("dense_index", dense.EXACT))
        return LoadedIndex(Path(blobs_coll), manifest, documents, passages, tokenizer, search, sentence_vectors,
                           sentence_rows, bm25)

    def _bm25_from_blobs(self, blobs: dict[str, str], rows: int) -> BM25Index:
        files = json.loads(blobs["bm25"])
        with tempfile.TemporaryDirectory(prefix="rag-bm25-") as tmp:
            for name, b64 in files.items():
                (Path(tmp) / name).write_bytes(base64.b64decode(b64))
            return BM25Index.load(Path(tmp), rows)

    def load_artifacts(self) -> IndexArtifacts:
        """The current build as artifacts (for export into another store)."""
        index = self.load()
        vectors = index.search.passage_vectors()
        vectors = vectors.reshape(len(index.passages), index.manifest["model"]["dimension"])
        manifest = {k: v for k, v in index.manifest.items() if k not in ("files", "dense_index", "milvus")}
        return IndexArtifacts(list(index.documents.values()), index.passages, index.tokenizer, vectors,
                              index.sentence_vectors, index.sentence_rows, index.bm25, manifest)

    # --------------------------------------------------------------- write
    def _passage_schema(self, dim: int):
        pymilvus = _import_pymilvus()
        D = pymilvus.DataType
        s = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("passage_id", D.VARCHAR, max_length=512, is_primary=True)
        s.add_field("row", D.INT64)
        s.add_field("doc_id", D.VARCHAR, max_length=512)
        s.add_field("ordinal", D.INT64)
        s.add_field("kind", D.VARCHAR, max_length=64)
        s.add_field("heading_path", D.VARCHAR, max_length=TEXT_MAX)
        s.add_field("text", D.VARCHAR, max_length=TEXT_MAX)
        s.add_field("start", D.INT64)
        s.add_field("end", D.INT64)
        s.add_field("clean_start", D.INT64)
        s.add_field("clean_end", D.INT64)
        s.add_field("sentences", D.VARCHAR, max_length=TEXT_MAX)
        s.add_field("vector", D.FLOAT_VECTOR, dim=dim)
        s.add_field("bm25", D.SPARSE_FLOAT_VECTOR)
        if self.bm25_mode == "native":
            # Milvus's own BM25 over the text the project indexes (heading + passage), jieba analyzer.
            s.add_field("index_text", D.VARCHAR, max_length=TEXT_MAX, enable_analyzer=True,
                        analyzer_params=NATIVE_ANALYZER)
            s.add_field("bm25_native", D.SPARSE_FLOAT_VECTOR)
            s.add_function(pymilvus.Function(name="bm25_native_fn", function_type=pymilvus.FunctionType.BM25,
                                             input_field_names=["index_text"], output_field_names=["bm25_native"]))
        return s

    def _passage_indexes(self, n: int, exact_max: int):
        kind = dense.choose_kind(n, exact_max)
        ip = self.client().prepare_index_params()
        if kind == dense.EXACT:
            ip.add_index("vector", index_type="FLAT", metric_type="IP")
        elif kind == dense.HNSW:
            ip.add_index("vector", index_type="HNSW", metric_type="IP",
                         params={"M": dense.HNSW_M, "efConstruction": dense.HNSW_EF_CONSTRUCTION})
        else:
            ip.add_index("vector", index_type="IVF_FLAT", metric_type="IP", params={"nlist": dense.ivf_nlist(n)})
        ip.add_index("bm25", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        ip.add_index("row", index_type="INVERTED")
        if self.bm25_mode == "native":
            ip.add_index("bm25_native", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        return kind, ip

    def _create_collection(self, name: str, schema, index_params) -> None:
        """An empty collection with its indexes (loaded later, after the
        inserts and the flush).  pymilvus's own wait for an index sleeps
        0.5 s before it first asks, for each index (2.5 s of every build);
        an index on an empty collection is ready at once, so ask sooner."""
        self.call("create_collection", name, schema=schema)
        self.call("create_index", name, index_params, sync=False)
        deadline, pause = time.monotonic() + self.timeout, 0.005
        for param in index_params:
            while True:
                info = self.call("describe_index", name, param.index_name or param.field_name) or {}
                state = info.get("state", "Finished")
                if state == "Finished":
                    break
                if state == "Failed":
                    raise RagError(f"Milvus could not build the {param.field_name!r} index of {name}: "
                                   f"{info.get('index_state_fail_reason') or 'no reason given'}")
                if time.monotonic() > deadline:
                    raise KnowledgeBaseUnavailable(
                        f"the knowledge base is unavailable: {self.describe()} did not build the "
                        f"{param.field_name!r} index of {name} within {self.timeout:g} s")
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def publish(self, artifacts: IndexArtifacts) -> Path:
        """Write a build into new collections, then move the alias to it."""
        from rag.ingest.chunk import index_text

        pymilvus = _import_pymilvus()
        a = artifacts
        build = f"{self.name}_b{time.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:8]}"
        dim = int(a.passage_vectors.shape[1]) if a.passage_vectors.ndim == 2 else a.manifest["model"]["dimension"]
        n = len(a.passages)
        kind, index_params = self._passage_indexes(n, a.manifest["settings"]["exact_search_max"])
        t0 = time.perf_counter()
        created: list[str] = []
        try:
            self._create_collection(f"{build}_passages", self._passage_schema(dim), index_params)
            created.append(f"{build}_passages")
            sparse = bm25_rows(a.bm25)
            batch = []
            for i, p in enumerate(a.passages):
                row = {"passage_id": p.passage_id, "row": i, "doc_id": p.doc_id, "ordinal": p.ordinal, "kind": p.kind,
                       "heading_path": json.dumps(list(p.heading_path), ensure_ascii=False), "text": p.text,
                       "start": p.start, "end": p.end, "clean_start": p.clean_start, "clean_end": p.clean_end,
                       "sentences": json.dumps([list(s) for s in p.sentences]),
                       "vector": a.passage_vectors[i].tolist(),
                       "bm25": sparse[i] if sparse[i] else {0: 0.0}}
                if self.bm25_mode == "native":
                    row["index_text"] = index_text(p)
                batch.append(row)
                if len(batch) >= INSERT_BATCH:
                    self.call("insert", f"{build}_passages", batch)
                    batch = []
            if batch:
                self.call("insert", f"{build}_passages", batch)

            s = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field("row", pymilvus.DataType.INT64, is_primary=True)
            s.add_field("passage_row", pymilvus.DataType.INT64)
            s.add_field("start", pymilvus.DataType.INT64)
            s.add_field("end", pymilvus.DataType.INT64)
            s.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=dim)
            sip = self.client().prepare_index_params()
            sip.add_index("vector", index_type="FLAT", metric_type="IP")
            self._create_collection(f"{build}_sentences", s, sip)
            created.append(f"{build}_sentences")
            srows = a.sentence_rows.tolist()
            for i in range(0, len(srows), INSERT_BATCH):
                self.call("insert", f"{build}_sentences",
                          [{"row": j, "passage_row": srows[j][0], "start": srows[j][1], "end": srows[j][2],
                            "vector": a.sentence_vectors[j].tolist()} for j in range(i, min(i + INSERT_BATCH, len(srows)))])

            bip = self.client().prepare_index_params()
            bip.add_index("v", index_type="FLAT", metric_type="L2")
            self._create_collection(f"{build}_blobs", self._blob_schema(), bip)
            created.append(f"{build}_blobs")
            with tempfile.TemporaryDirectory(prefix="rag-bm25-") as tmp:
                a.bm25.save(Path(tmp))
                bm25_files = {p.name: base64.b64encode(p.read_bytes()).decode("ascii")
                              for p in sorted(Path(tmp).iterdir()) if p.is_file()}
            manifest = dict(a.manifest, dense_index=kind,
                            milvus={"build": build, "bm25": self.bm25_mode,
                                    "seconds_to_write": round(time.perf_counter() - t0, 3)})
            blobs = {"tokenizer": json.dumps(a.tokenizer.to_dict(), ensure_ascii=False),
                     "bm25": json.dumps(bm25_files)}
            blobs.update({f"doc:{d.doc_id}": json.dumps(document_to_dict(d), ensure_ascii=False) for d in a.documents})
            self._put_blobs(f"{build}_blobs", blobs)
            self._put_blobs(f"{build}_blobs", {"manifest": json.dumps(manifest, ensure_ascii=False)})  # last
            for c in created:
                self.call("flush", c)
                self.call("load_collection", c)
                self._loaded.add(c)
            # The switch: one alias move.
            previous = self.current_build()
            if previous is None:
                self.call("create_alias", f"{build}_blobs", self.name)
            else:
                self.call("alter_alias", f"{build}_blobs", self.name)
        except BaseException:
            for c in created:
                with contextlib.suppress(Exception):
                    self.call("drop_collection", c)
            raise
        self._prune(keep={build} | ({self._build_of(previous)} if previous else set()))
        log.info("knowledge base %s published to %s as %s (%d passages, %s) in %.1f s", self.name, self.describe(),
                 build, n, kind, time.perf_counter() - t0)
        return Path(f"{build}_blobs")

    def _prune(self, keep: set[str]) -> None:
        """Drop every build but ``keep`` (the new one and the one it replaced:
        a reader may still be loading it), including leftovers of killed builds."""
        prefix = f"{self.name}_b"
        builds: dict[str, list[str]] = {}
        for c in self._collections():
            m = re.fullmatch(re.escape(prefix) + r"(\d{8}T\d{6}_[0-9a-f]{8})_(passages|sentences|blobs)", c)
            if m:
                builds.setdefault(prefix + m.group(1), []).append(c)
        for b in (b for b in builds if b not in keep):
            for c in builds[b]:
                with contextlib.suppress(Exception):
                    self.call("drop_collection", c)

    def drop(self) -> None:
        """Remove the knowledge base (all its builds and the alias)."""
        with contextlib.suppress(Exception):
            self.call("drop_alias", self.name)
        for c in self._collections():
            if c.startswith(f"{self.name}_b"):
                self.call("drop_collection", c)
