"""`explain --html`: one self-contained page (inline style and script, no network) showing a page line by line:
kept lines plain, dropped lines struck through with the rule or signal beside them, metadata lines marked, a
legend of what fired with each rule's description, and a filter to show only one rule's drops."""

from __future__ import annotations

from html import escape
from types import MappingProxyType

from .audit import Audit
from .io.writer import utf8
from .rules import RuleSet

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fff}
header{padding:16px 24px;background:#f4f5f7;border-bottom:1px solid #dcdfe4}
h1{font-size:18px;margin:0 0 6px} h2{font-size:15px;margin:18px 0 8px}
main{display:grid;grid-template-columns:minmax(0,1fr) 340px;gap:24px;padding:16px 24px}
table{border-collapse:collapse;width:100%} td,th{padding:2px 8px;vertical-align:top;text-align:left}
.lines td.n{color:#888;text-align:right;width:3em;font-variant-numeric:tabular-nums}
.lines tr.drop td.t{color:#8a8f98;text-decoration:line-through}
.lines tr.meta td.t{background:#fff6d6}
.lines td.r{white-space:nowrap;font-family:ui-monospace,monospace;font-size:12px;color:#6b4fbb}
.lines tr.keep td.r{color:#2e7d32}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;margin-right:6px;background:#e8eaed}
.badge.keep{background:#dff3e4}.badge.drop{background:#eceef1}.badge.meta{background:#fff0b3}
.meta-table th{color:#555;font-weight:600;width:7em} aside{font-size:13px}
.legend td.c{text-align:right;font-variant-numeric:tabular-nums}
.reject{color:#b3261e;font-weight:600}
"""

SCRIPT = """
document.getElementById('rule-filter').addEventListener('change', function (event) {
  var wanted = event.target.value;
  document.querySelectorAll('table.lines tr[data-verdict]').forEach(function (row) {
    row.hidden = wanted !== '' && row.dataset.rule !== wanted;
  });
});
"""


def audit_page(result: Audit, rules: RuleSet) -> str:
    """The audit of one page as a standalone HTML document."""
    descriptions = {info.id: info.description for info in rules.listing}
    meta = result.record["metadata"]
    counts = {v: sum(1 for line in result.lines if line.verdict == v) for v in ("keep", "drop", "meta")}
    rows = "".join(
        f'<tr class="{line.verdict}" data-verdict="{line.verdict}" data-rule="{escape(line.rule or "")}">'
        f'<td class="n">{line.number}</td><td class="t">{escape(line.text)}'
        + (f' <small>({escape(line.note)})</small>' if line.note else "")
        + f'</td><td class="r">{escape(line.rule or "")}</td><td>{escape(line.label)}</td>'
        f'<td>{"" if line.probability is None else f"{line.probability:.2f}"}</td></tr>'
        for line in result.lines)
    legend = "".join(
        f'<tr><td><code>{escape(rule)}</code></td><td class="c">{n}</td>'
        f'<td>{escape(descriptions.get(rule) or _signal(rule))}</td></tr>' for rule, n in result.rules_fired.items())
    options = "".join(f'<option value="{escape(rule)}">{escape(rule)} ({n})</option>'
                      for rule, n in result.rules_fired.items())
    fields = "".join(f"<tr><th>{key}</th><td>{escape(str(meta.get(key)))}</td></tr>"
                     for key in ("title", "author", "date", "sitename", "url", "language", "word_count"))
    reject = (f'<p class="reject">rejected: {escape(result.rejected)} — {escape(result.detail or "")}</p>'
              if result.rejected else "")
    return utf8(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pagewash explain: {escape(result.source)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body><header><h1>{escape(result.source)}</h1>
<span class="badge">{escape(result.kind)}</span><span class="badge keep">{counts['keep']} kept</span>
<span class="badge drop">{counts['drop']} dropped</span><span class="badge meta">{counts['meta']} metadata</span>
{reject}</header>
<main><section><h2>Lines</h2>
<label>Show: <select id="rule-filter"><option value="">every line</option>{options}</select></label>
<table class="lines"><thead><tr><th>#</th><th>text</th><th>rule</th><th>class</th><th>p</th></tr></thead>
<tbody>{rows}</tbody></table></section>
<aside><h2>Metadata</h2><table class="meta-table">{fields}</table>
<h2>What fired</h2><table class="legend"><tr><th>rule or signal</th><th>lines</th><th>what it is</th></tr>
{legend}</table></aside></main>
<script>{SCRIPT}</script></body></html>
""")


_SIGNALS = MappingProxyType({
    "trafilatura": "trafilatura left the line out of the page's main content",
    "signal.outside_region": "outside the article region (the densest run of prose)",
    "signal.link_list": "lynx's list of the page's links (References), or a line of its [n] link markers alone",
    "meta.title": "the article's title, moved to metadata",
    "meta.byline": "the byline, moved to metadata",
    "meta.date": "the date line, moved to metadata",
})


def _signal(rule: str) -> str:
    if rule in _SIGNALS:
        return _SIGNALS[rule]
    if rule.startswith("model."):
        return "the learned cleaner's verdict"
    if rule.startswith("signal."):
        return "a heuristic signal of the text cleaner: " + rule.split(".", 1)[1].replace("_", " ")
    return ""
