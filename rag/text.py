"""Chinese text handling, in one place: character classes, cleaning of
PDF-extracted text (with an offset map), paragraph and sentence splitting,
heading recognition, normalization for matching, Chinese numerals, and the
date / quantity patterns the answer extractor uses."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag.schema import Repair

# --------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------
CJK_IDEOGRAPH = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# CJK punctuation, full-width forms, curly quotes, dashes and ellipsis.
CJK_PUNCT = "\u3000-\u303f\uff00-\uffef\u2018-\u201f\u2014\u2026\u00b7"
_CJK_RE = re.compile(f"[{CJK_IDEOGRAPH}]")
_CJK_OR_PUNCT = re.compile(f"[{CJK_IDEOGRAPH}{CJK_PUNCT}]")
_ALNUM = re.compile(r"[A-Za-z0-9%]")

SENTENCE_END = "。！？!?；;…"
CLOSERS = "”’」』）)】〉》\"'"
# Punctuation that ends a clause inside a sentence (、 joins list items
# inside one clause, so it is not here).
CLAUSE_END = "，,：:"


def is_cjk(ch: str) -> bool:
    return bool(_CJK_RE.match(ch))


def cjk_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(1 for c in letters if is_cjk(c)) / len(letters) if letters else 0.0


def detect_lang(text: str) -> str:
    """'zh' when the text has any Chinese characters beyond a stray term, else 'en'."""
    cjk = len(_CJK_RE.findall(text))
    latin = len(re.findall(r"[A-Za-z]+", text))
    return "zh" if cjk >= 2 and cjk >= latin else ("en" if latin else "zh")


# --------------------------------------------------------------------------
# Normalization for matching (never applied to stored or quoted text)
# --------------------------------------------------------------------------
_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC (full-width digits/letters -> ASCII), lower case, no whitespace."""
    return _WS.sub("", unicodedata.normalize("NFKC", text)).lower()


def squeeze(text: str) -> str:
    """Remove whitespace only (what the dev set's evidence matching does)."""
    return _WS.sub("", text)


# --------------------------------------------------------------------------
# Cleaning PDF-extracted text
# --------------------------------------------------------------------------
_PARAGRAPH_SPLIT = re.compile(r"\n[ \t\u3000\r]*\n\s*")
_INLINE_WS = re.compile(r"[ \t\u3000\r]+")


@dataclass(frozen=True)
class CleanText:
    text: str
    offsets: list[int]
    repairs: list[Repair]


def _last_meaningful(text: str) -> str:
    """The last character of ``text`` ignoring closing quotes/brackets."""
    stripped = text.rstrip().rstrip(CLOSERS)
    return stripped[-1] if stripped else ""


def looks_like_running_text(paragraph: str) -> bool:
    """Body prose (not a masthead line or a bare heading): has clause punctuation."""
    return len(paragraph) >= 20 and any(p in paragraph for p in "，。、,")


def _continues(prev: str, nxt: str) -> bool:
    """Is the blank line between ``prev`` and ``nxt`` a page break inside a
    sentence?  Yes when ``prev`` is prose that stops mid-sentence and ``nxt``
    does not open a new heading or block."""
    last = _last_meaningful(prev)
    if not last or last in SENTENCE_END or last in "：:":
        return False
    if not looks_like_running_text(prev):
        return False
    # A numbered heading on its own ("二、……和政策取向", its 、 looks like
    # clause punctuation) ends where its line ends: never a page break.
    heading = match_heading(prev)
    if heading is not None and heading.body_starts >= len(prev.strip()):
        return False
    return match_heading(nxt) is None and not is_back_matter(nxt)


def _crossing_trigram_count(reference: str, left: str, right: str, self_occurrences: int) -> int:
    """How often the trigrams that span the junction left|right occur in
    ``reference`` (minus occurrences at the junction itself)."""
    joined = left + right
    j = len(left)
    total = 0
    for i in range(max(0, j - 2), j):
        gram = joined[i : i + 3]
        if len(gram) == 3 and i + 3 > j:
            total += max(0, reference.count(gram) - self_occurrences)
    return total


