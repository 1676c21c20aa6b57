"""One self-contained HTML page per experiment: videos, figures and tables embedded as data URIs.

:func:`render` takes already-computed pieces (tables, PNG and MP4 bytes, notes) and escapes every
text it writes; it reads no file itself.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

import pandas as pd

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; white-space: nowrap; }
td.text { white-space: normal; }
th:first-child, td:first-child, td.text { text-align: left; }
tr.published td { color: #666; font-style: italic; } td.incomparable { color: #bbb !important; background: #f4f4f4; } tr.real td { background: #f3f7ff; } tr.baseline td { background: #f7f7f7; }
.note { color: #555; font-size: .9em; } .warn { color: #a33; }
.clips { display: flex; flex-wrap: wrap; gap: 1em; } .clip { flex: 0 0 auto; }
.clip p { margin: .2em 0; font-size: .85em; }
img { max-width: 100%; }
.wide { overflow-x: auto; } ol.sources { margin: .3em 0; padding-left: 1.6em; }
"""


@dataclass
class ClipVideo:
    """One test clip shown as ``[real | generated | baseline]`` (mp4 bytes with audio)."""

    title: str
    mp4: bytes
    caption: str = ""


@dataclass
class Report:
    """Everything the page shows."""

    title: str
    facts: list[tuple[str, str]]
    metrics: pd.DataFrame
    metric_columns: list[str]
    videos: list[ClipVideo] = field(default_factory=list)
    ear_pngs: list[tuple[str, bytes]] = field(default_factory=list)
    loss_png: bytes | None = None
    values_png: bytes | None = None
    values_title: str = "Values logged beside the losses"
    phoneme_png: bytes | None = None
    """The training clips' phoneme histogram before/after selection (CRAN Fig. 3, Algorithm 1)."""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    incomparable: dict[str, str] = field(default_factory=dict)
    """Metric → why the papers' published values of it are not comparable with a2v's (greyed cells)."""


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _cell(row: pd.Series, col: str) -> str:
    mean = row.get(col)
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "NA"
    text = f"{mean:.4g}"
    std, n = row.get(f"{col}_std"), row.get(f"{col}_n")
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.2g}"
    if n is not None and not pd.isna(n) and row.get("kind") != "published":
        text += f" <small>(n={int(n)})</small>"
    return text


def metrics_table(metrics: pd.DataFrame, columns: list[str], incomparable: dict[str, str] | None = None) -> str:
    """``metrics.csv`` as an HTML table: mean ± std (n) per metric; published rows marked, their
    sources numbered ``[k]`` in the ``method`` cell and listed under the table.

    A published cell whose metric is in the row's ``not_comparable`` is greyed (class
    ``incomparable``, the reason as its tooltip), and each such metric's reason from
    ``incomparable`` is printed under the table, one line each.
    """
    incomparable = incomparable or {}
    kinds = {"published": "published", "real clips (upper bound)": "real", "baseline": "baseline"}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["method", "kind"] + columns)
    body, sources, greyed = [], [], []
    for _, row in metrics.iterrows():
        cls = kinds.get(str(row.get("kind")), "")
        method = html.escape(str(row["method"]))
        source = row.get("source")
        if cls == "published" and isinstance(source, str) and source:
            if source not in sources:
                sources.append(source)
            method += f" <sup>[{sources.index(source) + 1}]</sup>"
        not_comparable = str(row.get("not_comparable") or "").split(";") if cls == "published" and not pd.isna(row.get("not_comparable")) else []
        cells = [f"<td>{method}</td>", f"<td class='text'>{html.escape(str(row.get('kind', '')))}</td>"]
        for c in columns:
            if c in not_comparable:
                greyed += [c] if c not in greyed else []
                why = incomparable.get(c, "its definition differs from a2v's")
                cells.append(f"<td class='incomparable' title='{html.escape(why, quote=True)}'>{_cell(row, c)}</td>")
            else:
                cells.append(f"<td>{_cell(row, c)}</td>")
        body.append(f"<tr class='{cls}'>{''.join(cells)}</tr>")
    refs = "".join(f"<li>{html.escape(s)}</li>" for s in sources)
    why = "".join(f"<li><b>{html.escape(c)}</b>: {html.escape(incomparable.get(c, 'its definition differs from a2v’s'))}</li>"
                  for c in columns if c in greyed)
    return (f"<div class='wide'><table><tr>{head}</tr>{''.join(body)}</table></div>"
            + (f"<ol class='note sources'>{refs}</ol>" if refs else "")
            + (f"<p class='note'>Greyed published cells are not comparable with a2v's column:</p><ul class='note incomparable'>{why}</ul>"
               if why else ""))


def render(report: Report) -> str:
    """The page as one HTML string (UTF-8, no external resources)."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(report.title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>{esc(report.title)}</h1>"]
    parts.append("<table>" + "".join(f"<tr><td>{esc(k)}</td><td class='text'>{esc(v)}</td></tr>" for k, v in report.facts) + "</table>")
    parts += [f"<p class='warn'>{esc(w)}</p>" for w in report.warnings]
    parts.append("<h2>Metrics over the test clips</h2>")
    parts.append(metrics_table(report.metrics, report.metric_columns, report.incomparable))
    parts += [f"<p class='note'>{esc(n)}</p>" for n in report.notes]
    if report.videos:
        parts.append("<h2>Test clips: real | generated | static baseline</h2><div class='clips'>")
        for v in report.videos:
            parts.append(f"<div class='clip'><p><b>{esc(v.title)}</b></p><video controls preload='metadata' "
                         f"src='{_data_uri('video/mp4', v.mp4)}'></video><p>{esc(v.caption)}</p></div>")
        parts.append("</div>")
    if report.ear_pngs:
        parts.append("<h2>Eye aspect ratio and detected blinks</h2>")
        parts += [f"<p><img alt='{esc(t)}' src='{_data_uri('image/png', png)}'></p>" for t, png in report.ear_pngs]
    if report.phoneme_png:
        parts.append("<h2>Training clips: phoneme histogram before and after selection (CRAN Algorithm 1)</h2>")
        parts.append(f"<p><img alt='phoneme histograms' src='{_data_uri('image/png', report.phoneme_png)}'></p>")
    if report.loss_png:
        parts.append("<h2>Training losses per phase</h2>")
        parts.append(f"<p><img alt='losses' src='{_data_uri('image/png', report.loss_png)}'></p>")
    if report.values_png:
        parts.append(f"<h2>{esc(report.values_title)}</h2>")
        parts.append(f"<p><img alt='logged values' src='{_data_uri('image/png', report.values_png)}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)
