"""Document formats: turn a corpus file's bytes into the text ingestion cleans.

One function per format, all returning :class:`Extracted`.  The format is
decided from the content (magic bytes, a ZIP's members, HTML sniffing), not
from the file name; a file whose name promises a format its bytes do not have
is refused with the reason.

* PDF (text layer, pypdfium2 — chosen by measurement, see
  ``bench/results/pdf_extractors.md``): running headers/footers and bare page
  numbers are removed, paragraphs are separated by blank lines, and pages are
  joined by a blank line so :func:`rag.text.clean_extracted_text` repairs a
  page break inside a sentence.  ``page_starts`` records where each page
  begins in the extracted text.
* DOCX (python-docx): heading styles become Markdown ``#`` headings (which the
  chunker knows), tables one row per line with cells joined by `` | ``.
* HTML (trafilatura): main content only, headings as Markdown, title / date /
  author from the page's meta tags.
* Markdown and plain text: decoded as before (UTF-8 or GB18030).

Citations carry offsets into :attr:`Extracted.text` (stored as the document's
``raw_text``), which for PDF, DOCX and HTML is *not* the file's bytes."""
from __future__ import annotations

import io
import logging
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field

from rag.errors import CorpusError
from rag.text import match_heading

log = logging.getLogger(__name__)

PDF, DOCX, HTML, MARKDOWN, TEXT = "pdf", "docx", "html", "markdown", "text"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCODINGS = ("utf-8-sig", "gb18030")  # Chinese government files often come as GBK
NO_TEXT_LAYER = "no text layer; scanned PDFs need OCR, which this program does not do"
# A DOCX is a ZIP: its members' declared sizes are checked before anything is
# decompressed (zipfile never inflates a member past its declared size), so a
# zip bomb is refused without being expanded.
ZIP_MAX_UNCOMPRESSED = 200 * 1024 * 1024  # all members together
ZIP_MAX_RATIO = 200  # uncompressed / compressed, per member above 1 MiB (text XML compresses ~10-30x)
ZIP_MAX_MEMBERS = 10_000
# Executables renamed as documents: refused by their magic bytes.
EXECUTABLE_MAGIC = ((b"\x7fELF", "a Linux executable (ELF)"),
                    (b"\xcf\xfa\xed\xfe", "a macOS executable (Mach-O)"),
                    (b"\xfe\xed\xfa\xcf", "a macOS executable (Mach-O)"),
                    (b"\xca\xfe\xba\xbe", "a macOS universal binary or Java class file"))


def executable_kind(data: bytes) -> str | None:
    """What kind of executable ``data`` is, or None.  "MZ" alone could start a
    text file, so a Windows executable also needs its "PE\\0\\0" header."""
    for magic, what in EXECUTABLE_MAGIC:
        if data.startswith(magic):
            return what
    if data.startswith(b"MZ") and len(data) >= 0x40:
        pe = int.from_bytes(data[0x3C:0x40], "little")
        if data[pe:pe + 4] == b"PE\0\0" or data.count(b"This program cannot be run in DOS mode", 0, 512):
            return "a Windows executable (PE)"
    return None


@dataclass(frozen=True)
class Extracted:
    """What a format converter returns.

    ``text``: the document text (becomes ``Document.raw_text``; citations are
    offsets into it).  ``metadata``: string properties from the file itself
    (title, author, date, page_count, encoding…).  ``page_starts[i]``: offset
    in ``text`` where page ``i + 1`` begins (PDF only; empty otherwise)."""

    text: str
    format: str
    metadata: dict[str, str] = field(default_factory=dict)
    page_starts: tuple[int, ...] = ()


# --------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------
_HTML_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
                         rb"<(?:!doctype\s+html|html|head|meta|title|body)\b", re.I | re.S)


