"""The chat page's look and behaviour on the browser side: its CSS, its page
script (citation links, 在原文中查看, copy as Markdown, the side panel, the
toasts and labels Gradio leaves in English), the small scripts run after
events, Gradio's own labels in Chinese and the theme (rag/serve/ui.py puts
them on the page)."""
from __future__ import annotations

import json

import gradio as gr

from rag.serve.ui_text import ui_text

CSS = """
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
  margin: 8px 0; background: var(--background-fill-secondary); scroll-margin-top: 12px; }
.src-card.src-hl { outline: 3px solid #d46b08; background: #fff7e6; color: #1f1f1f; }
.dark { --color-accent: var(--primary-300); }  /* the theme has no dark accent of its own */
.dark .src-card.src-hl { outline-color: #fa8c16; background: #3b2a10; color: var(--body-text-color); }
.src-uncited { opacity: 0.85; border-style: dashed; }
.src-head { font-weight: 600; }
.src-marker { color: var(--color-accent); margin-right: 4px; }
.src-path, .doc-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin: 2px 0 6px; }
.src-text, .doc-text { line-height: 1.7; }
.sources mark, .doc-text mark { background: #ffe58f; color: #1f1f1f; padding: 0 1px; }
.src-scores, .src-summary { font-size: 0.8em; color: var(--body-text-color-subdued); margin-top: 4px; }
.doc-view { margin-top: 6px; }
.doc-view summary, .ans-src summary { cursor: pointer; color: var(--color-accent); }
.doc-text { max-height: 320px; overflow: auto; padding: 6px; border-left: 3px solid var(--border-color-primary); }
.doc-passage { background: var(--background-fill-primary); }
a.cite { text-decoration: none; font-weight: 600; padding: 0 2px; }
.series-chart { margin: 6px 0; max-width: 420px; }
.bar-row { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
.bar-label { width: 3.5em; font-size: 0.85em; color: var(--body-text-color-subdued); }
.bar { display: inline-block; height: 10px; background: var(--color-accent); border-radius: 2px; flex: 0 0 auto; }
.bar-value { font-size: 0.85em; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 0.85em; font-weight: 600; }
.badge-high { background: #d9f7be; color: #135200; }
.badge-medium { background: #fff1b8; color: #613400; }
.badge-low { background: #ffd8bf; color: #871400; }
.badge-why { font-size: 0.85em; color: var(--body-text-color-subdued); }
#debug .dbg-wrap { max-width: 100%; overflow-x: auto; }
#debug .dbg-table { font-size: 0.85em; border-collapse: collapse; width: 100%; min-width: 640px; }
#debug .dbg-table th, #debug .dbg-table td { border: 1px solid var(--border-color-primary); padding: 2px 6px;
  text-align: left; vertical-align: top; }
#debug .dbg-facts { margin: 0 0 8px 1.2em; }
#debug, #sources { max-width: 100%; overflow-x: hidden; }
.examples { flex-wrap: wrap; gap: 6px; align-items: center; }
.examples button { white-space: normal; text-align: left; height: auto; flex: 0 1 auto; }
.examples-label { font-size: 0.9em; color: var(--body-text-color-subdued); }
.examples-label p { margin: 0; }
/* The chat leaves room for the question box and the examples on the first screen. */
#chat { height: min(52vh, calc(100vh - 380px)) !important; min-height: 240px; }
/* once answered, room to read (more specific than the phone's #chat rule below) */
#chat:has([data-testid="bot"]) { height: 62vh !important; }
@media (max-width: 640px) {
  #chat { height: 34vh !important; min-height: 200px; }
  #examples button { font-size: 0.85em; padding: 2px 8px; }
}
footer { flex-wrap: wrap; }
a.open-doc { color: var(--color-accent); white-space: nowrap; }
.src-doc { font-weight: 600; margin: 10px 0 2px; padding-top: 6px; border-top: 1px solid var(--border-color-primary); }
.doc-full-text { line-height: 1.8; max-height: 70vh; overflow: auto; padding: 6px 8px;
  border-left: 3px solid var(--border-color-primary); }
.doc-full mark { background: #ffe58f; color: #1f1f1f; padding: 0 1px; scroll-margin: 40vh; }
.doc-empty { color: var(--body-text-color-subdued); }
.kb-passage-list { padding-left: 0; list-style: none; }
.kb-passage { border-bottom: 1px solid var(--border-color-primary); padding: 4px 0; }
.kb-passage summary { cursor: pointer; }
#conv-list label { width: 100%; }
/* Gradio's own clear (trash) icon in the chat's toolbar: 清空对话 below asks first instead. */
#chat button[aria-label="清空对话"], #chat button[aria-label="Clear"] { display: none; }
"""

