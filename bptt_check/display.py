"""Rich notebook displays of the frozen results: ``_repr_html_``, ``_repr_markdown_``, ``_repr_latex_``.

Every display is self-contained (inline styles, no script, no CDN: nothing is
fetched at view time). User text — answers, messages, ids, file names — is
always escaped: ``html.escape`` in HTML; in Markdown, code spans whose fence
is longer than any backtick run of the text, or backslash escapes plus
``html.escape`` for running text. Math in Markdown and LaTeX is only ever the
package's own LaTeX of a target written the way :class:`bptt_check.model.Target`
writes it (``dL/dW_hh``, ``dL/dW_hy[0,1]``, ``h_2[1]``); any other target text
is shown as code.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from .derivations import ClaimOutcome, VerifyReport
    from .grading.result import GradeResult, Summary
    from .results import CheckResult

VERDICT_COLOURS = {
    "equivalent": "#1a7f37",
    "equivalent_numerically": "#2da44e",
    "transposed": "#bf8700",
    "not_equivalent": "#cf222e",
    "invalid": "#6e7781",
}
"""The headline colour of each verdict (green: right; amber: a layout slip; red: wrong; grey: unreadable)."""

_NAME = r"([A-Za-z]+(?:_[A-Za-z]+)?)(?:_(\d+))?"
_INDEX = r"(?:\[(\d+),(\d+)\])?"
_GRADIENT = re.compile(rf"d{_NAME}/d{_NAME}{_INDEX}")
_FORWARD = re.compile(rf"{_NAME}{_INDEX}")
# Markdown's punctuation that changes the rendering anywhere in a line (emphasis, code, links, tables, math),
# and what starts a block at the start of a paragraph (list, heading, setext rule);
# <, >, & and quotes are left to html.escape so that entities stay intact.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|$~])")
_MD_BLOCK_START = re.compile(r"^(\d*)([-+#=.)])")


def target_latex(text: str) -> str | None:
    r"""The package's LaTeX of a target spelled as ``Target`` prints it, else ``None``.

    ``dL/dW_hy[0,1]`` → ``\frac{\partial L}{\partial W_{hy}[0,1]}``; ``h_2`` → ``h_{2}``.
    The text is matched against that spelling only; nothing else of it reaches the printer.
    """
    from .language import to_latex
    from .language.ast import Element, Name, Partial
    from .model import Ref

    def ref(family: str, step: str | None) -> Ref:
        return Ref(family, None if step is None else int(step))

    def index(row: str | None, col: str | None) -> tuple[int, int] | None:
        return None if row is None else (int(row), int(col or 0))

    if m := _GRADIENT.fullmatch(text):
        # Shapes do not reach the printed text of a partial or a name; (1, 1) stands in for them.
        expr = Partial(ref(*m.group(1, 2)), ref(*m.group(3, 4)), (1, 1), (), den_index=index(*m.group(5, 6)))
        return to_latex(expr)
    if m := _FORWARD.fullmatch(text):
        name = Name(ref(*m.group(1, 2)), (1, 1))
        at = index(*m.group(3, 4))
        return to_latex(name if at is None else Element(name, at))
    return None


# -- HTML ----------------------------------------------------------------------


def esc(text: object) -> str:
    """``text`` as HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(str(text), quote=True)


