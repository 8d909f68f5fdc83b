"""Confidence in an answer, and the refusal: the answer's features (how
well the evidence covers the question, whether it names what the question
pins down, whether the short answer has the form asked for, ...), the
calibrated logistic model over them (rag/data/confidence.toml, fitted by
``rag calibrate``), and the threshold below which the answer is refused."""
from __future__ import annotations

import math
import re
from functools import lru_cache

from rag.data import load_table
from rag.answer.agreement import agreement_features
from rag.answer.analyze import QuestionAnalysis, type_table
from rag.answer.candidates import GENERIC_VERBS, TYPED, Choice, contrasted_terms
from rag.answer.reading import fits_question
from rag.answer.terms import QuestionTerms
from rag.config import Config
from rag.ingest.chunk import index_text
from rag.schema import Hit, Passage
from rag.text import CN_SURNAMES, speaks_of_another_time, split_clauses, squeeze, years_in
from rag.tokenize import ChineseTokenizer

# Shown as a weak point when this share of the question's nouns (by weight)
# never occurs in the corpus ("火星基地", "常住人口").
UNKNOWN_NOUNS_SHOWN = 0.5
# A value read from the document's own metadata and found printed in it.
METADATA_CONFIDENCE = 0.99
# A noun right after a question word is what is asked for ("什么东西",
# "哪个地方"), not something the question takes as given.
_ASKED_NOUN = re.compile(r"(?:什么|哪个|哪些|哪一个|哪|何)$")


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# Confidence = sigmoid(w . features + bias).  Fitted with
# `python -m rag calibrate` (logistic regression on labelled questions); the
# fitted values are stored in data/confidence.toml.
@lru_cache(maxsize=1)
def confidence_model() -> tuple[dict[str, float], float, float]:
    """(weights, bias, calibrated threshold)."""
    data = load_table("confidence.toml")
    return {k: float(v) for k, v in data["weights"].items()}, float(data["bias"]), float(data.get("threshold", 0.5))


@lru_cache(maxsize=1)
def below_high(confidence: float) -> float:
    """``confidence`` held just under the 高 band: an answer that must never
    be shown as 高 (a guessed referent, a disagreement, a clause picked for
    being near the question's words) keeps its place below that."""
    return min(confidence, round(confidence_bands()[0][0] - 0.001, 4))


def confidence_bands() -> tuple[tuple[float, str, str], ...]:
    """(lower bound, level, 高/中/低) of each confidence band, highest first
    (rag/data/confidence.toml [bands]: chosen so that 高 keeps the answers
    right at the precision its model card states)."""
    bands = load_table("confidence.toml").get("bands", {})
    return ((float(bands.get("high", 0.8)), "high", "高"), (float(bands.get("medium", 0.6)), "medium", "中"),
            (0.0, "low", "低"))


def weak_points(features: dict[str, float], qtype: str = "", qtype_zh: str = "") -> list[tuple[str, str]]:
    """What lowers the confidence in an answer, as (Chinese, English) lines,
    from its features (``Answer.debug["features"]``); [] when nothing stands out."""
    f = features
    if not f:
        return []
    points = []
    if f.get("missing_critical"):
        points.append(("问题中的年份、引号里的词或名称没有出现在最相关的段落中",
                       "a year, quoted term or name of the question does not occur in the best passage"))
    if f.get("missing_number"):
        points.append(("问题中的数字没有出现在最相关的段落中",
                       "a number of the question does not occur in the best passage"))
    # Said in words a reader of the answer uses; the figures stay in the debug view.
    if f.get("unknown_terms", 0.0) >= 0.3:
        points.append(("问题里" + ("大部分" if f["unknown_terms"] >= 0.6 else "有些") + "关键词在知识库的文档中没有出现",
                       ("most" if f["unknown_terms"] >= 0.6 else "some") + " of the question's key words never occur in "
                       "the documents"))
    if f.get("unknown_nouns", 0.0) >= UNKNOWN_NOUNS_SHOWN:
        points.append(("问题的主要名词在知识库中从未出现", "the question's main nouns never occur in the corpus"))
    if f.get("subject_missing"):
        points.append(("最相关的段落谈的不是问题的主体",
                       "the subject of the question is not what the best passage talks about"))
    if f.get("passage_coverage", 1.0) < 0.5:
        points.append(("找到的最相关段落只谈到问题的一小部分" if f["passage_coverage"] < 0.25
                       else "找到的最相关段落只谈到问题的一部分",
                       "the best passage speaks to only " + ("a small part" if f["passage_coverage"] < 0.25 else "part")
                       + " of the question"))
    if f.get("form_missing"):
        points.append(("回答所在的句子没有说明原因、目的或定义，可能只是与问题用词相近的句子" if qtype in ("reason", "definition")
                       else "回答所在的句子不是问题所问的形式",
                       "the sentence answered from gives no cause, purpose or definition; it may only share the "
                       "question's words"))
    if f.get("typed_missing"):
        points.append((f"没能从证据中找到{qtype_zh or qtype}类的答案",
                       f"no {qtype} answer could be extracted from the evidence"))
    return points


