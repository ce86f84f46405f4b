"""The run as one self-contained HTML page: hosts, matrix, timeline, failures.

`render_html` is a pure function of a `RunRecord`. The page loads nothing: its
style and script are inline and its Content-Security-Policy forbids every fetch,
so it opens the same from a CI artifact store, an e-mail or a disk with no
network. Every text comes from records that are already masked.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

from .events import HostEvent
from .matrix import Matrix, build_matrix
from .records import OUTCOMES, TIMELINE_KINDS, CommandRecord, HostInfo, RunRecord, TestRecord

__all__ = ["render_html"]


_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}th,td{padding:2px 8px;text-align:left;border:1px solid #ddd}
.summary{color:#555;margin:0}
.matrix td.cell{text-align:center;cursor:pointer;min-width:4.5em;font-weight:600;color:#fff}
.matrix td.cell:hover,.matrix td.cell:focus{outline:3px solid #1565c0}
.matrix td.selected{outline:3px solid #000}
.matrix th.row{font-family:monospace;font-weight:normal}
.o-passed{background:#2e7d32}.o-failed{background:#c62828}.o-error{background:#ef6c00}
.o-skipped{background:#9e9e9e}.o-xfailed{background:#8d6e63}.o-xpassed{background:#f9a825}
.o-interrupted{background:#6a1b9a}.matrix td.notrun{background:#f3f3f3;color:#999;cursor:default}
#transcript-view{border:1px solid #bbb;padding:.6em 1em;margin-top:1em;background:#fafafa}
pre{background:#1e1e1e;color:#e8e8e8;padding:.5em;overflow:auto;max-height:30em;margin:.2em 0 .6em;
white-space:pre-wrap;word-break:break-all}
.cmd{font-family:monospace;margin-top:.4em}.cmd .st{font-weight:700;padding:0 .4em;color:#fff}
.st-Success,.st-Skipped{background:#2e7d32}.st-Failed{background:#c62828}
.st-Error,.st-Unstable{background:#ef6c00}.st-UNFINISHED{background:#6a1b9a}
.lane{display:flex;align-items:center;margin:3px 0}
.lane-name{width:10em;font-family:monospace;overflow:hidden}
.track{position:relative;flex:1;height:22px;background:#f3f3f3;border-radius:3px}
.bar{position:absolute;top:2px;height:18px;min-width:3px;border-radius:2px;cursor:pointer;z-index:2}
.mark{position:absolute;top:-3px;width:0;height:28px;border-left:2px dashed #000;z-index:3}
.mark.span{border:none;z-index:1;
background:repeating-linear-gradient(45deg,#0004 0 3px,#0000 3px 6px)}
.axis{display:flex;justify-content:space-between;margin-left:10em;color:#666;font-size:12px}
.legend span{display:inline-block;padding:0 .5em;margin-right:.3em;color:#fff;border-radius:2px}
.failure{border-left:4px solid #c62828;padding-left:.8em;margin:1em 0}
.event{font-family:monospace;color:#6a1b9a}
details{margin:.3em 0}
"""