def verdict_html(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#57606a")
    return f'<strong style="color:{colour}">{esc(verdict)}</strong>'


def card_html(verdict: str | None, headline: str, *parts: str) -> str:
    """A block with a coloured left rule and a headline (already HTML), then the ``parts`` (already HTML)."""
    colour = VERDICT_COLOURS.get(verdict or "", "#57606a")
    body = "".join(p for p in parts if p)
    return (
        f'<div class="bptt-check" style="border-left:4px solid {colour};padding:4px 10px;'
        f'font-family:sans-serif;line-height:1.4">'
        f'<div style="font-size:1.1em">{headline}</div>{body}</div>'
    )


def list_html(title: str, items: Iterable[str]) -> str:
    """A titled bulleted list of ``items`` (already HTML); empty when there are none."""
    rows = "".join(f"<li>{item}</li>" for item in items)
    return f"<div><em>{esc(title)}</em><ul>{rows}</ul></div>" if rows else ""


def table_html(header: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """A small table; cells are escaped unless ``raw`` (then they are HTML already)."""
    cell = (lambda c: c) if raw else esc
    head = "".join(f'<th style="text-align:left">{esc(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="text-align:left">{cell(c)}</td>' for c in row) + "</tr>"
                   for row in rows)
    if not body:
        return ""
    return f'<table style="border-collapse:collapse;margin:4px 0"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pre_html(text: str) -> str:
    return f'<pre style="margin:4px 0">{esc(text)}</pre>' if text else ""


# -- Markdown ------------------------------------------------------------------


def md_text(text: object) -> str:
    """``text`` as Markdown running text: punctuation backslash-escaped, HTML escaped, one line."""
    one_line = " ".join(str(text).split())
    escaped = _MD_BLOCK_START.sub(r"\1\\\2", _MD_SPECIAL.sub(r"\\\1", one_line))
    return html.escape(escaped, quote=False)


def md_code(text: object) -> str:
    """``text`` as a code span (shown literally), on one line."""
    one_line = " ".join(str(text).split())
    if not one_line:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", one_line)), default=0) + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def md_block(text: str) -> str:
    """``text`` as a fenced code block (a fence longer than any backtick run in it)."""
    if not text:
        return ""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}text\n{text}\n{fence}"