# Page scripts (run once on load).  A click on an answer's [n] opens that
# answer's source list, scrolls its card into view and highlights it.
JS = """
() => {
  const labels = %s;
  const relabel = (root) => root.querySelectorAll('button[aria-label], button[title]').forEach((b) => {
    for (const attr of ['aria-label', 'title']) {
      const zh = labels[b.getAttribute(attr)];
      if (zh) b.setAttribute(attr, zh);
    }
  });
  // Gradio's toasts are titled in English, and its upload box refuses a file
  // by its name in English ("Invalid file type: a.exe. Only .pdf, … allowed."):
  // both said in Chinese.
  const titles = {Error: '错误', Warning: '注意', Info: '提示'};
  const retoast = () => document.querySelectorAll('.toast-message-text, .toast-title').forEach((el) => {
    for (const n of el.childNodes) {
      if (n.nodeType !== Node.TEXT_NODE) continue;
      const text = n.nodeValue.trim();
      const m = /^Invalid file types?: (.*)\. Only .* allowed\.$/.exec(text);
      if (m) n.nodeValue = '文件类型不受支持：' + m[1] + '。只能上传 PDF、DOCX、HTML、Markdown 或 TXT 文件。';
      else if (el.matches('.toast-title') && titles[text]) n.nodeValue = titles[text];
    }
  });
  new MutationObserver(() => { relabel(document); retoast(); }).observe(document.body,
    {subtree: true, childList: true, attributes: true, attributeFilter: ['aria-label', 'title']});
  relabel(document);
  // Copying an answer gives Markdown (the answer, its quotes and its sources),
  // not the message's HTML: a capture listener answers before Gradio's own.
  const inline = (node) => Array.from(node.childNodes).map((n) => {
    if (n.nodeType === Node.TEXT_NODE) return n.nodeValue;
    if (n.nodeType !== Node.ELEMENT_NODE || n.matches('.badge, details, script, style')) return '';
    if (n.matches('strong, b')) return '**' + n.innerText + '**';
    if (n.matches('br')) return '\\n';
    return inline(n);
  }).join('');
  const answerMarkdown = (bot) => {
    const out = [];
    const walk = (el) => Array.from(el.children).forEach((c) => {
      if (c.matches('details.ans-src')) {
        const cards = Array.from(c.querySelectorAll('.src-card'));
        if (cards.length) out.push('来源：\\n' + cards.map((card) => {
          // textContent: a closed source list has no rendered text
          const text = (el) => (el ? el.textContent : '').replace(/\\s+/g, ' ').trim();
          const path = text(card.querySelector('.src-path'));
          return text(card.querySelector('.src-head')) + (path ? ' · ' + path : '');
        }).join('\\n'));
      } else if (c.matches('blockquote')) {
        out.push(inline(c).trim().split('\\n').map((l) => '> ' + l.trim()).join('\\n'));
      } else if (c.matches('p')) {
        const badge = c.querySelector('.badge');
        const text = inline(c).trim();
        if (text) out.push(text);
        if (badge) out.push('*' + badge.innerText.trim() + '*');
      } else if (c.matches('ul, ol')) {
        out.push(Array.from(c.children).map((li) => '- ' + inline(li).trim()).join('\\n'));
      } else if (!c.matches('.badge, script, style')) {
        walk(c);
      }
    });
    walk(bot);
    return out.join('\\n\\n').trim() + '\\n';
  };
  document.addEventListener('click', (event) => {
    const button = event.target.closest ? event.target.closest('.message-buttons-left button') : null;
    if (!button || !/复制|Copy/.test(button.getAttribute('aria-label') || '')) return;
    const row = button.closest('.message-buttons-left').previousElementSibling;
    const bot = row && (row.matches('[data-testid="bot"]') ? row : row.querySelector('[data-testid="bot"]'));
    if (!bot) return;
    event.preventDefault();
    event.stopPropagation();
    const md = answerMarkdown(bot);
    const done = () => button.setAttribute('title', '已复制（Markdown）');
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(md).then(done);
    } else {
      const area = document.createElement('textarea');
      area.value = md;
      document.body.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
      done();
    }
  }, true);
  // The conversation list: a side panel on a desktop, opened here (Gradio's
  // sidebar would cover a phone's whole screen at start); on a phone a
  // drawer, closed again once a conversation is picked.
  const PHONE = 768;
  const panelToggle = () => document.querySelector('#conv-panel .toggle-button');
  const openPanel = (tries) => {
    const panel = document.getElementById('conv-panel');
    if (!panel || !panelToggle()) { if (tries > 0) setTimeout(() => openPanel(tries - 1), 200); return; }
    if (window.innerWidth >= PHONE && !panel.classList.contains('open')) panelToggle().click();
  };
  openPanel(50);
  document.addEventListener('click', (event) => {
    const picked = event.target.closest ? event.target.closest('#conv-list label, #conv-new') : null;
    const panel = document.getElementById('conv-panel');
    if (picked && panel && window.innerWidth < PHONE && panel.classList.contains('open'))
      setTimeout(() => panelToggle() && panelToggle().click(), 300);
  });
  // 在原文中查看 (a source card, the passage browser): the link goes to the
  // server through a hidden box and button (rag/serve/docview.py).
  document.addEventListener('click', (event) => {
    const link = event.target.closest ? event.target.closest('a.open-doc') : null;
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const box = document.querySelector('#doc-request textarea, #doc-request input');
    const button = document.getElementById('doc-open');
    if (!box || !button) return;
    box.value = link.getAttribute('href') || '';
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => button.click(), 50);
  }, true);
  document.addEventListener('click', (event) => {
    const link = event.target.closest ? event.target.closest('a.cite') : null;
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const anchor = document.getElementById((link.getAttribute('href') || '').slice(1));
    if (!anchor) return;
    const list = anchor.closest('details');
    if (list) list.open = true;
    const card = anchor.closest('.src-card') || anchor;
    document.querySelectorAll('.src-card.src-hl').forEach((c) => c.classList.remove('src-hl'));
    card.classList.add('src-hl');
    card.scrollIntoView({block: 'center'});
  }, true);
}
"""
# After an answer: its first line at the top of the view (a long answer is read
# from its start, on a phone too), not the bottom of the chat.
SCROLL_TO_ANSWER_JS = """
() => {
  setTimeout(() => {
    const bots = document.querySelectorAll('#chat [data-testid="bot"]');
    if (bots.length) bots[bots.length - 1].scrollIntoView({block: 'start'});
  }, 150);
}
"""

