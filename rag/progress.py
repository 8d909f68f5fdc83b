"""How a long step (building the index) says how far it is: tqdm bars on a
terminal (``progress=True``, the CLI), a callback ``report(stage, done,
total)`` (the chat UI turns it into Chinese with counts and time left), or
nothing (``False``).  The stages, in order: ``ingest`` (files read),
``chunk`` (documents cut into passages), ``tokenize`` (passages),
``passages`` and ``sentences`` (texts embedded), ``publish`` (the index
written)."""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar, Union

STAGES = ("ingest", "chunk", "tokenize", "passages", "sentences", "publish")

Report = Callable[[str, int, int], None]
ProgressArg = Union[bool, Report]
T = TypeVar("T")


def bars(progress: ProgressArg) -> bool:
    """Show tqdm bars (a terminal) — not when a callback takes the progress."""
    return progress is True


def report(progress: ProgressArg, stage: str, done: int, total: int) -> None:
    if callable(progress):
        progress(stage, done, total)


def counted(progress: ProgressArg, stage: str, items: Iterable[T], total: int) -> Iterator[T]:
    """``items`` as they are taken, each reported as done (first 0 of ``total``)."""
    report(progress, stage, 0, total)
    for done, item in enumerate(items, 1):
        yield item
        report(progress, stage, done, total)