def _drop_duplicate_at_break(reference: str, prev: str, nxt: str) -> bool:
    """A PDF page break sometimes repeats the character at the break
    ("“一\\n\\n一站式服务”").  Decide by corpus evidence: drop the repeat when
    the de-duplicated reading's cross-break trigrams occur elsewhere in the
    document more often than the doubled reading's do."""
    if not prev or not nxt or prev[-1] != nxt[0] or not is_cjk(nxt[0]):
        return False
    left, right = squeeze(prev)[-3:], squeeze(nxt)[:4]
    keep = _crossing_trigram_count(reference, left, right, self_occurrences=1)
    drop = _crossing_trigram_count(reference, left, right[1:], self_occurrences=0)
    return drop > keep


def clean_extracted_text(raw: str) -> CleanText:
    """Repair PDF extraction damage with general rules, keeping a map from
    every cleaned character back to its offset in ``raw``.

    * paragraphs are separated by blank lines; a blank line inside a sentence
      (prose that stops mid-sentence) is a page break and is removed, dropping
      a character duplicated across it when the corpus says so;
    * single newlines inside a paragraph between Chinese characters are line
      wraps and are removed;
    * spaces between Chinese and Latin/digits ("在 2002 年底") are removed;
      spaces between two Chinese words are kept (they separate fields);
    * stray control characters (a scraped page's \\x08, \\x1b) are removed.
    Cleaning only ever removes characters, so ``raw[offsets[i]] == text[i]``.
    """
    reference = squeeze(raw)
    spans: list[tuple[int, int]] = []  # raw spans of paragraphs (stripped)
    pos = 0
    for m in list(_PARAGRAPH_SPLIT.finditer(raw)) + [None]:
        end = m.start() if m else len(raw)
        seg = raw[pos:end]
        lead = len(seg) - len(seg.lstrip())
        a, b = pos + lead, pos + len(seg.rstrip())
        if b > a:
            spans.append((a, b))
        pos = m.end() if m else len(raw)

    # Group paragraphs joined across page breaks.
    chars: list[str] = []
    offsets: list[int] = []
    repairs: list[Repair] = []
    prev_text: str | None = None
    for a, b in spans:
        para = raw[a:b]
        skip_first = False
        if prev_text is not None:
            if _continues(prev_text, para):
                gap_start = offsets[-1] + 1
                repairs.append(Repair("page_break_join", gap_start, a, raw[gap_start:a]))
                if _drop_duplicate_at_break(reference, prev_text, para):
                    skip_first = True
                    repairs.append(Repair("duplicate_at_break", a, a + 1, raw[a]))
                prev_text = prev_text + para
            else:
                # Paragraph separator: keep one newline of the raw gap.
                nl = raw.index("\n", offsets[-1] + 1)
                chars.append("\n")
                offsets.append(nl)
                prev_text = para
        else:
            prev_text = para
        _append_paragraph(raw, a + (1 if skip_first else 0), b, chars, offsets, repairs)
    return CleanText("".join(chars), offsets, repairs)


def _append_paragraph(raw: str, a: int, b: int, chars: list[str], offsets: list[int],
                      repairs: list[Repair]) -> None:
    """Copy raw[a:b] dropping line wraps and script-boundary spaces."""
    i = a
    while i < b:
        ch = raw[i]
        if ch in " \t\u3000\r\n":
            j = i
            while j < b and raw[j] in " \t\u3000\r\n":
                j += 1
            before = chars[-1] if chars else ""
            after = raw[j] if j < b else ""
            run = raw[i:j]
            cjk_before, cjk_after = bool(_CJK_OR_PUNCT.match(before)), bool(_CJK_OR_PUNCT.match(after))
            if "\n" in run and (cjk_before or cjk_after) and _wraps(raw, a, i):
                repairs.append(Repair("line_wrap", i, j, run))
            elif "\n" not in run and cjk_before != cjk_after and _ALNUM.match(before if cjk_after else after):
                repairs.append(Repair("space_at_script_boundary", i, j, run))
            else:
                chars.append(run[0] if "\n" not in run else "\n")
                offsets.append(i if "\n" not in run else i + run.index("\n"))
                if j - i > 1:
                    repairs.append(Repair("space_run", i + 1, j, run[1:]))
            i = j
            continue
        if ch < " " or "\x7f" <= ch <= "\x9f":  # a stray control character (scraped text): dropped
            repairs.append(Repair("control_character", i, i + 1, ch))
            i += 1
            continue
        chars.append(ch)
        offsets.append(i)
        i += 1


