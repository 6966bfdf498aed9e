"""`OUT/report.html`: a run's report for people, self-contained (inline style, static SVG charts, no script, no
network), made from `report.json` alone, so `pagewash stats OUT --html` remakes it from the state's copy."""

from __future__ import annotations

from html import escape

from ..io.formats import FORMATS
from ..io.writer import utf8

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 24px 40px;color:#1d1d1f}
h1{font-size:22px;margin:24px 0 4px} h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #e3e5e8}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:18px}
.card{border:1px solid #e3e5e8;border-radius:8px;padding:12px 16px;overflow:hidden}
figure{margin:0 0 10px} figcaption{font-weight:600;margin-bottom:6px}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.kpi{background:#f4f5f7;border-radius:8px;padding:8px 14px} .kpi b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%} td,th{padding:2px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums} code{font-size:12px}
svg text{font:11px system-ui,sans-serif;fill:#333} .muted{color:#777}
"""
_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d")


def bar_chart(counts: dict, title: str, colour: str = _COLOURS[0], width: int = 460) -> str:
    """A horizontal bar chart (static SVG) of `counts`, largest first as given."""
    items = list(counts.items())[:15]
    if not items:
        return _figure(title, '<p class="muted">none</p>')
    top = max(v for _k, v in items) or 1
    row, label_w = 20, 170
    bars = "".join(
        f'<g transform="translate(0,{i * row})"><text x="{label_w - 6}" y="14" text-anchor="end">'
        f'{escape(str(k))[:28]}</text><rect class="bar" x="{label_w}" y="3" height="14" '
        f'width="{max(1, round((width - label_w - 60) * v / top))}" fill="{colour}"/>'
        f'<text x="{label_w + 6 + round((width - label_w - 60) * v / top)}" y="14">{v:,}</text></g>'
        for i, (k, v) in enumerate(items))
    return _figure(title, f'<svg role="img" width="100%" viewBox="0 0 {width} {row * len(items) + 4}">{bars}'
                          '</svg>')


def histogram(before: dict, after: dict, title: str, width: int = 460, height: int = 170) -> str:
    """Two series of binned counts side by side (static SVG): documents by lines in and lines kept."""
    bins = list(dict.fromkeys([*before, *after]))
    bins.sort(key=lambda b: int(str(b).split("-")[0]))
    if not bins:
        return _figure(title, '<p class="muted">none</p>')
    top = max([*before.values(), *after.values(), 1])
    title += " (bins from the number shown)"
    step = (width - 20) / len(bins)
    bars = []
    for i, b in enumerate(bins):
        for j, (series, colour) in enumerate(((before, _COLOURS[0]), (after, _COLOURS[1]))):
            h = round((height - 40) * series.get(b, 0) / top)
            bars.append(f'<rect class="bar" x="{10 + i * step + j * step / 2:.1f}" y="{height - 24 - h}" '
                        f'width="{max(step / 2 - 2, 1):.1f}" height="{h}" fill="{colour}"/>')
        bars.append(f'<text x="{10 + i * step + step / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                    f'font-size="{9 if len(bins) > 8 else 11}">{escape(b.split("-")[0])}</text>')
    legend = (f'<text x="{width - 170}" y="12" fill="{_COLOURS[0]}">■ lines in</text>'
              f'<text x="{width - 90}" y="12" fill="{_COLOURS[1]}">■ lines kept</text>')
    return _figure(title, f'<svg role="img" width="100%" viewBox="0 0 {width} {height}">{legend}{"".join(bars)}'
                          '</svg>')


def _figure(title: str, body: str) -> str:
    """A chart (or its `none`) in its figure, named by its title (`data-chart`: the tests find charts by it)."""
    return (f'<figure class="chart" data-chart="{escape(title)}"><figcaption>{escape(title)}</figcaption>'
            f'{body}</figure>')


def _table(rows: dict, head: tuple[str, str]) -> str:
    body = "".join(f'<tr><td>{escape(str(k))}</td><td class="n">{v:,}</td></tr>' if isinstance(v, int)
                   else f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<table><tr><th>{head[0]}</th><th>{head[1]}</th></tr>{body}</table>"


def report_page(report: dict, shards: dict[str, list[str]] | None = None) -> str:
    """The report as a standalone HTML document; `shards`: stream -> shard file names to link to."""
    inputs = report.get("inputs") or {}
    dedup = report.get("dedup") or {}
    rules = report.get("rules_hit") or {}
    words = report.get("rules_words") or {}
    rejects = sum((report.get("rejects") or {}).values())
    kpis = "".join(f'<div class="kpi"><b>{value}</b>{label}</div>' for label, value in (
        ("pages", f"{report.get('pages', 0):,}"), ("documents", f"{report.get('documents', 0):,}"),
        ("duplicates", f"{report.get('duplicates', 0):,}"), ("rejects", f"{rejects:,}"),
        ("pages/s", report.get("throughput", {}).get("pages_per_s", 0)),
        ("peak RSS MB", (report.get("peak_rss_mb") or {}).get("driver", "–")),
        ("status", escape(report.get("status", "")))))
    examples = "".join(
        f"<tr><td><code>{escape(reason)}</code></td><td class='n'>{n:,}</td><td>"
        + "<br>".join(f"<code>{escape(p)}</code>" for p in (report.get("reject_examples") or {}).get(reason, []))
        + "</td></tr>" for reason, n in (report.get("rejects") or {}).items())
    rule_rows = "".join(f"<tr><td><code>{escape(r)}</code></td><td class='n'>{n:,}</td><td class='n'>"
                        f"{words.get(r, 0):,}</td></tr>" for r, n in list(rules.items())[:40])
    links = "".join(f'<li>{escape(stream)}: '
                    + ", ".join(f'<a href="{escape(stream)}/{escape(name)}">{escape(name)}</a>' for name in names[:50])
                    + (f" … ({len(names)} files)" if len(names) > 50 else "") + "</li>"
                    for stream, names in (shards or {}).items())
    lengths = report.get("lengths") or {}
    return utf8(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pagewash run report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>
<h1>pagewash run report</h1>
<p class="muted">run started {escape(str(report.get("processed_at", "")))}, {report.get("seconds", 0)} s,
pagewash {escape(str(report.get("pipeline_version", "")))}, {report.get("workers", "")} workers</p>
<div class="kpis">{kpis}</div>
<div class="grid">
<div class="card">{bar_chart({k: v for k, v in inputs.items() if v}, "inputs by outcome")}
{bar_chart(report.get("input_kinds") or {}, "inputs read, by kind", _COLOURS[2])}</div>
<div class="card">{bar_chart(report.get("rejects") or {}, "rejects by reason", _COLOURS[3])}</div>
<div class="card">{bar_chart(rules, "rules hit (lines dropped)", _COLOURS[5])}</div>
<div class="card">{bar_chart(dict(sorted(words.items(), key=lambda kv: -kv[1])), "rules hit (words removed)",
                             _COLOURS[4])}</div>
<div class="card">{histogram(lengths.get("in") or {}, lengths.get("kept") or {},
                             "document length: lines in / kept")}</div>
<div class="card">{bar_chart(report.get("languages") or {}, "languages", _COLOURS[2])}</div>
<div class="card">{bar_chart(report.get("hosts") or {}, "top hosts", _COLOURS[6])}</div>
<div class="card">{bar_chart(dedup.get("cluster_sizes") or {}, "duplicate clusters by size", _COLOURS[7])}
{bar_chart(dedup.get("links") or {}, "how copies were linked", _COLOURS[1])}</div>
</div>
<h2>Rejects, with examples</h2><table><tr><th>reason</th><th>pages</th><th>first pages</th></tr>{examples}</table>
<h2>Rules</h2><table><tr><th>rule or signal</th><th>lines</th><th>words</th></tr>{rule_rows}</table>
<h2>Files skipped</h2>{_table(report.get("files_skipped") or {}, ("why", "files"))}
<h2>Settings</h2>{_table({"settings (digest of the fingerprint)": report.get("settings_digest") or "–",
                           "settings changed": ", ".join(report.get("settings_changed") or []) or "none",
                           "formats": ", ".join(FORMATS)}, ("", ""))}
<h2>Shards</h2><ul>{links or "<li class='muted'>none listed</li>"}</ul>
<h2>Totals over all runs</h2>{_table({k: v for k, v in (report.get("totals") or {}).items() if k != "inputs"},
                                      ("stream", "records"))}
</body></html>
""")