def md_target(text: str) -> str:
    """The target as ``$…$`` math when it is a target's own spelling, else as code."""
    latex = target_latex(text)
    return f"${latex}$" if latex is not None else md_code(text)


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table of cells that are Markdown already (escape them with :func:`md_text`)."""
    body = ["| " + " | ".join(row) + " |" for row in rows]
    if not body:
        return ""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *body])


def _join_md(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def _bullets(title: str, items: Sequence[str]) -> str:
    return f"*{title}*\n\n" + "\n".join(f"- {i}" for i in items) if items else ""


# -- CheckResult -----------------------------------------------------------------


def _evidence_rows(r: "CheckResult") -> list[tuple[str, str]]:
    rows = []
    for line in r.evidence.lines():
        kind, _, text = line.partition(":")
        rows.append((kind.strip(), text.strip()))
    return rows


def _counterexample_rows(r: "CheckResult") -> list[tuple[str, str]]:
    cx = r.counterexample
    if cx is None:
        return []
    rows = [
        ("sample point", str(cx.point_index)),
        ("entry", "[" + ",".join(str(i) for i in cx.entry) + "]"),
        ("answer", f"{cx.answer:.10g}"),
        ("truth (sympy)", f"{cx.sympy:.10g}"),
        ("truth (jax)", f"{cx.jax:.10g}" if cx.jax == cx.jax else "jax not installed here"),
        ("|answer − truth|", f"{abs(cx.answer - cx.sympy):.3g} > tolerance {cx.tolerance:.3g}"),
    ]
    rows += cx.point_values()
    return rows


def _score(r: "CheckResult") -> str:
    return "" if r.verdict == "invalid" else f"(score {r.score:g})"


def check_result_html(r: "CheckResult") -> str:
    headline = f"<code>{esc(r.target)}</code>: {verdict_html(r.verdict)} {esc(_score(r))}"
    return card_html(
        r.verdict,
        headline,
        f"<div>{esc(r.message)}</div>",
        f"<div>answer: <code>{esc(r.answer)}</code></div>" if r.answer else "",
        pre_html(r.caret),
        list_html("diagnoses", (f"<code>{esc(d.code)}</code>: {esc(d.message)}" for d in r.diagnoses)),
        list_html("readings", (esc(m) for m in r.reading_messages())),
        list_html("notes", (esc(n) for n in r.notes)),
        table_html(("counterexample", ""), _counterexample_rows(r)),
        table_html(("evidence", ""), _evidence_rows(r)),
        f"<div><small>model: {esc(r.model)}</small></div>" if r.model else "",
    )


def check_result_markdown(r: "CheckResult") -> str:
    cx = _counterexample_rows(r)
    ev = _evidence_rows(r)
    return _join_md(
        f"{md_target(r.target)}: **{md_text(r.verdict)}** {md_text(_score(r))}".rstrip(),
        md_text(r.message),
        f"answer: {md_code(r.answer)}" if r.answer else "",
        md_block(r.caret),
        _bullets("diagnoses", [f"{md_code(d.code)}: {md_text(d.message)}" for d in r.diagnoses]),
        _bullets("readings", [md_text(m) for m in r.reading_messages()]),
        _bullets("notes", [md_text(n) for n in r.notes]),
        md_table(("counterexample", ""), [(md_text(k), md_text(v)) for k, v in cx]),
        md_table(("evidence", ""), [(md_text(k), md_text(v)) for k, v in ev]),
        f"model: {md_text(r.model)}" if r.model else "",
    )


def check_result_latex(r: "CheckResult") -> str | None:
    r"""``$\frac{\partial L}{\partial W_{hh}}:\ \mathrm{equivalent}\ (\mathrm{score}\ 1)$``, or ``None`` for a target of other spelling.

    Math mode only (``\mathrm``, ``\_``), which LaTeX, MathJax and KaTeX all read alike.
    """
    latex = target_latex(r.target)
    if latex is None:
        return None
    verdict = r.verdict.replace("_", r"\_")
    score = "" if r.verdict == "invalid" else rf"\ (\mathrm{{score}}\ {r.score:g})"
    return rf"${latex}:\ \mathrm{{{verdict}}}{score}$"


# -- grading -------------------------------------------------------------------


def grade_result_html(g: "GradeResult") -> str:
    head = f"<code>{esc(g.id)}</code>: " if g.id else ""
    headline = f"{head}{verdict_html(g.verdict)} {esc(f'{g.score:g}/{g.max_score:g}')}"
    return card_html(
        g.verdict,
        headline,
        '<div style="color:#cf222e"><strong>internal error in bptt_check</strong></div>' if g.internal_error else "",
        list_html("diagnoses", (f"<code>{esc(d.code)}</code>: {esc(d.message)}" for d in g.diagnoses)),
        pre_html(g.message),
    )


def grade_result_markdown(g: "GradeResult") -> str:
    head = f"{md_code(g.id)}: " if g.id else ""
    return _join_md(
        f"{head}**{md_text(g.verdict)}** {md_text(f'{g.score:g}/{g.max_score:g}')}",
        "**internal error in bptt\\_check**" if g.internal_error else "",
        _bullets("diagnoses", [f"{md_code(d.code)}: {md_text(d.message)}" for d in g.diagnoses]),
        md_block(g.message),
    )


def _summary_lines(s: "Summary") -> list[tuple[str, str]]:
    rows = [("answers", str(s.total)), ("graded in this run", str(s.graded)),
            ("mean score", f"{s.mean_score:.3g} / {s.max_score:g}")]
    if s.resumed:
        rows.append(("resumed", str(s.resumed)))
    if s.bad_rows:
        rows.append(("malformed rows", str(s.bad_rows)))
    if s.timeouts:
        rows.append(("time budget exceeded", str(s.timeouts)))
    return rows


def summary_html(s: "Summary") -> str:
    verdicts = [(verdict_html(v), esc(n)) for v, n in s.by_verdict.items()]
    errors = ""
    if s.internal_errors:
        errors = ('<div style="color:#cf222e"><strong>internal error in bptt_check for '
                  f"{esc(', '.join(s.internal_errors))}</strong>: these are bugs, not the students' mistakes</div>")
    return card_html(
        "not_equivalent" if s.internal_errors else None,  # red only for bptt_check's own bugs
        f"grading summary: <code>{esc(s.question)}</code>",
        errors,
        table_html(("", ""), _summary_lines(s)),
        table_html(("verdict", "answers"), verdicts, raw=True),
        table_html(("diagnosis", "answers"), s.by_diagnosis.items()),
        table_html(("most common mistakes", "message", "answers"), s.common_mistakes),
    )


def summary_markdown(s: "Summary") -> str:
    errors = ""
    if s.internal_errors:
        errors = (f"**internal error in bptt\\_check** for {md_text(', '.join(s.internal_errors))}:"
                  " these are bugs, not the students' mistakes")
    return _join_md(
        f"**grading summary**: {md_code(s.question)}",
        errors,
        md_table(("", ""), [(md_text(k), md_text(v)) for k, v in _summary_lines(s)]),
        md_table(("verdict", "answers"), [(md_text(v), str(n)) for v, n in s.by_verdict.items()]),
        md_table(("diagnosis", "answers"), [(md_code(c), str(n)) for c, n in s.by_diagnosis.items()]),
        md_table(("most common mistakes", "message", "answers"),
                 [(md_code(c), md_text(m), str(n)) for c, m, n in s.common_mistakes]),
    )


# -- derivation reports ----------------------------------------------------------


def _claim_cells(o: "ClaimOutcome") -> tuple[str, str, str | None, str, str, bool]:
    """(claim, target, verdict or None for an error, diagnosis, expected, ok) of one outcome, as plain text."""
    name = f"{o.index}. {o.name}" if o.index is not None else "(file)"
    expected = o.claim.expected_text() if o.claim is not None else ""
    if o.error or o.result is None:
        target = o.claim.target_text if o.claim is not None else ""
        key = f"[{o.key}] " if o.key else ""
        return name, target, None, f"{key}{o.error}", expected, False
    r = o.result
    target = r.target if r.target != "?" or o.claim is None else o.claim.target_text
    notes = [f"{d.code}: {d.message}" for d in r.diagnoses] + [f"reading: {rd.message}" for rd in r.readings]
    return name, target, r.verdict, "; ".join(notes), expected, o.ok


def verify_report_html(v: "VerifyReport") -> str:
    rows = []
    current = None
    for o in v.outcomes:
        if o.file != current:
            current = o.file
            title = v.titles.get(o.file, "")
            rows.append((f"<strong>{esc(o.file + (f' — {title}' if title else ''))}</strong>", "", "", "", "", ""))
        name, target, verdict, diagnosis, expected, ok = _claim_cells(o)
        rows.append((
            esc(name), f"<code>{esc(target)}</code>",
            verdict_html(verdict) if verdict else verdict_html("error"),
            esc(diagnosis), esc(expected),
            f'<span style="color:{VERDICT_COLOURS["equivalent"] if ok else VERDICT_COLOURS["not_equivalent"]}">'
            f'{"ok" if ok else "FAIL"}</span>',
        ))
    totals = v.totals
    return card_html(
        "equivalent" if v.ok else "not_equivalent",
        f"verify: {esc(f'{totals.ok} ok, {totals.failed} failed, {totals.errors} errors')}",
        table_html(("claim", "target", "verdict", "diagnosis", "expected", "ok"), rows, raw=True),
        pre_html(str(totals)),
    )


def verify_report_markdown(v: "VerifyReport") -> str:
    rows = []
    for o in v.outcomes:
        name, target, verdict, diagnosis, expected, ok = _claim_cells(o)
        rows.append((md_text(f"{o.file}: {name}"), md_target(target) if target else "", md_text(verdict or "error"),
                     md_text(diagnosis), md_text(expected), "ok" if ok else "**FAIL**"))
    return _join_md(
        f"**verify**: {md_text(str(v.totals).replace(chr(10), '; '))}",
        md_table(("claim", "target", "verdict", "diagnosis", "expected", "ok"), rows),
    )