def _wraps(raw: str, paragraph_start: int, newline_at: int) -> bool:
    """A newline inside a paragraph is a line wrap when the line before it is
    prose (masthead lines such as "第 14 期\n(总第 129 期)" stay separate)."""
    line_start = raw.rfind("\n", paragraph_start, newline_at) + 1 or paragraph_start
    line = raw[max(line_start, paragraph_start):newline_at].strip()
    return looks_like_running_text(line) or line[-1:] in CLAUSE_END


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of the newline-separated paragraphs of cleaned text."""
    spans, pos = [], 0
    for line in text.split("\n"):
        if line.strip():
            spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans in ``text[start:end]``: a sentence ends at 。！？；… (runs of
    them) plus any closing quotes/brackets that follow; newlines end sentences.
    Spans exclude surrounding whitespace."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    i = s = start
    while i < end:
        ch = text[i]
        if ch == "\n":
            _push(text, s, i, spans)
            s = i + 1
        elif ch in SENTENCE_END:
            j = i + 1
            while j < end and text[j] in SENTENCE_END:
                j += 1
            while j < end and text[j] in CLOSERS:
                j += 1
            _push(text, s, j, spans)
            s = i = j
            continue
        i += 1
    _push(text, s, end, spans)
    return spans


def _push(text: str, a: int, b: int, spans: list[tuple[int, int]]) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if b > a:
        spans.append((a, b))


# Words that date a clause to the time of writing ("如今…达到97个窗口").
NOW_WORDS = re.compile(r"如今|目前|现在|当前|截至目前|至今|迄今|现已")
# Words of a question that ask about an earlier time than the writing.
THEN_WORDS = re.compile(r"(?:19|20)\d{2}\s*年|当时|一开始|起初|最初|当初|那会儿|那时")


# A question about what is yet to come, and the words of a clause that speaks of it.
FUTURE_QUESTION = re.compile(r"明年|后年|下一步|今后|未来|将来|打算|准备推出|计划推出|(?i:\bnext year\b|\bplan(?:s|ned)? to\b)")
FUTURE_WORDS = re.compile(r"将|要|拟|计划|力争|预计|今后|未来|下一步|明年|目标|到\s*20\d{2}\s*年|争取|规划")


def speaks_of_another_time(question: str, clause: str) -> bool:
    """Does ``clause`` speak of another time than the question asks about:
    of the time of writing ("如今") when the question asks about a year or an
    earlier time ("2000年…一开始") and the clause names none of its years; or
    of the past or present when the question asks what is planned ("明年打算")?"""
    if FUTURE_QUESTION.search(question) and not FUTURE_WORDS.search(clause):
        return True
    if not NOW_WORDS.search(clause) or not THEN_WORDS.search(question):
        return False
    years = re.findall(r"(?:19|20)\d{2}", question)
    return not any(y in clause for y in years)


def split_clauses(text: str) -> list[tuple[int, int]]:
    """Clause spans of one sentence: split after ，：；。 (kept with the clause)."""
    spans, s = [], 0
    for i, ch in enumerate(text):
        if ch in CLAUSE_END or ch in SENTENCE_END:
            _push(text, s, i + 1, spans)
            s = i + 1
    _push(text, s, len(text), spans)
    return spans


# --------------------------------------------------------------------------
# Headings and document structure
# --------------------------------------------------------------------------
CN_DIGITS = "一二三四五六七八九十"
CN_NUM = "零〇一二两三四五六七八九十百千万"


@dataclass(frozen=True)
class HeadingRule:
    """A heading form.  ``rank``: smaller is higher in the outline.  ``label``:
    how the heading's label is cut from its paragraph ("line" = whole
    paragraph, "colon" = up to the first colon or full stop, "sentence" = up to
    the first full stop)."""

    name: str
    rank: int
    pattern: re.Pattern
    label: str


HEADING_RULES: tuple[HeadingRule, ...] = (
    HeadingRule("markdown", 0, re.compile(r"^#{1,6}\s+\S"), "line"),
    HeadingRule("chapter", 1, re.compile(rf"^第[{CN_NUM}\d]+[章篇部]"), "line"),
    HeadingRule("section", 2, re.compile(rf"^第[{CN_NUM}\d]+节"), "line"),
    HeadingRule("cn_enum", 3, re.compile(rf"^[{CN_DIGITS}]{{1,3}}、"), "colon"),
    HeadingRule("cn_paren", 4, re.compile(rf"^[（(][{CN_DIGITS}]{{1,3}}[）)]"), "colon"),
    HeadingRule("arabic_dot", 5, re.compile(r"^\d{1,2}[.．、](?!\d)\s*\S"), "colon"),
    HeadingRule("arabic_paren", 6, re.compile(r"^[（(]\d{1,2}[）)]"), "colon"),
    # "一是……。" opens a numbered point inside a section.
    HeadingRule("cn_point", 7, re.compile(rf"^[{CN_DIGITS}]{{1,3}}是"), "sentence"),
)
HEADING_MAX_CHARS = 48


@dataclass(frozen=True)
class Heading:
    rank: int
    label: str
    body_starts: int  # offset in the paragraph where non-heading text begins (== len when pure heading)


def match_heading(paragraph: str) -> Heading | None:
    para = paragraph.strip()
    for rule in HEADING_RULES:
        if not rule.pattern.match(para):
            continue
        if rule.name == "markdown":
            hashes = len(para) - len(para.lstrip("#"))
            return Heading(hashes, para.lstrip("#").strip(), len(para))
        stops = {"line": "", "colon": "：:。", "sentence": "。：:；"}[rule.label]
        cut = next((i for i, c in enumerate(para) if c in stops), None)
        if cut is None:
            if rule.label != "line" and len(para) > HEADING_MAX_CHARS and looks_like_running_text(para):
                continue  # a long enumerated sentence, not a heading
            return Heading(rule.rank, para[:HEADING_MAX_CHARS], len(para))
        label = para[:cut]
        if len(label) > HEADING_MAX_CHARS:
            comma = label.find("，")
            label = label[:comma] if 0 < comma <= HEADING_MAX_CHARS else label[:HEADING_MAX_CHARS] + "…"
        return Heading(rule.rank, label, len(para) if cut >= len(para) - 1 else 0)
    return None


# Lines that open the back matter of a report (distribution list, editor...).
BACK_MATTER_CUES = ("报：", "报送：", "送：", "抄送", "主送", "责任编辑", "联系电话", "地址：", "共印", "印发", "（共印")


def is_back_matter(paragraph: str) -> bool:
    return paragraph.strip().startswith(BACK_MATTER_CUES)


# --------------------------------------------------------------------------
# Chinese numerals, numbers and dates
# --------------------------------------------------------------------------
_CN_DIGIT_VALUE = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
                   "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT_VALUE = {"十": 10, "百": 100, "千": 1000, "万": 10000}


def cn_to_int(text: str) -> int | None:
    """'三' -> 3, '十' -> 10, '二十五' -> 25, '一百零八' -> 108, '三十' -> 30;
    digit strings pass through.  None when ``text`` is not a number."""
    text = unicodedata.normalize("NFKC", text)
    if text.isdigit():
        return int(text)
    if not text or any(c not in _CN_DIGIT_VALUE and c not in _CN_UNIT_VALUE for c in text):
        return None
    total, section, digit = 0, 0, None
    for c in text:
        if c in _CN_DIGIT_VALUE:
            digit = _CN_DIGIT_VALUE[c]
        else:
            unit = _CN_UNIT_VALUE[c]
            if unit == 10000:
                total += (section + (digit or 0)) * unit
                section = 0
            else:
                section += (1 if digit is None else digit) * unit
            digit = None
    return total + section + (digit or 0)


_NUM_TOKEN = re.compile(rf"\d+(?:\.\d+)?|[{CN_NUM}]+")

# A line that is only a date: "2024年3月15日", "（2019年2月13日）", "二〇一九年二月十三日", "2024年3月".
_DATE_LINE = re.compile(rf"^[（(]?\s*((?:19|20)\d{{2}}|[一二][〇零一二三四五六七八九]{{3}})\s*年\s*"
                        rf"([\d{CN_NUM}]{{1,3}})\s*月(?:\s*([\d{CN_NUM}]{{1,3}})\s*日)?\s*[）)]?$")
DATE_LINES_SEARCHED = 15  # at the top (masthead) and at the bottom (the signature's date)


def _year(text: str) -> int:
    return int(text) if text.isdigit() else int("".join(str(_CN_DIGIT_VALUE[c]) for c in text))


def document_date(text: str) -> str | None:
    """The date a document prints on a line of its own near its top or its
    end (an official document's date under the masthead or under the
    signature), as ``YYYY-MM-DD`` or ``YYYY-MM``; None when it prints none.
    File properties (creation dates of a template, of a print to PDF) are not
    the document's date."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines[:DATE_LINES_SEARCHED] + lines[-DATE_LINES_SEARCHED:][::-1]:
        m = _DATE_LINE.match(unicodedata.normalize("NFKC", line).replace(" ", ""))
        if not m:
            continue
        year, month = _year(m.group(1)), cn_to_int(m.group(2))
        day = cn_to_int(m.group(3)) if m.group(3) else None
        if month is None or not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
            continue
        return f"{year:04d}-{month:02d}" + (f"-{day:02d}" if day else "")
    return None


