"""The answer stage, as its steps:

* ``evidence`` — the candidate sentences, ranked, and the answers read off a
  document's layout (outline points, parallel clauses, metadata, section dates);
* ``candidates`` — the shared dataclasses (SentenceCandidate, Choice) and the
  extractors each question type runs;
* ``reading`` — the extractive reader over the best evidence, and whether it
  or the typed rules (``rag.answer.extract``, ``rag.answer.outline``) give the short answer;
* ``confidence`` — the calibrated confidence and the refusal constants;
* ``compose`` — statements, English renderings, citation verification;
* ``answerer`` — the Answerer, which runs one question through them.
"""
from rag.answer.answerer import Answerer
from rag.answer.compose import english_rendering, make_statement, natural_join, verify_citation

__all__ = ["Answerer", "english_rendering", "make_statement", "natural_join", "verify_citation"]
