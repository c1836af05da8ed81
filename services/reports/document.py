"""A report as a list of blocks (headings, paragraphs, key-value tables, tables, charts) and
its two renderings: a PDF made with reportlab (charts embedded as 150 dpi PNGs) and one
self-contained HTML file (charts inlined as base64 PNGs, no external asset).

Numbers are formatted once, here (:func:`money`, :func:`number`, :func:`percent`), so the PDF
and the HTML print the same text for the same figure.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from matplotlib.figure import Figure

from services.reports import charts

FORMATS = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


# --- number formatting ------------------------------------------------------------------------

def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def money(value: Any) -> str:
    """Dollars with cents and thousands separators: ``$-1,234.56``; ``n/a`` for none."""
    return "n/a" if _missing(value) else f"${float(value):,.2f}"


def number(value: Any, digits: int = 4) -> str:
    return "n/a" if _missing(value) else f"{float(value):,.{digits}f}"


def percent(value: Any, digits: int = 2, *, fraction: bool = True) -> str:
    """A fraction (0.0123) or a percentage (1.23) printed as ``1.23%``."""
    if _missing(value):
        return "n/a"
    return f"{float(value) * (100.0 if fraction else 1.0):,.{digits}f}%"


# --- blocks -----------------------------------------------------------------------------------

@dataclass
class Heading:
    text: str
    level: int = 1


@dataclass
class Paragraph:
    text: str


@dataclass
class KeyValues:
    rows: Sequence[tuple[str, str]]
    title: str | None = None


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    title: str | None = None


@dataclass
class Chart:
    """A chart: its figure, or (``_png``) the opaque PNG already rendered from it."""

    figure: Figure | None
    caption: str = ""
    width_in: float = 6.8
    _png: bytes | None = field(default=None, repr=False)

    def png(self) -> bytes:
        if self._png is None:
            self._png = charts.render_rgb_png(self.figure, dpi=charts.DPI)
        return self._png


@dataclass
class PageBreak:
    pass


@dataclass
class Document:
    title: str
    subtitle: str
    blocks: list = field(default_factory=list)
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def add(self, *blocks) -> "Document":
        self.blocks.extend(blocks)
        return self


# --- PDF (reportlab) --------------------------------------------------------------------------

def to_pdf(doc: Document) -> tuple[bytes, int]:
    """The PDF bytes and the page count."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import Image, KeepTogether
    from reportlab.platypus import PageBreak as RLPageBreak
    from reportlab.platypus import Paragraph as RLParagraph
    from reportlab.platypus import SimpleDocTemplate, Spacer
    from reportlab.platypus import Table as RLTable
    from reportlab.platypus import TableStyle

    styles = getSampleStyleSheet()
    buf = io.BytesIO()
    pages = {"n": 0}
    stamp = doc.generated_at.strftime("%Y-%m-%d %H:%M UTC")

    def on_page(canvas, template):
        pages["n"] = canvas.getPageNumber()
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.grey)
        canvas.drawString(template.leftMargin, 0.45 * inch, f"Sigma - {doc.title} - generated {stamp}")
        canvas.drawRightString(A4[0] - template.rightMargin, 0.45 * inch, f"page {canvas.getPageNumber()}")
        canvas.restoreState()

    template = SimpleDocTemplate(buf, pagesize=A4, title=doc.title, author="Sigma", subject=doc.subtitle,
                                 leftMargin=0.6 * inch, rightMargin=0.6 * inch, topMargin=0.6 * inch,
                                 bottomMargin=0.7 * inch, invariant=1)
    grid = TableStyle([
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8.5),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9eef2")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b8c0")),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ])
    kv_style = TableStyle([
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
        ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 9),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d0d6dc")),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
    ])
    story: list = [RLParagraph(html.escape(doc.title), styles["Title"]),
                   RLParagraph(html.escape(doc.subtitle), styles["Normal"]), Spacer(1, 10)]
    for block in doc.blocks:
        if isinstance(block, Heading):
            story.append(RLParagraph(html.escape(block.text), styles["Heading2" if block.level <= 1 else "Heading3"]))
        elif isinstance(block, Paragraph):
            story.append(RLParagraph(html.escape(block.text), styles["Normal"]))
            story.append(Spacer(1, 4))
        elif isinstance(block, KeyValues):
            parts = [RLParagraph(html.escape(block.title), styles["Heading4"])] if block.title else []
            t = RLTable([list(r) for r in block.rows], colWidths=[2.8 * inch, 1.9 * inch], hAlign="LEFT")
            t.setStyle(kv_style)
            story.append(KeepTogether(parts + [t, Spacer(1, 8)]))
        elif isinstance(block, Table):
            parts = [RLParagraph(html.escape(block.title), styles["Heading4"])] if block.title else []
            t = RLTable([list(block.header)] + [list(r) for r in block.rows], hAlign="LEFT", repeatRows=1)
            t.setStyle(grid)
            story.extend(parts + [t, Spacer(1, 8)])
        elif isinstance(block, Chart):
            from PIL import Image as PILImage

            fig_w, fig_h = PILImage.open(io.BytesIO(block.png())).size  # pixels: the same aspect
            w = block.width_in * inch
            img = Image(io.BytesIO(block.png()), width=w, height=w * fig_h / fig_w)
            parts = [img]
            if block.caption:
                parts.append(RLParagraph(f"<i>{html.escape(block.caption)}</i>", styles["Normal"]))
            story.append(KeepTogether(parts + [Spacer(1, 8)]))
        elif isinstance(block, PageBreak):
            story.append(RLPageBreak())
    template.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue(), pages["n"]