def sniff_format(data: bytes, name: str) -> str:
    """The format of a file from its content; the name only separates Markdown
    from plain text and says what an HTML fragment is.  Raises CorpusError for
    files no converter reads (old .doc, other ZIPs, a .pdf/.docx that is not one)."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    head = data[:1024]
    if what := executable_kind(data):
        raise CorpusError(f"{name}: {what}, not a document; it is not indexed")
    if b"%PDF-" in head:
        return PDF
    if data.startswith(OLE_MAGIC):
        raise CorpusError(f"{name}: an old Word .doc (OLE) file, which this program does not read; "
                          "open it in Word or LibreOffice and save it as .docx")
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                infos = zf.infolist()
        except zipfile.BadZipFile as exc:
            raise CorpusError(f"{name}: a damaged ZIP/DOCX file ({exc})") from exc
        check_zip_sizes(infos, name)
        members = {info.filename for info in infos}
        if "word/document.xml" in members:
            return DOCX
        raise CorpusError(f"{name}: a ZIP archive that is not a Word document (no word/document.xml); "
                          "only .docx among Office formats is read")
    if suffix == "pdf":
        raise CorpusError(f"{name}: named .pdf but is not a PDF (no %PDF- header)")
    if suffix == "docx":
        raise CorpusError(f"{name}: named .docx but is not a Word document (not a ZIP with word/document.xml); "
                          "save it from Word as .docx, or rename it if it is plain text")
    if _HTML_START.match(head) or suffix in ("html", "htm"):
        return HTML
    return MARKDOWN if suffix == "md" else TEXT


def check_zip_sizes(infos: list[zipfile.ZipInfo], name: str) -> None:
    """Refuse a ZIP whose declared sizes say it would expand too far (a zip
    bomb), before any member is decompressed."""
    if len(infos) > ZIP_MAX_MEMBERS:
        raise CorpusError(f"{name}: a ZIP with {len(infos)} members (limit {ZIP_MAX_MEMBERS}); not a Word document "
                          "this program reads")
    total = sum(info.file_size for info in infos)
    if total > ZIP_MAX_UNCOMPRESSED:
        raise CorpusError(f"{name}: would expand to {total / 2**20:.0f} MiB when unpacked (limit "
                          f"{ZIP_MAX_UNCOMPRESSED // 2**20} MiB); refused without unpacking (a zip bomb?)")
    for info in infos:
        if info.file_size > 2**20 and info.file_size > ZIP_MAX_RATIO * max(info.compress_size, 1):
            raise CorpusError(f"{name}: member {info.filename} is compressed {info.file_size // max(info.compress_size, 1)}"
                              f":1 (limit {ZIP_MAX_RATIO}:1); refused without unpacking (a zip bomb?)")


def extract(data: bytes, name: str) -> Extracted:
    """Sniff the format of ``data`` and extract it; CorpusError says why not."""
    fmt = sniff_format(data, name)
    extractor = {PDF: extract_pdf, DOCX: extract_docx, HTML: extract_html,
                 MARKDOWN: extract_plain, TEXT: extract_plain}[fmt]
    try:
        return extractor(data, name)
    except CorpusError:
        raise
    except Exception as exc:  # a third-party extractor's own failure: this file is skipped, not the corpus
        log.warning("%s: the %s extractor failed", name, fmt, exc_info=True)
        raise CorpusError(f"{name}: could not extract text from this {fmt} file "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None


# --------------------------------------------------------------------------
# Plain text and Markdown
# --------------------------------------------------------------------------
# Share of control characters above which a "text" file is taken for binary.
BINARY_CONTROL_SHARE = 0.1


def decode_bytes(data: bytes, name: str) -> tuple[str, str]:
    """Decode a text file, or raise CorpusError saying why it cannot be used."""
    if not data.strip():
        raise CorpusError(f"{name}: the file is empty")
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{name}: looks like a binary file (contains NUL bytes); convert it to UTF-8 text first")
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for c in text[:8192] if ord(c) < 32 and c not in "\n\r\t\f")
        # A few stray control characters (scraped web text) are cleaned away
        # (rag.text.clean_extracted_text); a text made of them is binary.
        if controls > BINARY_CONTROL_SHARE * min(len(text), 8192):
            raise CorpusError(f"{name}: looks like a binary file ({controls} control characters)")
        if controls:
            log.warning("%s: %d control characters removed from the text", name, controls)
        return text, encoding.replace("-sig", "")
    raise CorpusError(f"{name}: not valid UTF-8 or GB18030 text; re-save it as UTF-8")


def extract_plain(data: bytes, name: str) -> Extracted:
    text, encoding = decode_bytes(data, name)
    fmt = MARKDOWN if name.lower().endswith(".md") else TEXT
    return Extracted(text, fmt, {"encoding": encoding})


# --------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------
# A bare page number line: "3", "- 3 -", "— 3 —", "第 3 页", "第3页 共5页", "3 / 5", "Page 3 of 5".
_PAGE_NUMBER = re.compile(
    r"^(?:[-–—－\s]*\d{1,4}[-–—－\s]*"
    r"|第\s*\d{1,4}\s*页(?:\s*[,，/]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4}"
    r"|(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?)$", re.I)
_DIGITS = re.compile(r"\d+")
EDGE_LINES = 3  # running headers/footers are looked for among a page's first and last lines
SENTENCE_END = "。！？!?；;…"
CLOSERS = "”’」』）)】〉》\"'"


def _width(line: str) -> float:
    """Printed width in ems, roughly: Latin letters and digits ½, everything
    else 1 (CJK fonts print curly quotes, dashes and ellipses full width)."""
    return sum(0.5 if ord(c) < 0x1100 else 1.0 for c in line)


def remove_running_lines(pages: list[list[str]]) -> tuple[list[list[str]], int]:
    """Drop running headers/footers (a line, digits ignored, repeated among the
    first/last lines of at least half the pages, ≥ 2 pages) and bare page
    numbers among a page's first/last lines.  Returns the pages and how many
    lines went."""
    def edges(lines: list[str]) -> set[int]:
        n = len(lines)
        return set(range(min(EDGE_LINES, n))) | set(range(max(0, n - EDGE_LINES), n))

    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({_DIGITS.sub("#", lines[i]) for i in edges(lines)})
    threshold = max(2, (len(pages) + 1) // 2)
    running = {key for key, c in counts.items() if c >= threshold and len(key) <= 80}
    out, removed = [], 0
    for lines in pages:
        drop = {i for i in edges(lines)
                if _DIGITS.sub("#", lines[i]) in running or _PAGE_NUMBER.match(lines[i])}
        removed += len(drop)
        out.append([line for i, line in enumerate(lines) if i not in drop])
    return out, removed


def _ends_sentence(line: str) -> bool:
    stripped = line.rstrip(CLOSERS)
    return bool(stripped) and stripped[-1] in SENTENCE_END


def page_paragraphs(lines: list[str]) -> str:
    """One page's lines as text: lines of one paragraph separated by "\\n" (a
    line wrap, which cleaning removes), paragraphs by a blank line.  A
    paragraph ends after a line that ends a sentence or is clearly shorter
    than the page's full lines, and before a line that opens a heading.  Line
    widths are only estimated, so this errs towards breaking: a blank line
    inside a sentence is joined again by cleaning (it reads as a page break),
    while a missed break would merge a heading into the paragraph above it."""
    if not lines:
        return ""
    widths = sorted(_width(line) for line in lines)
    full = widths[int(0.9 * (len(widths) - 1))]
    parts = [lines[0]]
    for prev, line in zip(lines, lines[1:]):
        short = _width(prev) < full - 1.5  # a full line may lose one character to line-breaking rules
        parts.append("\n\n" if short or _ends_sentence(prev) or match_heading(line) is not None else "\n")
        parts.append(line)
    return "".join(parts)


def join_pages(pages: list[list[str]]) -> tuple[str, tuple[int, ...]]:
    """Pages joined by a blank line (the page-break form cleaning repairs),
    with each page's start offset.  An empty page starts where the next does."""
    text, starts = "", []
    for lines in pages:
        body = page_paragraphs(lines)
        if text and body:
            text += "\n\n"
        starts.append(len(text))
        text += body
    return text, tuple(starts)