def canonical_numbers(text: str) -> str:
    """Rewrite Chinese numerals as digits ('三间' -> '3间', '十个' -> '10个'),
    for comparing answers.  Words such as 一站式 are left alone because only
    numerals followed by a measure word or unit are rewritten."""
    def repl(m: re.Match) -> str:
        value = cn_to_int(m.group(1))
        return (str(value) if value is not None else m.group(1)) + m.group(2)

    return re.sub(rf"([{CN_NUM}]+)({MEASURE_WORDS_RE})", repl, unicodedata.normalize("NFKC", text))


# Measure words / units that make a number a quantity answer.
MEASURE_WORDS = (
    "个工作日", "工作日", "个月", "个百分点", "万件", "万人", "万元", "亿元", "万", "亿",
    "项", "个", "家", "间", "名", "枚", "份", "件", "次", "人", "位", "条", "套", "批", "轮",
    "类", "种", "省", "部门", "处室", "窗口", "元", "岁", "天", "小时", "分钟", "年", "倍", "%", "％",
    "平方公里", "公里", "米", "章", "期", "届", "级", "步", "张", "支", "大", "方面", "国",
)
MEASURE_WORDS_RE = "|".join(sorted((re.escape(w) for w in MEASURE_WORDS), key=len, reverse=True))