# --- HTML (one self-contained file) -----------------------------------------------------------

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;max-width:960px;margin:2em auto;color:#1d2b36}
h1{margin-bottom:0}h2{border-bottom:1px solid #ccd;padding-bottom:2px;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccd;padding:3px 8px}
th{background:#e9eef2}td.n{text-align:right}table.kv td:first-child{font-weight:bold}
img{max-width:100%}figure{margin:1em 0}figcaption{font-style:italic;font-size:.85em;color:#556}
footer{margin-top:2em;font-size:.8em;color:#778}
"""


_NUM_CELL = '<td class="n">'


def to_html(doc: Document) -> bytes:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">", f"<title>{e(doc.title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{e(doc.title)}</h1>", f"<p>{e(doc.subtitle)}</p>"]
    for block in doc.blocks:
        if isinstance(block, Heading):
            tag = "h2" if block.level <= 1 else "h3"
            out.append(f"<{tag}>{e(block.text)}</{tag}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{e(block.text)}</p>")
        elif isinstance(block, KeyValues):
            if block.title:
                out.append(f"<h4>{e(block.title)}</h4>")
            out.append("<table class=\"kv\">" + "".join(f"<tr><td>{e(k)}</td><td class=\"n\">{e(v)}</td></tr>"
                                                      for k, v in block.rows) + "</table>")
        elif isinstance(block, Table):
            if block.title:
                out.append(f"<h4>{e(block.title)}</h4>")
            head = "".join(f"<th>{e(h)}</th>" for h in block.header)
            body = "".join("<tr>" + "".join((_NUM_CELL if i else "<td>") + e(str(c)) + "</td>" for i, c in enumerate(r))
                           + "</tr>" for r in block.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Chart):
            data = base64.b64encode(block.png()).decode()
            out.append(f"<figure><img alt=\"{e(block.caption)}\" src=\"data:image/png;base64,{data}\">"
                       f"<figcaption>{e(block.caption)}</figcaption></figure>")
    out.append(f"<footer>Sigma - generated {doc.generated_at.strftime('%Y-%m-%d %H:%M UTC')}</footer></body></html>")
    return "\n".join(out).encode()


def render(doc: Document, fmt: str) -> tuple[bytes, int | None]:
    """(bytes, page count or None) of a document in ``pdf`` or ``html``."""
    if fmt == "pdf":
        return to_pdf(doc)
    if fmt == "html":
        return to_html(doc), None
    raise ValueError(f"format must be one of {sorted(FORMATS)}")
