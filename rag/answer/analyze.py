"""Question analysis: language, type (from the table in
data/question_types.toml), focus terms, the question word to fill in, and
what kind of thing the answer is (unit, head noun, how many items)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

from rag.data import load_table
from rag.text import CJK_IDEOGRAPH, CN_NUM, DURATION, MEASURE_WORDS_RE, cn_to_int, detect_lang
from rag.tokenize import EN_STOPWORDS, ChineseTokenizer


@dataclass(frozen=True)
class QuestionType:
    name: str
    priority: int
    zh: tuple[re.Pattern, ...]
    en: tuple[re.Pattern, ...]
    templates: dict[str, str]
    # Whether the extractive reader may give the short answer
    # (rag/answer/reading.py: combine): "reader" or "rules".
    reader: str = "rules"
    label_zh: str = ""  # the type's name on a Chinese page
    # Nouns that suggest the type only when no type's question-word cue
    # matched ("比例是?" is a number question, "哪一种米的比例最多" asks
    # for an entity).
    zh_weak: tuple[re.Pattern, ...] = ()


@dataclass(frozen=True)
class TypeTable:
    types: tuple[QuestionType, ...]
    refusal: dict[str, str]
    unsupported: dict[str, str]  # the lead of an answer whose question names what the passage does not

    def get(self, name: str) -> QuestionType:
        for t in self.types:
            if t.name == name:
                return t
        raise KeyError(name)

    def label_zh(self, name: str) -> str:
        """The Chinese name of a question type (the name itself when unknown)."""
        try:
            return self.get(name).label_zh or name
        except KeyError:
            return name


@lru_cache(maxsize=1)
def type_table() -> TypeTable:
    data = load_table("question_types.toml")
    types = []
    for row in data["types"]:
        if row.get("reader", "rules") not in ("reader", "rules"):
            raise ValueError(f"question_types.toml: type {row['name']!r} has reader = {row['reader']!r}; "
                             "use \"reader\" or \"rules\"")
        templates = {k: v for k, v in row.items() if k.startswith(("lead_", "fallback_"))}
        types.append(QuestionType(row["name"], int(row["priority"]), tuple(re.compile(p) for p in row["zh"]),
                                  tuple(re.compile(p, re.I) for p in row["en"]), templates,
                                  row.get("reader", "rules"), row.get("label_zh", ""),
                                  tuple(re.compile(p) for p in row.get("zh_weak", ()))))
    types.sort(key=lambda t: -t.priority)
    return TypeTable(tuple(types), data["refusal"], data["unsupported"])


# "累计出到第几期": the running count since the first issue ("总第129期"), not
# this year's number ("第14期").
CUMULATIVE_ORDINAL = re.compile(r"累计|总共|一共|合计|总计|总第|创刊以来|从创刊|有史以来|通算|前后共")


# --------------------------------------------------------------------------
# What the answer is: head nouns and their categories (data, extend freely)
# --------------------------------------------------------------------------
HEAD_NOUN_CATEGORIES: dict[str, tuple[str, ...]] = {
    "org": ("部门", "单位", "机构", "机关", "局", "办", "委", "厅", "部", "组织", "政府", "中心", "处室", "处", "智库",
            "书院", "主办方", "主办单位", "牵头单位"),
    "publication": ("刊物", "期刊", "杂志", "报纸", "刊", "期"),
    "document": ("文件", "方案", "协议", "规定", "意见", "通知", "法规", "政策", "总体方案"),
    "place": ("国家", "城市", "省份", "省", "地方", "地区", "地点", "国", "楼", "大厦", "哪里", "在哪", "路", "街",
              "大道", "区", "县", "镇"),
    "person": ("谁", "人", "领导", "书记", "编辑", "责任编辑", "设计师"),
    "program": ("试点", "工程", "项目", "案例", "改革", "模式", "理念", "称号", "口号", "做法", "荣誉", "标志",
                "架构", "原则", "目标", "经验", "先河", "主题"),
    "company": ("公司", "企业", "集团", "厂"),
}
# English counted nouns and the measure word the Chinese text uses for them.
EN_UNITS = {"working days": "个工作日", "years": "年", "items": "项", "matters": "项", "departments": "个",
            "windows": "个", "divisions": "个", "copies": "份", "seals": "枚", "stamps": "枚", "days": "天",
            "people": "名", "staff": "名", "officials": "名", "officers": "名", "cases": "件", "applications": "件",
            "provinces": "省", "times": "次", "rounds": "轮", "manuals": "份", "countries": "国"}
# Titles of people ("园区的书记是谁" must be answered by a 书记).
ROLE_TITLES = ("书记", "副书记", "市长", "副市长", "主任", "主席", "局长", "处长", "主编", "编辑", "责任编辑", "总设计师")
# Nouns after a question word that add nothing to the answer ("哪几件事").
GENERIC_HEADS = ("事情", "事项", "事", "内容", "东西")
_HEAD_LOOKUP = sorted(((noun, cat) for cat, nouns in HEAD_NOUN_CATEGORIES.items() for noun in nouns),
                      key=lambda x: -len(x[0]))

# Question words that a statement can replace in place (Chinese questions keep
# the question word where the answer goes).  Order: longest forms first.
WH_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("period", re.compile(r"从哪(?:一)?年到哪(?:一)?年|哪几年|起止(?:时间|年份)?")),
    ("date", re.compile(r"(?:在)?(?:哪一年|哪个年度|什么年度|哪年|何年|哪一天|哪天|何时|什么时候|什么时间|哪个月|几月份?|哪年哪月)")),
    ("quantity", re.compile(rf"(?:多少|几)(?P<unit>{MEASURE_WORDS_RE})?")),
    ("which", re.compile(rf"(?:哪(?:一|几|[{CN_NUM}])?(?:个|家|位|本|份|部|项|条|种|类|所|座|间|些|件|方面|栋|幢|层|处|号|块|方|边|片)?|什么)"
                         rf"(?P<head>[{CJK_IDEOGRAPH}]{{0,6}})")),
    ("who", re.compile(r"谁")),
    ("where", re.compile(r"哪里|何处|什么地方")),
)

# Questions whose question word is written another way, rewritten to the usual
# form before the rules read them (the debug field "resolved_question"; the
# reader reads the question as asked).  Each rule: (pattern, replacement,
# applies only when the question has no other question word).  Tried and
# dropped (MRC tune split): a closing "为？" as "为哪个？", 那一种 as 哪一种.
QUESTION_REWRITES: tuple[tuple[re.Pattern, str, bool], ...] = (
    # "卢安达境内人口最多的城市为何?": a closing 为何 after a noun asks "what is",
    # as often in Taiwanese usage (DRCD); "这是为何" still asks why.
    (re.compile(r"(?<![是这此那])为何(?=[？?。！!\s]*$)"), "是什么", False),
)
_ASKING = re.compile(r"哪|什么|甚么|多少|几|谁|怎|如何|为何|为什么|为啥|何|吗|呢|是否|是不是|有没有|能否|可否|么[？?]*$")


def resolve_question(question: str) -> str:
    """``question`` with an implied or variant question word written out."""
    q = question.strip()
    if detect_lang(q) != "zh":
        return q
    for pattern, replacement, only_without_question_word in QUESTION_REWRITES:
        if only_without_question_word and _ASKING.search(q):
            continue
        q = pattern.sub(replacement, q, count=1)
    return q


# 几 that means "a few", not "how many": after 除了/最近/过去/前/近 ("除了几位市领导",
# "近几年"), or in "几个X中，哪…" ("北朝几个朝代中，哪个朝代最积极…").
_INDEFINITE_JI = re.compile(r"(?:(?<=除了)|(?<=除)|(?<=最近)|(?<=过去)|(?<=以后)|(?<=之后)|(?<=前)|(?<=近))几"
                            rf"|几(?=[个位项家种类条次]?[{CJK_IDEOGRAPH}]{{1,6}}?(?:当中|之中|中|里)[，,]?.*哪)")


def indefinite_ji(question: str) -> set[int]:
    """Offsets of the 几 in ``question`` that do not ask a number."""
    return {m.start() for m in _INDEFINITE_JI.finditer(question)}
_QUESTION_TAIL = re.compile(r"[吗呢啊呀吧么？?。！!\s]+$")
_PRONOUNS = re.compile(r"^(?:那么?|那它|它|其|该|这个|那个|他们|它们|此)|(?:它|它们|其|该机构|该部门|这个机构|这一改革)")
_QUOTED = re.compile(r"[“\"「]([^”\"」]{1,20})[”\"」]")
_YEAR = re.compile(r"(?:19|20)\d{2}")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class QuestionAnalysis:
    question: str
    lang: str
    qtype: str
    tokens: list[str]            # BM25 tokens (search mode, no stopwords)
    focus_terms: list[str]       # content words of the question (precise mode)
    wh_kind: str | None = None   # which WH_PATTERNS entry matched
    wh_span: tuple[int, int] | None = None
    unit: str | None = None      # measure word asked for ("多少项" -> 项)
    head_noun: str | None = None  # "哪个部门" -> 部门
    head_category: str | None = None
    expected_count: int | None = None  # "哪两个局" -> 2
    years: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    wants_period: bool = False
    ordinal: int | None = None   # "第三阶段" -> 3
    expanded_terms: list[str] = field(default_factory=list)  # English glossary expansions
    untranslated: list[str] = field(default_factory=list)  # English content words the glossary lacks, in order
    variants: dict[str, list[str]] = field(default_factory=dict)  # focus term -> other words that count as it
    secondary: list[tuple[str, str]] = field(default_factory=list)  # e.g. ("ordinal", "期") for 第几期
    unknown_names: list[str] = field(default_factory=list)  # English names with no Chinese equivalent
    head_start: int | None = None  # where the head phrase after "哪个/哪两项" starts in the question
    # Focus terms inside the cue that set the type ("定位" of "什么定位"): they
    # say what form the answer takes, so the text need not contain them.
    cue_terms: list[str] = field(default_factory=list)
    replace_span: tuple[int, int] | None = None  # what a statement replaces, when wider than wh_span
    asked: str = ""  # the question as asked, before resolve_question (what the reader was trained on)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


# Words that ask rather than say: never focus terms.
QUESTION_WORDS = re.compile(r"哪|什么|多少|几|谁|怎|如何|为何|为什么|为啥|干嘛|吗|呢|是否|是不是|有没有|总的来说|请问|一下"
                            r"|^多[高大快长少久远重深宽]?$|^叫$")


def focus_terms(question: str, tokenizer: ChineseTokenizer) -> list[str]:
    """Content words of the question, in order, without duplicates."""
    out: list[str] = []
    # Tag questions ("…，对不对？") ask; they say nothing about the content.
    question = re.sub(r"[，,]?\s*(?:对不对|是不是|对吗|是吗|对吧|是吧|没错吧|有没有错)[？?。！!]*$", "", question)
    for w in tokenizer.words(question):
        if w in tokenizer.stopwords or w in EN_STOPWORDS or QUESTION_WORDS.search(w) or w in out:
            continue
        out.append(w)
    return out


def classify(question: str, lang: str, boundaries: set[int] | None = None) -> str:
    """The highest-priority type whose cue matches.  With word ``boundaries``
    (Chinese), a cue must start on a word boundary, so that "目的" is not
    found inside "一个项目的"."""
    return classify_cue(question, lang, boundaries)[0]


def classify_cue(question: str, lang: str, boundaries: set[int] | None = None) -> tuple[str, str]:
    """(type, the cue text that set it; "" for "other")."""
    text = unicodedata.normalize("NFKC", question).lower()
    text = "".join("数" if i in indefinite_ji(text) else ch for i, ch in enumerate(text))  # same offsets
    for weak in (False, True):
        for qtype in type_table().types:
            cues = () if lang == "en" and weak else qtype.en if lang == "en" else qtype.zh_weak if weak else qtype.zh
            for pattern in cues:
                for m in pattern.finditer(text):
                    if boundaries is None or lang == "en" or m.start() in boundaries:
                        return qtype.name, m.group(0)
    return "other", ""


def word_boundaries(text: str, tokenizer: ChineseTokenizer) -> set[int]:
    """Offsets in the NFKC-normalized, lower-cased ``text`` where jieba words
    start or end."""
    normalized = unicodedata.normalize("NFKC", text).lower()
    cuts, pos = {0, len(normalized)}, 0
    for word, _ in tokenizer.tagged_words(normalized):
        pos += len(word)
        cuts.add(pos)
    return cuts


def _head_category(head: str) -> tuple[str | None, str | None]:
    """The head noun of "哪个<head>": within the first phrase of ``head``
    (up to 的/为/是...), the known noun that ends last ("国家试点" -> 试点)."""
    phrase = re.split(r"[的为是在和与有了呢吗？?，,。]", head, maxsplit=1)[0]
    best: tuple[int, int, str, str] | None = None
    for noun, category in _HEAD_LOOKUP:
        pos = phrase.rfind(noun)
        if pos >= 0:
            key = (pos + len(noun), len(noun), noun, category)
            if best is None or key[:2] > best[:2]:
                best = key
    return (best[2], best[3]) if best else (None, None)


_COUNTED = re.compile(rf"(?P<n>\d+|[{CN_NUM}]+)(?:个|家|项|位|名|条|轮|次|批|类|种|处|枚|省|市)(?P<noun>[{CJK_IDEOGRAPH}]{{0,10}}?)"
                      r"(?:具体|分别|都|各自|各)?(?:是在|是|有|包括|叫|在)(?:哪|什么)")
# Capitalised words of an English question: names the glossary cannot map
# (e.g. a city the corpus never mentions) make the question unanswerable.
_EN_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b")
_EN_COMMON_CAPS = frozenset({"What", "When", "Which", "Who", "How", "Why", "Where", "According", "Is", "Are", "Did",
                             "Does", "Do", "Was", "Were", "The", "In", "On", "For", "Chinese", "English"})
# "How much money…", "How much did SIP spend…" (not "how much time must they spend").
_EN_MONEY = re.compile(r"(?i)\bhow much (?:money|funding|capital|(?:did|does|do|will|would|was|were|has|have|had|is|"
                       r"are|must|should|can|could)\b.{0,60}?\b(?:spend|spent|cost|invest|invested|pay|paid|fund|"
                       r"funded|budget|raise|raised)\b)")
_MARKUP = re.compile(r"</?[A-Za-z][^<>]*>")
# "第三阶段", "第一个改革阶段" (a few words may name what the stage is of).
_ORDINAL = re.compile(rf"第([{CN_NUM}\d]+)(?:个)?[{CJK_IDEOGRAPH}]{{0,4}}?(?:阶段|部分|点|方面|章|节|时期|步)")


def analyze(question: str, tokenizer: ChineseTokenizer, glossary: dict[str, list[str]] | None = None) -> QuestionAnalysis:
    q = resolve_question(question)
    # Markup is not language: "<img src=x onerror=…>" alone is not an English question.
    lang = detect_lang(_MARKUP.sub(" ", q))
    qtype, cue = classify_cue(q, lang, word_boundaries(q, tokenizer) if lang == "zh" else None)
    analysis = QuestionAnalysis(question=q, lang=lang, qtype=qtype, tokens=tokenizer.tokenize(q),
                                focus_terms=focus_terms(q, tokenizer), asked=question.strip())
    if lang == "zh" and cue:
        analysis.cue_terms = [t for t in analysis.focus_terms if t in cue]
    analysis.years = _YEAR.findall(q)
    analysis.numbers = [n for n in _NUMBER.findall(unicodedata.normalize("NFKC", q)) if n not in analysis.years]
    analysis.quoted = _QUOTED.findall(q)
    m = _ORDINAL.search(q)
    if m:
        analysis.ordinal = cn_to_int(m.group(1))
    if lang == "en" and glossary is not None:
        # English words never occur in the Chinese text: the glossary's Chinese
        # terms (and Latin words such as "ISO") stand in for them.
        expanded, untranslated = expand_english(q, glossary)
        analysis.expanded_terms = list(dict.fromkeys(expanded))
        analysis.untranslated = untranslated
        analysis.tokens = analysis.tokens + tokenizer.tokenize(" ".join(analysis.expanded_terms))
        latin = [w for w in analysis.focus_terms if w.isupper() or re.fullmatch(r"[A-Z0-9]{2,}", w)]
        # Untranslated content words stay focus terms: they will not be found
        # in Chinese text, which is what coverage should say about them.
        analysis.focus_terms = list(dict.fromkeys(analysis.expanded_terms + latin + untranslated)) \
            or analysis.focus_terms
    _find_wh(analysis)
    if analysis.replace_span:
        # "哪两件事": the count and the generic noun name the answer's form, as a
        # type cue does; the text need not use them.
        asked = q[analysis.replace_span[0]:analysis.replace_span[1]]
        analysis.cue_terms += [t for t in analysis.focus_terms if t in asked and t not in analysis.cue_terms]
    if qtype == "number" and analysis.wh_kind == "which" and lang == "zh":
        # "哪一种的比例…占了4倍以上": the question word asks which thing; 比例 is
        # only what the question says about it (a number cue, but no number is asked).
        qtype = analysis.qtype = "entity"
    if qtype == "number" and not analysis.unit and re.search(r"比例|百分比|占比|百分之几|多少成|率(?:是|有)?多|多大比", q):
        analysis.unit = "%"  # a share is answered by a percentage
    if analysis.qtype == "number" and not analysis.unit and re.search(r"多久|多长的?时间|(?i:\bhow long\b(?! ago))", q):
        analysis.unit = DURATION  # "要用多长时间" is answered by a length of time, not a date
    if qtype == "list" and analysis.wh_span and re.search(r"[、和与及]", q[: analysis.wh_span[0]]) \
            and re.search(r"分别|各自", q):
        # "核心、起点和关键分别是什么": one answer per named dimension, found in
        # the clauses that name them, not an enumeration in the text.
        analysis.qtype = "summary"
    m = _COUNTED.search(q)
    if m and analysis.expected_count is None:
        # "8个省分别是哪几个": the answer must name 8 of them.
        analysis.expected_count = cn_to_int(m.group("n"))
        noun, category = _head_category(m.group("noun"))
        if noun and analysis.head_noun is None:
            analysis.head_noun, analysis.head_category = noun, category
    if lang == "en":
        m = re.search(r"(?i)how many ([a-z]+(?: [a-z]+)?)", q)
        if m:  # "how many years" asks for 年, "how many copies" for 份
            unit = next((u for w, u in EN_UNITS.items() if m.group(1).lower().startswith(w)), None)
            analysis.unit = analysis.unit or unit
        elif _EN_MONEY.search(q):  # "How much did SIP spend…" asks for an amount of money
            analysis.unit = analysis.unit or "元"
        # "Who is the mayor…": the title asked about, in Chinese (市长).
        role = next((t for t in analysis.expanded_terms if t in ROLE_TITLES), None)
        if role and re.match(r"(?i)\s*who\b", q):
            analysis.head_category, analysis.head_noun = "person", role
        analysis.unknown_names = [w for w in _EN_NAME.findall(q)[1:] if w.lower() not in (glossary or {})
                                  and w.lower() not in EN_STOPWORDS and w not in _EN_COMMON_CAPS]
    return analysis


def _find_wh(a: QuestionAnalysis) -> None:
    """Locate the question word(s).  The earliest one is primary; a later
    "第几X" is kept as ``secondary`` ("哪本刊物的第几期")."""
    if a.lang != "zh":
        return
    q = a.question
    indefinite = indefinite_ji(q)
    found: list[tuple[int, int, str, re.Match]] = []
    for kind, pattern in WH_PATTERNS:
        for m in pattern.finditer(q):
            before = q[max(0, m.start() - 1):m.start()]
            if kind == "quantity" and (before in ("哪", "那", "这", "好", "第") or m.start() in indefinite):
                continue  # 哪几个 is "which", 那几个 is "those", 第几 is an ordinal, 除了几位 is "several"
            if kind == "which" and m.group(0).startswith("什么") and a.qtype not in ("entity", "list"):
                continue
            if any(s <= m.start() < e for s, e, _, _ in found):
                continue
            found.append((m.start(), m.end(), kind, m))
    for m in re.finditer(r"第几(?P<unit>[期届次批个项])", q):
        a.secondary.append(("ordinal", m.group("unit")))
    if not found:
        if a.qtype == "date" and re.search(r"几点", q):
            a.wh_kind = "clock"
        return
    start, end, kind, m = min(found, key=lambda f: (f[0], -(f[1] - f[0])))
    a.wh_kind, a.wh_span = kind, (start, end)
    if kind == "period":
        a.wants_period = True
    elif kind == "quantity":
        a.unit = m.group("unit")
        if not a.unit and re.match(r"钱|资金|经费|金额", q[end:]):
            a.unit = "元"  # "花了多少钱": an amount of money
    elif kind == "which":
        head = m.group("head")
        noun, category = _head_category(head)
        a.head_noun, a.head_category = noun, category
        count = re.match(rf"哪([{CN_NUM}])", m.group(0))
        if count and count.group(1) not in "几一":
            a.expected_count = cn_to_int(count.group(1))
        a.head_start = m.start("head")
        if noun:  # keep only up to the head noun: "哪个部门的支持" -> "哪个部门"
            a.wh_span = (start, m.start("head") + head.rfind(noun) + len(noun))
        else:  # "哪些业务系统": the question word alone is replaced
            a.wh_span = (start, m.start("head"))
            if head.startswith(GENERIC_HEADS):  # "哪几件事": the answer replaces the noun too
                generic = next(g for g in GENERIC_HEADS if head.startswith(g))
                a.replace_span = (start, m.start("head") + len(generic))
            if not head:
                # "协议全称叫什么", "进驻的部门有哪些": the thing named comes before the question word.
                before = q[:start]
                found = [(before.rfind(n), n, c) for n, c in _HEAD_LOOKUP if n in before and len(n) >= 2]
                if found:
                    _, a.head_noun, a.head_category = max(found)
    elif kind == "who":
        a.head_category = "person"  # a person, or the body that did it ("谁颁的奖")
        # "园区的书记是谁": the title asked about comes before the question word.
        role = next((r for r in sorted(ROLE_TITLES, key=len, reverse=True) if q[:start].rstrip("是为").endswith(r)), None)
        if role:
            a.head_noun = role
    elif kind == "where":
        a.head_category = "place"


def expand_english(question: str, glossary: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Chinese terms for the English phrases of a question (longest phrase
    first), and the English content words the glossary could not translate."""
    text = " " + re.sub(r"[^a-z0-9 ]+", " ", question.lower()) + " "
    terms: list[str] = []
    for phrase in sorted(glossary, key=len, reverse=True):
        key = f" {phrase} "
        if key in text:
            terms.extend(glossary[phrase])
            text = text.replace(key, " ")
    leftover = [w for w in text.split() if len(w) >= 3 and w not in EN_STOPWORDS and not w.isdigit()]
    return terms, leftover