class Judge:
    """Decides whether an answer is given: ``features`` -> ``confidence`` ->
    ``refuses`` (below ``threshold``), with ``refusal_reason`` saying why."""

    def __init__(self, terms: QuestionTerms, tokenizer: ChineseTokenizer, passages: list[Passage],
                 row_of_id: dict[str, int], config: Config, titles: dict[str, str] | None = None) -> None:
        # The years each document's title names (doc_id -> title given).
        self._title_years = {d: years_in(t) for d, t in (titles or {}).items()}
        self.terms = terms
        self.tokenizer = tokenizer
        self.passages = passages
        self.row_of_id = row_of_id
        self.config = config

    def refuses(self, choice: Choice | None, confidence: float) -> bool:
        # (No veto on top of the fitted model: unknown nouns and a subject absent
        # from the evidence are its features.  The two vetoes made on the
        # bundled report refused 5 answers that were right and no unanswerable
        # question the model would have answered, on the calibration sets.)
        return choice is None or confidence < self.threshold

    @property
    def threshold(self) -> float:
        configured = self.config.refusal_threshold
        return confidence_model()[2] if configured < 0 else configured

    def confidence(self, features: dict[str, float]) -> float:
        weights, bias, _ = confidence_model()
        return sigmoid(bias + sum(weights.get(k, 0.0) * v for k, v in features.items()))

    def refusal_reason(self, a: QuestionAnalysis, f: dict[str, float], choice: Choice | None) -> tuple[str, str]:
        """Why the answer is refused, in (English, Chinese)."""
        if choice is None:
            return "no passage was retrieved", "没有检索到段落"
        points = weak_points(f, a.qtype, type_table().label_zh(a.qtype))
        if not points:
            return "combined evidence below the confidence threshold", "综合证据的置信度低于拒答阈值"
        return "; ".join(en for _, en in points), "；".join(zh for zh, _ in points)

    def features(self, a: QuestionAnalysis, forms: dict[str, list[str]], pool: list[Hit],
                 choice: Choice | None) -> dict[str, float]:
        if choice is None or not pool:
            return {"passage_coverage": 0.0, "sentence_coverage": 0.0, "sentence_dense": 0.0, "top_dense": 0.0,
                    "typed_missing": 1.0, "span_support": 0.0, "type_mismatch": 0.0,
                    "english": 1.0 if a.lang == "en" else 0.0, "missing_critical": 1.0, "missing_number": 1.0,
                    "unknown_terms": 1.0,
                    "unknown_nouns": 1.0, "typed_coverage": 0.0, "span_clause_coverage": 0.0,
                    "subject_missing": 1.0, "predicate_missing": 1.0, **agreement_features(a, None)}
        # A date read off a section heading is judged by the sentence it dates.
        evidence = choice.support[0] if choice.support else choice.candidate
        passage = evidence.hit.passage
        context = index_text(passage)
        critical, numbers = self.unsupported_terms(a, pool, choice)
        total = sum(self.terms.term_weight(t) for t in forms) or 1.0
        # A word of the type's cue ("定位" of "什么定位") names the answer's
        # form, not its content: the text need not use it.
        unknown = sum(self.terms.term_weight(t) for t in forms if not self.terms.in_corpus(t) and t not in a.cue_terms and
                      not any(self.terms.in_corpus(v) for v in forms[t][1:]))
        typed = choice.span is not None and not choice.fallback
        # Nouns of the question that the corpus never uses (常住人口, GDP, 周末)
        # name a missing concept; unknown verbs are usually just paraphrase.
        nouns = {w for w, flag in self.tokenizer.tagged_words(a.question)
                 if flag[:1] in ("n", "t", "x", "e") or flag == "eng"}
        # (English words the glossary could not translate are a gap in the
        # glossary, not in the corpus: they are left to unknown_terms.)
        missing_nouns = sum(self.terms.term_weight(t) for t in forms if t in nouns and not t.isascii() and t not in a.cue_terms
                            and not self.terms.in_corpus(t) and not any(self.terms.in_corpus(v) for v in forms[t][1:]))
        return {
            "passage_coverage": round(self.terms.coverage(context, forms), 4),
            "sentence_coverage": round(evidence.lexical, 4),
            "sentence_dense": round(evidence.dense, 4),
            "top_dense": round(max((h.dense_score or 0.0) for h in pool), 4),
            # Date/number/entity/list questions need a typed answer; without one
            # the evidence does not say what was asked.
            "typed_missing": 1.0 if a.qtype in TYPED and not typed else 0.0,
            "span_support": round(min(choice.span.score, 6.0) / 6.0, 4) if typed and choice.span else 0.0,
            # The short answer is not of the form asked for: a list of another
            # length than the count asked, no count for 多少, a date less
            # precise than "几月几日" asks.
            # Or it belongs to another time ("如今…97个窗口" for "2000年…一开始…多少个窗口").
            "type_mismatch": 1.0 if choice.span and (choice.span.kind.endswith("count_mismatch")
                                                     or not fits_question(a, choice.span.text)
                                                     or self.of_another_time(a, choice)) else 0.0,
            "english": 1.0 if a.lang == "en" else 0.0,
            "missing_critical": float(bool(critical)),
            "missing_number": float(bool(numbers)),
            "unknown_terms": round(unknown / total, 4),
            "unknown_nouns": round(missing_nouns / total, 4),
            "subject_missing": 1.0 if self.subject_missing(a, forms, passage) else 0.0,
            "predicate_missing": round(self.predicate_missing(a, forms, evidence.text), 4),
            "typed_coverage": round(evidence.lexical, 4) if a.qtype in TYPED else 0.0,
            # The answer must sit in a clause about the question's subject:
            # "同年7月" belongs to whatever its own clause says happened.
            "span_clause_coverage": round(self._span_clause_coverage(choice, forms, evidence), 4) if typed else 0.0,
            # What the short answer is against what was asked (unit, place level, head noun).
            **agreement_features(a, choice.span.text if choice.span is not None else None, evidence.text),
        }

    def unsupported_terms(self, a: QuestionAnalysis, pool: list[Hit], choice: Choice) -> tuple[list[str], list[str]]:
        """What the question pins down that the evidence does not hold:
        (years, quoted terms and names; numbers).  Kept apart because they
        differ in how surely they mean "not answered here": a year or a quoted
        name rarely goes unrepeated in the evidence, while a number is often
        the question's own arithmetic ("短11公里", "4倍")."""
        # A date read off a section heading is judged by the sentence it dates.
        evidence = choice.support[0] if choice.support else choice.candidate
        context = squeeze(index_text(evidence.hit.passage))
        # A year the document's title names is what all of it speaks of (a
        # communiqué titled 2020年… writes 全年…, never the year).
        title_years = self.title_years(evidence.hit.passage.doc_id)
        absent = [c for c in a.years + a.quoted + a.numbers if squeeze(c) not in context and c not in title_years]
        numbers = [c for c in absent if c in a.numbers]
        absent = [c for c in absent if c not in a.numbers]
        # Places, people and organisations the question names but the corpus
        # never mentions (杭州, 深圳前海): the question is about something else.
        pool_text = "".join(index_text(h.passage) for h in pool)
        names, at = list(a.unknown_names), 0
        for w, flag in self.tokenizer.tagged_words(a.question):
            at += len(w)
            if flag in ("ns", "nr", "nt") and len(w) >= 2 and w not in pool_text \
                    and self.tokenizer.dictionary_tag(w) == flag \
                    and (flag != "nr" or (len(w) <= 3 and w[0] in CN_SURNAMES)) \
                    and not _ASKED_NOUN.search(a.question, 0, at - len(w)) \
                    and not self.named_by_parts(w, pool_text):
                names.append(w)
        # "中等职业学校…" answered from "高等职业教育…达到12000元": another of a set of alternatives.
        absent += contrasted_terms(a.question, squeeze(evidence.text), context)
        return list(dict.fromkeys(absent + names)), numbers

    def title_years(self, doc_id: str) -> set[str]:
        return self._title_years.get(doc_id, set())

    def named_by_parts(self, name: str, text: str) -> bool:
        """Does ``text`` hold every name inside ``name`` ("土耳其" of
        "土耳其政府"), when it has any: the rest is a common noun.  Jieba's
        dictionary tags a guess (HMM) or a name plus a word as a name too."""
        parts = [w for w in self.tokenizer.tokenize(name) if w != name and len(w) >= 2
                 and self.tokenizer.dictionary_tag(w) in ("ns", "nr", "nt")]
        return bool(parts) and all(w in text for w in parts)

    def _span_clause_coverage(self, choice: Choice, forms: dict[str, list[str]], evidence) -> float:
        # a date read off a heading has no clause of its own: the sentence it dates counts
        return evidence.lexical if choice.support else self.span_clause_coverage(choice, forms)

    def subject_missing(self, a: QuestionAnalysis, forms: dict[str, list[str]], passage: Passage) -> bool:
        """Chinese puts the topic first: the first specific noun of the
        question ("一站式服务中心的电话…") must be in the evidence passage or
        its neighbours in the same section, or the evidence is about
        something else."""
        nouns = {w for w, flag in self.tokenizer.tagged_words(a.question) if flag[:1] in ("n", "x") or flag == "nz"}
        for term in a.focus_terms:
            if term in nouns and len(term) >= 2 and self.terms.in_corpus(term) and self.terms.term_weight(term) >= 0.5:
                context = self.section_context(passage)
                if any(v in context for v in forms.get(term, [term])):
                    return False
                grams = [term[i:i + 2] for i in range(len(term) - 1)]
                return sum(g in context for g in grams) < max(1, len(grams) / 2)
        return False

    def section_context(self, passage: Passage) -> str:
        """A passage with the passages before and after it in its section."""
        passages = self.passages
        row = self.row_of_id.get(passage.passage_id, -10)
        rows = [r for r in (row - 1, row, row + 1) if 0 <= r < len(passages)
                and passages[r].doc_id == passage.doc_id and passages[r].heading_path[:1] == passage.heading_path[:1]
                and passages[r].kind == passage.kind]
        return "".join(index_text(passages[r]) for r in rows) if rows else index_text(passage)

    def predicate_missing(self, a: QuestionAnalysis, forms: dict[str, list[str]], sentence: str) -> float:
        """Share of the question's specific verbs ("发明", "签署") that neither
        the evidence sentence nor the corpus uses (with synonyms)."""
        verbs = [w for w, flag in self.tokenizer.tagged_words(a.question)
                 if flag[:1] == "v" and len(w) >= 2 and w in forms and w not in GENERIC_VERBS]
        if not verbs:
            return 0.0
        missing = [v for v in verbs if not any(f in sentence for f in forms[v])]
        return len(missing) / len(verbs)

    def span_clause_coverage(self, choice: Choice, forms: dict[str, list[str]]) -> float:
        span, text = choice.span, choice.candidate.text
        if span is None:
            return 0.0
        clauses = split_clauses(text)
        inside = [i for i, (s, e) in enumerate(clauses) if s < span.end and span.start < e]
        if not inside:
            return 0.0
        lo, hi = inside[0], inside[-1] + 1
        # A clause that is little more than the answer ("2017年，") introduces
        # the next one, which then says what happened.
        rest = text[clauses[lo][0]:clauses[hi - 1][1]].replace(text[span.start:span.end], "", 1)
        if len(rest.strip("，,：:；;。 ")) < 4 and hi < len(clauses):
            hi += 1
        window = text[clauses[lo][0]:clauses[hi - 1][1]].replace(text[span.start:span.end], "", 1)
        return self.terms.coverage(window, forms)

    @staticmethod
    def of_another_time(a: QuestionAnalysis, choice: Choice) -> bool:
        """Is the short answer in a clause about the time of writing while the
        question asks about an earlier one (text.speaks_of_another_time)?"""
        text = choice.candidate.text
        if choice.span is None or text[choice.span.start:choice.span.end] != choice.span.text:
            return False
        clause = next((text[s:e] for s, e in split_clauses(text) if s <= choice.span.start < e), "")
        return speaks_of_another_time(a.question, clause)