def has_numeral(text: str) -> bool:
    """Holds a digit or a Chinese numeral ("两国", "30多个"; not "中国")."""
    return bool(re.search(rf"\d|[{CN_NUM}亿]", unicodedata.normalize("NFKC", text)))


def is_number_term(term: str) -> bool:
    """A question term that is a number or a count ("2016", "三个", "40万件")."""
    return bool(re.search(r"\d", term) or re.fullmatch(rf"[{CN_NUM}]+(?:{MEASURE_WORDS_RE})?", term))


# Common Chinese surnames: a word tagged as a person name that does not start
# with one is more likely a mis-tagged phrase ("拉开序幕").
CN_SURNAMES = frozenset("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
                        "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
                        "柴习")

# "多久", "多长时间", "how long" ask for a length of time: the question's unit is
# this stand-in, and a quantity in one of TIME_UNITS answers it ("5年", "6个月").
DURATION = "时长"
TIME_UNITS = ("年", "个月", "天", "小时", "分钟", "个工作日", "工作日")

# Qualifiers that belong to a quantity ("近30个", "90多名", "超过40万件").
QTY_PREFIX = r"(?:近|约|大约|将近|超过|逾|达|达到|共|共计|不足|不到|仅|只有|多达|至少|最多|累计)?"
_QTY_ONE = rf"(?:\d+(?:\.\d+)?|[{CN_NUM}]+)"
# A range is one quantity ("5—10年左右", "3至5个").
QTY_NUMBER = rf"{_QTY_ONE}(?:\s*[—–~～至到-]\s*{_QTY_ONE})?(?:多|余|来)?"
# The qualifiers a quantity answer keeps ("近30个"); verbs such as 达到 or 共计 stay out.
QTY_QUALIFIERS = ("近", "约", "大约", "将近", "超过", "逾", "不足", "不到", "多达", "至少", "最多")
# Multipliers a quantity's number carries before its unit ("114.4万亿元").
_MAGNITUDES = (("万亿", 1e12), ("亿", 1e8), ("万", 1e4), ("千", 1e3), ("百", 1e2))
_QUANTITY_VALUE = re.compile(rf"(?P<number>\d+(?:\.\d+)?|[{CN_NUM}]+)\s*(?P<magnitude>万亿|亿|万|千|百)?\s*(?P<unit>[^\d\s]*)$")
_YEAR_IN_TEXT = re.compile(r"(?<![\d〔［\[])(?:19|20)\d{2}(?=\s*年|[^\d]|$)")


