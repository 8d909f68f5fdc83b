"""The question encoders made from the real model: the int8 export agrees
with the float one, "auto" prefers it, and a damaged export falls back."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import Config
from rag.models.embed import Embedder, resolve_model_path
from rag.models.onnx import INT8_FILE, MIN_INT8_COSINE, ONNX_FILE, ONNX_SUBDIR

from tests.conftest import DATA, load_jsonl

pytestmark = pytest.mark.slow

QUESTIONS = [row["question"] for row in load_jsonl(DATA / "dev_qa.jsonl")]


@pytest.fixture(scope="module")
def model_dir(real_config: Config) -> Path:
    Embedder(real_config).load()  # converts, exports and quantizes on a fresh machine
    return Path(resolve_model_path(real_config))


def encoder(config: Config, backend: str, **changes) -> Embedder:
    return Embedder(config.replace(query_backend=backend, **changes)).load()


def test_auto_uses_the_int8_export(real_config, model_dir):
    assert (model_dir / ONNX_SUBDIR / INT8_FILE).exists()
    assert encoder(real_config, "auto").query_backend == "onnx-int8"
    report = json.loads((model_dir / ONNX_SUBDIR / "int8.json").read_text())
    assert report["min_cosine_vs_float"] >= MIN_INT8_COSINE


def test_int8_questions_agree_with_float_and_torch(real_config, model_dir):
    int8 = encoder(real_config, "onnx-int8", query_threads=1).encode_queries(QUESTIONS)
    float_ = encoder(real_config, "onnx").encode_queries(QUESTIONS)
    torch_ = encoder(real_config, "torch").encode_queries(QUESTIONS[:5])
    assert int8.shape == float_.shape == (len(QUESTIONS), 384)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-3)
    cos = (int8 * float_).sum(1)
    assert cos.min() >= MIN_INT8_COSINE, cos.min()
    assert (float_[:5] * torch_).sum(1).min() >= 0.9999
    # the same nearest question for each question, whichever encoder
    assert ((int8 @ float_.T).argmax(1) == np.arange(len(QUESTIONS))).all()


def test_damaged_int8_export_falls_back_to_float(real_config, model_dir, tmp_path):
    copy = tmp_path / "model"
    copy.mkdir()
    for item in model_dir.iterdir():
        if item.name != ONNX_SUBDIR:
            (copy / item.name).symlink_to(item)
    (copy / ONNX_SUBDIR).mkdir()
    shutil.copy(model_dir / ONNX_SUBDIR / ONNX_FILE, copy / ONNX_SUBDIR / ONNX_FILE)
    (copy / ONNX_SUBDIR / INT8_FILE).write_bytes(b"not an onnx file")
    embedder = Embedder(Config(model=str(copy), index_dir=tmp_path / "index")).load()
    assert embedder.query_backend == "onnx"
    assert embedder.encode_queries(["一站式服务中心是哪一年成立的？"]).shape == (1, 384)


def test_a_repeated_question_is_encoded_once(real_config, model_dir):
    embedder = encoder(real_config, "auto")
    first = [embedder.encode_queries([q]) for q in QUESTIONS[:3]]
    again = embedder.encode_queries([QUESTIONS[2]])
    assert np.array_equal(again, first[2])
    assert embedder.query_cache.stats()["hits"] == 1 and embedder.query_cache.stats()["misses"] == 3
    again[0, 0] = 0.0  # a caller changing what it got does not change the cache
    assert np.array_equal(embedder.encode_queries([QUESTIONS[2]]), first[2])
    # A question's vector does not depend on the batch it comes in (int8
    # activations are quantized per run, so each question is a run of its own).
    fresh = encoder(real_config, "auto", inference_cache_size=0)
    batch = fresh.encode_queries(QUESTIONS[:4])
    assert np.array_equal(batch, np.vstack([fresh.encode_queries([q]) for q in QUESTIONS[:4]]))
    assert np.array_equal(batch[1:], fresh.encode_queries(QUESTIONS[1:4]))
    assert np.array_equal(embedder.encode_queries(QUESTIONS[:3]), np.vstack(first))


def corpus_sentences(limit: int = 12) -> list[str]:
    from rag.ingest.corpus import load_corpus
    from rag.ingest.chunk import chunk_document

    corpus = load_corpus(Config().corpus_dir)
    passages = [p for d in corpus.documents for p in chunk_document(d, 200)]
    return [p.text[a:b] for p in passages for a, b in p.sentences][:limit] + [passages[0].text]


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_passage_vectors_do_not_depend_on_their_batch(real_config, model_dir, backend):
    """What makes the vector cache sound: a text gets the same vector, bit
    for bit, alone or among others (ONNX runs are one text each)."""
    texts = corpus_sentences()
    embedder = Embedder(real_config.replace(passage_backend=backend)).load()
    together = embedder.encode_passages(texts)
    alone = np.vstack([embedder.encode_passages([t]) for t in reversed(texts)])[::-1]
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_onnx_passages_agree_with_sentence_transformers(real_config, model_dir):
    texts = corpus_sentences()
    torch = Embedder(real_config.replace(passage_backend="torch", embed_device="cpu")).load().encode_passages(texts)
    float_ = Embedder(real_config.replace(passage_backend="onnx")).load().encode_passages(texts)
    assert (float_ * torch).sum(1).min() >= 0.9999
    int8 = Embedder(real_config.replace(passage_backend="onnx-int8")).load().encode_passages(texts)
    cosines = (int8 * torch).sum(1)
    assert cosines.min() >= MIN_INT8_COSINE and cosines.mean() >= 0.99
    # ... close enough that each sentence's nearest neighbour among the others is the same.
    np.fill_diagonal(sim_int8 := int8 @ int8.T, -1)
    np.fill_diagonal(sim_torch := torch @ torch.T, -1)
    assert (sim_int8.argmax(1) == sim_torch.argmax(1)).mean() >= 0.9


def test_passage_encoder_key_names_the_backend(real_config, model_dir):
    keys = {b: Embedder(real_config.replace(passage_backend=b)).passage_encoder_key()
            for b in ("onnx-int8", "onnx", "torch")}
    assert len(set(keys.values())) == 3
    assert keys["onnx"] == Embedder(real_config).passage_encoder_key()  # the default, stable across instances