@lru_cache(maxsize=1)
def english_glossary() -> dict[str, list[str]]:
    data = load_table("glossary_en_zh.toml")
    return {k.lower(): list(v) for k, v in data["terms"].items()}


# A question that opens with a pronoun ("那它有几个窗口？") refers to something
# said before; asked first, it has nothing to refer to.
_OPENING_PRONOUN = re.compile(r"^(?:那么?|那)?(它们|它|其|该机构|该部门|这个机构|这一改革)")


def dangling_reference(question: str) -> str | None:
    """The pronoun a question opens with, when it has one (rewrite_followup
    replaces it when the conversation names what it refers to)."""
    m = _OPENING_PRONOUN.match(question.strip())
    return m.group(1) if m else None


def rewrite_followup(question: str, history: Sequence[str], tokenizer: ChineseTokenizer,
                     known_terms: set[str]) -> str:
    """Resolve a follow-up such as "那它有几个窗口？" against the previous
    question's subject: the first corpus term (user-dictionary word) of the
    latest previous question that has one."""
    if not history:
        return question
    q = question.strip()
    has_pronoun = bool(_PRONOUNS.search(q))
    own_terms = [w for w in tokenizer.words(q) if w in known_terms]
    if not has_pronoun or (own_terms and not re.search(r"它|其|该", q)):
        return question
    subject = None
    for previous in reversed(list(history)):
        terms = [w for w in tokenizer.words(previous) if w in known_terms]
        if terms:
            subject = max(terms, key=len)
            break
    if not subject:
        return question
    body = re.sub(r"^(?:那么?|那)", "", q)
    if re.search(r"它们|它|其|该机构|该部门|这个机构", body):
        return re.sub(r"它们|它|其|该机构|该部门|这个机构", subject, body, count=1)
    return subject + body