def quantity_value(text: str) -> tuple[float, str, float] | None:
    """A figure as (value, unit, tolerance): "1143670亿元" -> (1.14367e14, "元",
    5e7); "114.4万亿元" -> (1.144e14, "元", 5e10); "8.1%" -> (8.1, "%", 0.05).
    The tolerance is half the last printed digit, so that a rounded figure
    equals the exact one it rounds.  Qualifiers (约, 以上) are dropped; None
    for what is no single figure."""
    t = unicodedata.normalize("NFKC", text).replace(",", "").replace("％", "%").strip()
    t = re.sub(rf"^(?:{QTY_PREFIX})", "", t)
    t = re.sub(r"(?:多|余|以上|左右)$", "", t)
    m = _QUANTITY_VALUE.fullmatch(t)
    if not m:
        return None
    number = m.group("number")
    value = float(number) if number[0].isdigit() else cn_to_int(number)
    if value is None:
        return None
    decimals = len(number.split(".")[1]) if "." in number else 0
    scale = dict(_MAGNITUDES).get(m.group("magnitude") or "", 1.0)
    return value * scale, m.group("unit"), 0.5 * 10 ** -decimals * scale


def years_in(text: str) -> set[str]:
    """The years a text names ("2021年", "2019-2022" -> both; not 国发〔2019〕)."""
    return set(_YEAR_IN_TEXT.findall(unicodedata.normalize("NFKC", text)))


def pair_overlap(term: str, text: str) -> float:
    """Share of ``term``'s character pairs that occur in ``text``: 第四季度 is
    2/3 present in 四季度增长4.0% (a term matched though written shorter)."""
    pairs = {term[i:i + 2] for i in range(len(term) - 1)}
    return len(pairs & {text[i:i + 2] for i in range(len(text) - 1)}) / len(pairs) if pairs else 0.0


_DATE_VALUE = re.compile(r"((?:19|20)\d{2})\s*年(?:\s*(\d{1,2})\s*月(?:\s*(\d{1,2})\s*日)?)?"
                         r"(?:底|初|末|年底|年初|年末|前后|左右)?")


def date_parts(text: str) -> tuple[str | None, ...] | None:
    """(year, month, day) of a short answer that is a date ("2019年底" ->
    ("2019", None, None)); None for anything else."""
    m = _DATE_VALUE.fullmatch(text.strip())
    return m.groups() if m else None


def holds_year(number: str) -> bool:
    """A quantity's number that is (or whose range holds) a year: "1994",
    "2019-2022" are dates with 年, not counts of years."""
    return bool(re.search(r"(?<!\d)(?:19|20)\d{2}(?!\d)", number))


QUANTITY_RE = re.compile(
    rf"(?P<prefix>{QTY_PREFIX})(?P<number>{QTY_NUMBER})\s*(?P<unit>{MEASURE_WORDS_RE})(?P<suffix>多|余|以上|左右)?"
)