def scroll_into_view_js(element_id: str, block: str, delay_ms: int = 150) -> str:
    """A script run after an event: the element, once shown, scrolled into view."""
    return ("() => { setTimeout(() => { const el = document.getElementById(%s); "
            "if (el && el.offsetParent !== null) el.scrollIntoView({block: %s}); }, %d); }"
            % (json.dumps(element_id), json.dumps(block), delay_ms))


# The 原文 tab opened at a quote: the quote in the middle of the view.
SCROLL_TO_QUOTE_JS = scroll_into_view_js("doc-hit", "center")
# After a thumb: the comment box (under the feedback line) in view, on a phone too.
SCROLL_TO_COMMENT_JS = scroll_into_view_js("comment-box", "nearest")
# 删除所选文档 asks first: its question and 确认删除 appear below the fold.
SCROLL_TO_CONFIRM_JS = scroll_into_view_js("kb-confirm-box", "center", 100)

# Gradio's own screen-reader announcement of a finished event has no Chinese
# translation (it would read "common.complete").
I18N = {gradio_key: ui_text("gradio_" + gradio_key.replace(".", "_"))
        for gradio_key in ("common.complete", "chatbot.copy_message", "chatbot.copied_message", "chatbot.like",
                           "chatbot.dislike")}
# Labels Gradio writes in English with no translation key (the chat's rated
# thumbs): replaced on the page as they appear.
UNTRANSLATED_LABELS = {"Liked": ui_text("gradio_liked"), "Disliked": ui_text("gradio_disliked")}
JS = JS.replace("%s", json.dumps(UNTRANSLATED_LABELS, ensure_ascii=False), 1)

# System fonts only: the default theme would fetch web fonts from the internet.
THEME = gr.themes.Soft(
    font=["PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"],
).set(
    # WCAG AA (4.5:1) on the light backgrounds: the Soft theme's indigo-500
    # accents (4.3:1) and gray-400 secondary text (2.4:1) are too light.
    color_accent="*primary_700",
    block_label_text_color="*primary_700",
    block_title_text_color="*primary_700",
    body_text_color_subdued="*neutral_600",
    button_primary_background_fill="*primary_600",
    button_primary_background_fill_hover="*primary_700",
    button_primary_border_color="*primary_600",
    # the picked conversation in the side panel (a radio label): white on indigo-500 is 4.47:1
    checkbox_label_background_fill_selected="*primary_600",
    checkbox_label_background_fill_selected_dark="*primary_600",
    # The dark palette (Gradio follows the system's dark mode), held to the
    # same 4.5:1 on the dark backgrounds: indigo-700 there is 2.4:1.
    block_label_text_color_dark="*neutral_50",  # on the dark label background (indigo-600)
    block_title_text_color_dark="*neutral_50",
    body_text_color_subdued_dark="*neutral_400",
)
