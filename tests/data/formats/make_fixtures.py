"""Make the format fixtures in this directory (committed; rerun only to change them).

    .venv/bin/python tests/data/formats/make_fixtures.py

Needs Chromium (/usr/bin/chromium) and the WenQuanYi Zen Hei font for the PDFs."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from pdf_extractors import render_pdf, report_paragraphs  # noqa: E402


def make_pdfs() -> None:
    paragraphs = report_paragraphs()
    # The bundled report, 3 pages, running header "苏州太湖智库 · 领导学刊 2024年第14期" and "- N -" footers.
    render_pdf(paragraphs, HERE / "report.pdf", title="与时俱进的改革之路")
    short = HERE / "short.pdf"
    render_pdf(paragraphs[11:13], short, title="短文")
    # Encrypted with a user password: cannot be opened without it.
    import pypdf

    writer = pypdf.PdfWriter(clone_from=str(short))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    with open(HERE / "encrypted.pdf", "wb") as f:
        writer.write(f)
    # Truncated: the first 2 KB of a real PDF.
    (HERE / "truncated.pdf").write_bytes((HERE / "report.pdf").read_bytes()[:2048])
    short.unlink()
    # Image only (a "scan"): one page holding a PNG, no text objects.
    from PIL import Image, ImageDraw

    img = Image.new("L", (400, 300), 255)
    draw = ImageDraw.Draw(img)
    for y in range(40, 260, 24):
        draw.rectangle((40, y, 360, y + 10), fill=0)
    img.convert("RGB").save(HERE / "scan.pdf", format="PDF", resolution=72)


def make_docx() -> None:
    import docx

    d = docx.Document()
    d.add_heading("园区营商环境报告", level=0)  # style "Title"
    d.add_paragraph("本报告总结园区近年来优化营商环境的做法。")
    d.add_heading("一网通办", level=1)
    d.add_paragraph("园区在2019年上线“一网通办”平台，企业开办时间压缩到1个工作日。")
    d.add_heading("审批改革", level=1)
    d.add_heading("相对集中许可权", level=2)
    d.add_paragraph("2016年，园区行政审批局挂牌成立，集中了原来分散在多个部门的审批事项。")
    d.add_paragraph("下表列出各年的办件量。")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([("年份", "办件量", "备注"), ("2022年", "41万件", "含线上"),
                             ("2023年", "52万件", "首次突破五十万")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    d.add_paragraph("以上数据来自园区行政审批局。")
    props = d.core_properties
    props.title = "园区营商环境报告（2024）"
    props.author = "园区研究室"
    props.created = dt.datetime(2024, 3, 15, 9, 0)
    props.modified = dt.datetime(2024, 4, 1, 9, 0)
    props.last_modified_by = "园区研究室"
    d.save(HERE / "report.docx")


HTML = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>园区发布2024年政务服务白皮书_园区管委会</title>
<meta property="og:title" content="园区发布2024年政务服务白皮书">
<meta property="article:published_time" content="2024-06-18T10:00:00+08:00">
<meta name="author" content="园区管委会办公室">
</head><body>
<header><nav><ul><li><a href="/">首页</a></li><li><a href="/news">新闻中心</a></li>
<li><a href="/gov">政务公开</a></li><li><a href="/contact">联系我们导航栏</a></li></ul></nav></header>
<div class="sidebar"><h3>热点推荐</h3><ul><li><a href="/a">侧栏推荐链接甲</a></li><li><a href="/b">侧栏推荐链接乙</a></li></ul></div>
<article>
<h1>园区发布2024年政务服务白皮书</h1>
<p>6月18日，园区召开新闻发布会，正式发布《2024年政务服务白皮书》，全面总结一年来政务服务改革的成效。</p>
<h2>办件总量再创新高</h2>
<p>白皮书显示，2023年园区政务服务中心共受理各类办件52万件，同比增长26%，其中网上办件占比达到八成以上。</p>
<p>园区持续推进“一网通办”，企业开办实现全程网办，平均用时缩短至半个工作日。</p>
<h2>下一步工作</h2>
<p>园区将继续深化“放管服”改革，推动更多高频事项实现“免申即享”，让企业和群众办事更加便捷。</p>
</article>
<footer><p>版权所有：园区管委会页脚信息 备案号：苏ICP备00000000号</p><p>技术支持：某某网络公司</p></footer>
</body></html>
"""


def main() -> None:
    make_pdfs()
    make_docx()
    (HERE / "news.html").write_text(HTML, encoding="utf-8")
    (HERE / "fake.docx").write_text("这是一个改了扩展名的文本文件，并不是真正的Word文档。\n", encoding="utf-8")
    (HERE / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)


if __name__ == "__main__":
    main()