def _pdf_date(value: str) -> str:
    """PDF date "D:20241128093000+08'00'" -> "2024-11-28"."""
    m = re.match(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?", value.strip())
    if not m:
        return ""
    y, mo, d = m.group(1), m.group(2) or "01", m.group(3) or "01"
    return f"{y}-{mo}-{d}"


# A file property "title" that is a file name or a web address (a page
# printed to PDF from a browser: "report.html") names no document.
_NOT_A_TITLE = re.compile(r"^(?:https?://|www\.|file:)|^[^\s/\\]+\.(?:html?|php|aspx?|jsp|txt|md|pdf|docx?|wps|xlsx?|pptx?)$"
                          r"|^[\w.-]+\.(?:com|cn|org|net|gov|edu)(?:[/:].*)?$", re.I)


def _clean_title(title: str) -> str:
    title = re.sub(r"^Microsoft (?:Word|PowerPoint) - ", "", title.strip())
    title = re.sub(r"\.(?:docx?|wps|pdf)$", "", title, flags=re.I)
    if _NOT_A_TITLE.search(title):
        return ""
    return "" if title.lower() in ("", "untitled", "about:blank", "无标题") else title


def extract_pdf(data: bytes, name: str) -> Extracted:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise CorpusError(f"{name}: an encrypted (password-protected) PDF; remove the password "
                              "(e.g. print it to a new PDF) and add it again") from exc
        raise CorpusError(f"{name}: not a readable PDF ({exc}); the file may be damaged or truncated") from exc
    try:
        pages: list[list[str]] = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            raw = textpage.get_text_range()
            textpage.close()
            page.close()
            lines = [re.sub(r"[ \t\u3000\xa0]+$", "", line) for line in re.split(r"\r\n|\r|\n", raw)]
            pages.append([line.strip("\ufeff\x02") for line in lines if line.strip()])
        props = pdf.get_metadata_dict(skip_empty=True)
    except pdfium.PdfiumError as exc:
        raise CorpusError(f"{name}: not a readable PDF ({exc}); the file may be damaged or truncated") from exc
    finally:
        pdf.close()
    if not pages:
        raise CorpusError(f"{name}: the PDF has no pages")
    if not any(pages):
        raise CorpusError(f"{name}: {NO_TEXT_LAYER}")
    empty = [str(i + 1) for i, lines in enumerate(pages) if not lines]
    if empty:
        log.warning("%s: pages %s have no text layer (scanned?); their content is not indexed", name, ",".join(empty))
    pages, removed = remove_running_lines(pages)
    text, starts = join_pages(pages)
    metadata = {"page_count": str(len(pages))}
    if empty:
        metadata["pages_without_text"] = ",".join(empty)
    if title := _clean_title(props.get("Title", "")):
        metadata["title"] = title
    if author := props.get("Author", "").strip():
        metadata["author"] = author
    # When the file was made (a print to PDF: the day it was printed), not the
    # document's date: that comes from its text or a sidecar (load_document).
    if created := _pdf_date(props.get("CreationDate", "")):
        metadata["created"] = created
    log.debug("%s: %d pages, %d running header/footer/page-number lines removed", name, len(pages), removed)
    return Extracted(text, PDF, metadata, starts)


# --------------------------------------------------------------------------
# DOCX
# --------------------------------------------------------------------------
_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.I)
CELL_SEPARATOR = " | "


