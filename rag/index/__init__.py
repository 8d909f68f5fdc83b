"""The knowledge base on disk or in Milvus: artifacts, dense and BM25 indexes, building and updating."""
