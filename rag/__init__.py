"""政策问答 — offline, cited question answering over Chinese policy reports."""

__version__ = "0.1.0"