_SCRIPT = """
(function(){
  var view=document.getElementById('transcript-view');
  function show(key){
    var src=document.querySelector('#transcripts [data-key="'+key+'"]');
    if(!src){return;}
    view.innerHTML=src.innerHTML;view.hidden=false;view.dataset.key=key;
    document.querySelectorAll('.selected').forEach(function(e){e.classList.remove('selected');});
    document.querySelectorAll('[data-key="'+key+'"].cell').forEach(function(e){e.classList.add('selected');});
    view.scrollIntoView({block:'nearest'});
  }
  document.querySelectorAll('.cell[data-key],.bar[data-key]').forEach(function(el){
    el.addEventListener('click',function(){show(el.dataset.key);});
    el.addEventListener('keydown',function(ev){if(ev.key==='Enter'||ev.key===' '){show(el.dataset.key);}});
  });
})();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(at: float, digits: int = 0) -> str:
    text = time.strftime("%H:%M:%S", time.gmtime(at))
    return f"{text}.{int(at % 1 * 10**digits):0{digits}d}" if digits else text


class _Keys:
    """The id of a (test, host) transcript in the page: ``t<test index>-h<host index>``."""

    def __init__(self, tests: Sequence[TestRecord], hosts: Sequence[str]) -> None:
        self._tests = {id(t): i for i, t in enumerate(tests)}
        self._hosts = {h: i for i, h in enumerate(hosts)}

    def __call__(self, test: TestRecord, host: str) -> str:
        return f"t{self._tests[id(test)]}-h{self._hosts[host]}"


def _command_html(command: CommandRecord) -> str:
    head = (
        f'<div class="cmd{"" if command.finished else " unfinished"}">'
        f'<span class="st st-{_e(command.verdict)}">{_e(command.verdict)}</span> '
        f"[{_e(command.session)}] {_e(command.kind)} <b>{_e(command.command)}</b>"
    )
    if command.finished:
        head += f" (exit {command.retcode}, {command.duration:.3f}s)</div>"
    else:
        head += (
            f" (still running after {command.duration:.3f}s when the test was stopped; output so far)</div>"
        )
    return head + (f"<pre>{_e(command.output)}</pre>" if command.output else "")


def _transcript_html(test: TestRecord, host: str) -> str:
    parts = [
        f"<h3>{_e(test.nodeid)} on {_e(host)}: "
        f'<span class="legend"><span class="o-{_e(test.outcome)}">{_e(test.outcome)}</span></span></h3>'
    ]
    if test.longrepr:
        parts.append(f'<pre class="longrepr">{_e(test.longrepr)}</pre>')
    commands = test.commands_on(host)
    parts.extend(_command_html(c) for c in commands)
    if not commands:
        parts.append("<p>No command ran on this host during this test.</p>")
    marks = [e for e in test.events if e.host_id == host and e.kind != "console"]
    parts.extend(f'<div class="event">{_e(_clock(e.at))} {_e(e.kind)} {_e(e.detail)}</div>' for e in marks)
    console = [e.detail for e in test.events if e.host_id == host and e.kind == "console"]
    if console:
        parts.append(
            f"<details><summary>console: {len(console)} lines as received</summary>"
            f"<pre>{_e(chr(10).join(console))}</pre></details>"
        )
    return "".join(parts)


def _host_table(run: RunRecord) -> list[HostInfo]:
    """The lab's hosts, with the columns ``info`` events add (``lease holder: ci-3``, last wins)."""
    extra: dict[str, dict[str, str]] = {}
    for event in sorted(run.all_events(), key=lambda e: e.at):
        if event.kind == "info" and ":" in event.detail:
            name, _, value = event.detail.partition(":")
            extra.setdefault(event.host_id, {})[name.strip()] = value.strip()
    return [replace(h, extra=(*h.extra, *extra.get(h.id, {}).items())) for h in run.hosts]


def _hosts_html(hosts: Sequence[HostInfo]) -> str:
    extra_names = list(dict.fromkeys(name for h in hosts for name, _ in h.extra))
    head = "".join(f"<th>{_e(n)}</th>" for n in ["host", "transport", "endpoint", "tags", *extra_names])
    rows = []
    for h in hosts:
        extra = dict(h.extra)
        cells = [h.id, h.transport, h.endpoint, ", ".join(h.tags), *(extra.get(n, "") for n in extra_names)]
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="hosts"><tr>{head}</tr>{"".join(rows)}</table>'


def _matrix_html(matrix: Matrix, key: _Keys) -> str:
    head = "<tr><th>test</th>" + "".join(f"<th>{_e(h)}</th>" for h in matrix.hosts) + "</tr>"
    rows = []
    for row in matrix.rows:
        cells = []
        for host in matrix.hosts:
            test = matrix.cells.get((row, host))
            if test is None:
                cells.append('<td class="notrun" title="not run on this host">-</td>')
                continue
            cells.append(
                f'<td class="cell o-{_e(test.outcome)}" data-key="{key(test, host)}" data-host="{_e(host)}" '
                f'tabindex="0" role="button" title="{_e(test.nodeid)}: show the transcript">'
                f"{_e(test.outcome)}</td>"
            )
        rows.append(f'<tr><th class="row">{_e(row)}</th>{"".join(cells)}</tr>')
    return f'<table class="matrix">{head}{"".join(rows)}</table>'


def _span(tests: Sequence[TestRecord], events: Iterable[HostEvent]) -> tuple[float, float]:
    times = [t for test in tests for t in (test.start, test.stop) if t]
    times += [t for e in events if e.kind in TIMELINE_KINDS for t in (e.at, e.at + e.duration)]
    if not times:
        return 0.0, 1.0
    return min(times), max(max(times), min(times) + 0.001)


