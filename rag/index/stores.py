"""Which store holds the knowledge base: local files (``index/``) or a
Milvus server / Milvus Lite file; and copying a knowledge base between them."""
from __future__ import annotations

from typing import Any

from rag.errors import ConfigError, IndexNotFoundError
from rag.files import file_lock
from rag.index.local import IndexStore


def open_store(config: Any, store: str | None = None) -> Any:
    """The knowledge base store ``config.store`` (or ``store``) names: an
    :class:`IndexStore` for ``"local"``, else a Milvus store (pymilvus is
    imported only then)."""
    value = config.store if store is None else store
    if (value or "local") == "local":
        return IndexStore(config.index_dir)
    from rag.index.milvus import MilvusStore

    return MilvusStore(value, config.milvus_collection, config.milvus_timeout_s, config.milvus_bm25,
                       lock_dir=config.index_dir)


def copy_knowledge_base(config: Any, source: str, target: str) -> dict[str, Any]:
    """Copy the current build of store ``source`` into store ``target``
    (``"local"`` is ``config.index_dir``): documents, passages, vectors and
    BM25 as they are, nothing re-embedded.  The target publishes it the way
    it publishes a build (a new directory or collection, then an atomic
    switch), so a copy killed half-way leaves the target's previous build
    serving.  Returns the target's manifest."""

    if (source or "local") == (target or "local"):
        raise ConfigError(f"source and target are the same store ({source or 'local'})")
    src, dst = open_store(config, source), open_store(config, target)
    if not src.exists():
        raise IndexNotFoundError(f"nothing to copy: {src.describe()} holds no knowledge base")
    artifacts = src.load_artifacts()
    with file_lock(dst.lock_path):
        dst.publish(artifacts)
    return dst.read_manifest()