def _heading_level(style_name: str, has_title: bool) -> int | None:
    if style_name.lower() == "title":
        return 1
    m = _HEADING_STYLE.match(style_name.strip())
    if not m:
        return None
    return min(6, int(m.group(1)) + (1 if has_title else 0))


def extract_docx(data: bytes, name: str) -> Extracted:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors… on damaged files
        raise CorpusError(f"{name}: not a readable Word document ({type(exc).__name__}: {exc})") from exc
    blocks = list(document.iter_inner_content())
    has_title = any(not isinstance(b, Table) and b.style is not None and b.style.name.lower() == "title"
                    for b in blocks)
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            parts.extend(_table_rows(block))
            continue
        text = block.text.strip()
        if not text:
            continue
        level = _heading_level(block.style.name if block.style is not None else "", has_title)
        parts.append("#" * level + " " + text.replace("\n", " ") if level else text)
    text = "\n\n".join(parts)
    if not text.strip():
        raise CorpusError(f"{name}: the Word document has no text")
    props = document.core_properties
    metadata = {}
    if title := _clean_title(props.title or ""):
        metadata["title"] = title
    if props.author:
        metadata["author"] = props.author.strip()
    if props.created:  # often the template's date: not the document's (see extract_pdf)
        metadata["created"] = props.created.date().isoformat()
    if props.modified:
        metadata["modified"] = props.modified.date().isoformat()
    return Extracted(text, DOCX, metadata)


def _table_rows(table) -> list[str]:
    """One line per row, cells joined by CELL_SEPARATOR; a merged cell once."""
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(re.sub(r"\s*\n\s*", " ", cell.text.strip()))
        if any(cells):
            rows.append(CELL_SEPARATOR.join(cells))
    return rows


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------
def extract_html(data: bytes, name: str) -> Extracted:
    import trafilatura

    html, encoding = _decode_html(data, name)
    doc = trafilatura.bare_extraction(html, output_format="python", include_comments=False, include_tables=True,
                                      include_formatting=True, favor_recall=True, with_metadata=True)
    body = (doc.text if doc is not None else "") or ""
    if not body.strip():
        raise CorpusError(f"{name}: no main text found in the HTML page")
    body = _markdown_to_text(body)
    metadata = {"encoding": encoding}
    for key in ("title", "author", "date", "sitename"):
        value = getattr(doc, key, None)
        if value and str(value).strip():
            metadata["source" if key == "sitename" else key] = str(value).strip()
    if "title" in metadata:
        metadata["title"] = _clean_title(metadata["title"]) or metadata.pop("title")
    return Extracted(body, HTML, metadata)


def _decode_html(data: bytes, name: str) -> tuple[str, str]:
    m = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", data[:4096], re.I)
    declared = m.group(1).decode("ascii").lower() if m else None
    if declared in ("gb2312", "gbk"):
        declared = "gb18030"
    if declared:
        try:
            return data.decode(declared).lstrip("\ufeff"), declared
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_bytes(data, name)


def _markdown_to_text(text: str) -> str:
    """trafilatura's Markdown, kept as Markdown headings but without inline
    emphasis markers; blocks separated by blank lines."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"(\*\*|__)(.+?)\1", r"\2", line).rstrip()
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n\n".join(l for l in lines if l.strip()))


__all__ = ["Extracted", "extract", "sniff_format", "decode_bytes", "extract_pdf", "extract_docx", "extract_html",
           "extract_plain", "remove_running_lines", "join_pages", "NO_TEXT_LAYER"]