def _timeline_html(run: RunRecord, matrix: Matrix, key: _Keys) -> str:
    tests = run.tests
    events = [e for e in run.all_events() if e.kind in TIMELINE_KINDS]
    t0, t1 = _span(tests, events)

    def pct(at: float) -> float:
        return round((at - t0) / (t1 - t0) * 100, 3)

    lanes = []
    for host in matrix.hosts:
        items = []
        for test in tests:
            if host not in test.hosts or not test.start:
                continue
            width = max(pct(test.stop) - pct(test.start), 0.0)
            items.append(
                f'<div class="bar o-{_e(test.outcome)}" data-key="{key(test, host)}" '
                f'style="left:{pct(test.start)}%;width:{width}%" '
                f'title="{_e(test.nodeid)}: {_e(test.outcome)} ({test.stop - test.start:.2f}s from '
                f'{_e(_clock(test.start))})"></div>'
            )
        for e in (e for e in events if e.host_id == host):
            kind = "mark span" if e.duration else "mark"
            span = f";width:{max(pct(e.at + e.duration) - pct(e.at), 0.2)}%" if e.duration else ""
            items.append(
                f'<div class="{kind}" data-kind="{_e(e.kind)}" style="left:{pct(e.at)}%{span}" '
                f'title="{_e(e.kind)} at {_e(_clock(e.at))}: {_e(e.detail)}"></div>'
            )
        lanes.append(
            f'<div class="lane" data-host="{_e(host)}"><span class="lane-name">{_e(host)}</span>'
            f'<div class="track">{"".join(items)}</div></div>'
        )
    digits = 1 if t1 - t0 < 60 else 0  # a short run's ticks would all read the same second
    ticks = "".join(f"<span>{_e(_clock(t0 + (t1 - t0) * i / 4, digits))}</span>" for i in range(5))
    legend = "".join(f'<span class="o-{o}">{o}</span>' for o in reversed(OUTCOMES))
    marks = "dashed line: reconnect, reboot, power event; hatched: lease wait or reboot span"
    return (
        f'<div class="legend">{legend} <small>{marks}</small></div>'
        f'{"".join(lanes)}<div class="axis">{ticks}</div><p><small>Times in UTC.</small></p>'
    )


def _failures_html(run: RunRecord, matrix: Matrix) -> str:
    parts = []
    for test in run.tests:
        if not test.failed:
            continue
        for host in test.hosts or ("(no host)",):
            parts.append(f'<article class="failure">{_transcript_html(test, host)}</article>')
    return "".join(parts) or "<p>No failures.</p>"


def _summary(run: RunRecord, matrix: Matrix) -> str:
    counts: dict[str, int] = {}
    for test in run.tests:
        counts[test.outcome] = counts.get(test.outcome, 0) + 1
    outcome = ", ".join(f"{n} {o}" for o in OUTCOMES if (n := counts.get(o)))
    lab = f"lab <b>{_e(run.lab)}</b>" + (f" ({_e(run.lab_path)})" if run.lab_path else "")
    when = ""
    if run.started:
        when = f" · {_e(time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(run.started)))} UTC"
        if run.finished:
            when += f", {run.finished - run.started:.1f}s"
    return f'<p class="summary">{lab}{when} · {len(matrix.hosts)} hosts · {_e(outcome or "no tests")}</p>'


def render_html(run: RunRecord) -> str:
    """The whole report page for ``run``."""
    matrix = build_matrix(run.tests, [h.id for h in run.hosts])
    key = _Keys(run.tests, matrix.hosts)
    stores = "".join(
        f'<div data-key="{key(test, host)}">{_transcript_html(test, host)}</div>'
        for test in run.tests
        for host in test.hosts
        if host in matrix.hosts
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>pytest-otto report: {_e(run.lab)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>pytest-otto report</h1>{_summary(run, matrix)}"
        f'<section id="hosts"><h2>Hosts</h2>{_hosts_html(_host_table(run))}</section>'
        '<section id="matrix"><h2>Matrix</h2><p>Click a cell for that test\'s transcript on that host.</p>'
        f'{_matrix_html(matrix, key)}<div id="transcript-view" hidden></div></section>'
        f'<section id="timeline"><h2>Timeline</h2>{_timeline_html(run, matrix, key)}</section>'
        f'<section id="failures"><h2>Failures</h2>{_failures_html(run, matrix)}</section>'
        f'<div id="transcripts" hidden>{stores}</div>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
