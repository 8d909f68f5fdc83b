"""Why a file was not added, in Chinese for the Chinese UI: every reason the
library gives for the bad files of its own tests is in the table
(rag/data/reasons_zh.toml), details kept; an unknown reason passes through."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from rag.errors import CorpusError
from rag.ingest.formats import extract
from rag.serve.present import reason_zh

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


def _bomb() -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"\0" * (8 * 2**20))
    return buf.getvalue()


BAD = {
    "elf.pdf": b"\x7fELF\x02\x01\x01\0" + bytes(64),
    "mach.docx": b"\xcf\xfa\xed\xfe" + bytes(64),
    "fake.pdf": "这不是 PDF".encode(),
    "fake.docx": "这不是 Word".encode(),
    "old.doc.docx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64),
    "bomb.docx": _bomb(),
    "empty.txt": b"   \n",
    "nul.txt": b"abc\x00def" * 10,
    "truncated.docx": (FORMATS / "report.docx").read_bytes()[:3000],
    "scan.pdf": (FORMATS / "scan.pdf").read_bytes(),
    "encrypted.pdf": (FORMATS / "encrypted.pdf").read_bytes(),
    "truncated.pdf": (FORMATS / "truncated.pdf").read_bytes(),
}


@pytest.mark.parametrize("name", list(BAD))
def test_each_refusal_of_a_bad_file_has_a_chinese_reason(name):
    with pytest.raises(CorpusError) as info:
        extract(BAD[name], name)
    reason = str(info.value).removeprefix(name + ": ")
    zh = reason_zh(reason)
    assert zh != reason, reason
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z]*(?:-[A-Za-z]+)*", zh)
             if w not in {"PDF", "Word", "DOCX", "ZIP", "OCR", "UTF", "GB", "LibreOffice", "doc", "docx", "pdf",
                          "Linux", "ELF", "macOS", "Mach-O", "Java", "Windows", "PE", "MiB", "JSON", "meta", "json"}]
    assert words == [], (reason, zh)


def test_details_are_kept_and_unknown_reasons_pass_through():
    assert reason_zh("its document id 'sip_report' is taken by sip_report.txt; rename it") == \
        "文档编号“sip_report”已被 sip_report.txt 使用；请给文件改名后再上传"
    assert reason_zh("25.3 MiB is larger than the upload limit of 20 MiB").startswith("文件大小 25.3 MiB")
    assert reason_zh("a reason nobody wrote down") == "a reason nobody wrote down"