# Dates and periods.  Order matters: longer forms first.
DATE_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("clock", re.compile(r"(?:上午|下午|早上|晚上|中午)?\d{1,2}\s*(?:[:：]\s*\d{2}|点(?:半|\d{1,2}分)?)")),
    ("period", re.compile(r"(?:19|20)\d{2}\s*(?:年)?\s*(?:-{1,2}|—{1,2}|–|~|～|至|到)\s*(?:(?:19|20)\d{2}\s*年?)?")),
    ("ymd", re.compile(r"(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日")),
    ("ym", re.compile(r"(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月(?:份|底|初(?![步次期级])|中旬|上旬|下旬)?")),
    # "2020年初步建成" is 2020年 + 初步 ("initially"), not "early 2020".
    # "1992年初春" is a season, not "early 1992" + 春.
    ("y_part", re.compile(r"(?:19|20)\d{2}\s*年(?:[初早晚深暮仲孟]?[春夏秋冬](?:季|天|节)?|底|初(?![步次期级])|末(?!期)"
                          r"|年底|年初|年中|上半年|下半年|前后|以来|起)")),
    ("year", re.compile(r"(?:19|20)\d{2}\s*年")),
    # The year that leads a quoted name dates it: “2019 中国地方政府竞争力‘智慧为民’十佳案例”.
    ("title_year", re.compile(rf"(?<=[“《「])(?:19|20)\d{{2}}(?=\s*[{CJK_IDEOGRAPH}])")),
    # Not the year of a document number: 国发〔2019〕4号.
    ("bare_year", re.compile(r"(?<![\d.〔［\[])(?:19|20)\d{2}(?![\d.%〕］\]])")),
    ("cn_year", re.compile(rf"[{CN_NUM}]{{4}}年")),
    ("relative", re.compile(r"(?:同年|当年|次年|翌年|上年|去年|今年)(?:\d{1,2}\s*月(?:\d{1,2}\s*日)?)?")),
)


# How precise a date a question asks for ("几月" wants a month, "哪一天" a
# day, "几点" a time of day), and how precise a date a text gives.  The
# grains are ordered: a day also gives its month.
DATE_GRAINS: tuple[tuple[str, re.Pattern], ...] = (
    ("clock", re.compile(r"几点|几时|什么时间段|营业时间|工作时间|开放时间|(?i:\bwhat time\b|\bopening hours\b)")),
    ("day", re.compile(r"哪一?天|几号|哪日|几日|具体日期|哪年哪月哪|(?i:\b(?:which|what) (?:exact )?(?:day|date)\b"
                       r"|\bexact date\b|\bon what date\b)")),
    ("month", re.compile(r"几月|哪个月|哪月|哪年哪月|月份|(?i:\b(?:which|what) month\b)")),
)
_GIVES_GRAIN = {
    "clock": re.compile(r"\d{1,2}\s*(?:[:：]\s*\d{2}|点|时)|[一二三四五六七八九十]+点"),
    "day": re.compile(rf"\d{{1,2}}\s*[日号]|[{CN_DIGITS}]+[日号]|\d{{4}}\s*[-/.]\s*\d{{1,2}}\s*[-/.]\s*\d{{1,2}}"),
    "month": re.compile(rf"\d{{1,2}}\s*月|[{CN_DIGITS}]+月|\d{{4}}\s*[-/.]\s*\d{{1,2}}(?![\d])"),
}
_GRAIN_ALSO = {"day": ("day",), "month": ("month", "day"), "clock": ("clock",)}


def date_grain_wanted(question: str) -> str | None:
    """The finest date grain the question asks for ("clock", "day",
    "month"), or None when any date will do ("哪一年", "什么时候")."""
    return next((grain for grain, pattern in DATE_GRAINS if pattern.search(question)), None)


def gives_date_grain(text: str, grain: str | None) -> bool:
    """Does ``text`` give a date as precise as ``grain`` ("2015年9月" gives
    a month, not a day; "2002-2014" neither)."""
    if grain is None:
        return True
    text = unicodedata.normalize("NFKC", text)
    return any(_GIVES_GRAIN[g].search(text) for g in _GRAIN_ALSO[grain])
