"""Notebook displays of results: HTML well-formed and escaped, Markdown with the target's LaTeX."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from bptt_check.display import VERDICT_COLOURS, md_code, md_text, target_latex
from bptt_check.grading.result import GradeResult, Summary
from bptt_check.language import parse_target, to_latex
from bptt_check.model import RNN
from bptt_check.results import VERDICTS, CheckResult, Counterexample, Diagnosis, Evidence, Reading

HOSTILE = "<script>alert('x')</script> `a`` | **b** $c$ [d](e) & <img src=x onerror=alert(1)>"
MARKDOWN_TAGS = {"p", "code", "pre", "strong", "em", "ul", "li", "table", "thead", "tbody", "tr", "th", "td"}
VOID = {"br", "img", "hr", "meta", "input", "wbr", "col", "area", "base", "link", "source", "track", "embed", "param"}


class _Balance(HTMLParser):
    """Records every tag and fails on an end tag that does not close the innermost open one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(fragment: str) -> _Balance:
    p = _Balance()
    p.feed(fragment)
    p.close()
    assert not p.problems, p.problems
    assert not p.stack, f"unclosed: {p.stack}"
    return p


def markdown(text: str) -> str:
    """``text`` rendered by markdown-it (rich's own dependency), raw HTML enabled as in Jupyter."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table").render(text)


def result(verdict: str, answer: str = "h_2.T @ (yhat_2 - y_2)", target: str = "dL/dW_hy") -> CheckResult:
    cx = Counterexample(1, (1, 0), -0.07, 0.12, float("nan"), 1e-8, point={"W_hh": [[0.5, -0.25], [1.0, 2.0]]})
    return CheckResult(
        verdict=verdict,  # type: ignore[arg-type]
        target=target,
        answer=answer,
        score={"equivalent": 1.0, "transposed": 0.5}.get(verdict, 0.0),
        message=f"the message of {verdict} for {answer}",
        diagnoses=(Diagnosis("missing_term", f"misses the term of step 1 in {answer}"),),
        counterexample=cx if verdict == "not_equivalent" else None,
        readings=(Reading("dL/dh_1", True, False, f"right if dL/dh_1 is total in {answer}", ("h_2",)),),
        evidence=Evidence(numeric_points=5, rtol=1e-7, atol=1e-9, max_abs_error=0.2, truths_agree=1e-16),
        caret=f"  {answer}\n  ^",
        model="T=2, D=2, H=2, O=2, loss at every step",
        notes=(f"read {answer} as a product",),
    )


@pytest.mark.parametrize("verdict", VERDICTS)
def test_every_verdict_renders_with_its_colour_and_everything_the_result_holds(verdict):
    r = result(verdict)
    html_out = r._repr_html_()
    p = parsed(html_out)
    text = "".join(p.text)
    assert VERDICT_COLOURS[verdict] in html_out and verdict in text
    assert "misses the term of step 1" in text and "right if dL/dh_1 is total" in text
    assert "read h_2.T @ (yhat_2 - y_2) as a product" in text
    assert "h_2.T @ (yhat_2 - y_2)" in text  # the answer, unescaped back by the parser
    assert "numeric" in text and "truths" in text  # the evidence table
    assert "table" in p.tags and "script" not in p.tags
    assert ("counterexample" in text and "0.12" in text and "W_hh" in text) == (verdict == "not_equivalent")
    md = r._repr_markdown_()
    assert f"**{md_text(verdict)}**" in md and "missing\\_term" not in md and "`missing_term`" in md
    assert str(r).splitlines()[0].startswith("dL/dW_hy: " + verdict)  # the CLI text is untouched


@pytest.mark.parametrize("verdict", VERDICTS)
def test_a_hostile_answer_is_never_injected(verdict):
    for r in (result(verdict, answer=HOSTILE), result(verdict, answer=HOSTILE, target=HOSTILE)):
        html_out = r._repr_html_()
        assert "<script" not in html_out and "<img" not in html_out
        p = parsed(html_out)
        assert set(p.tags) <= {"div", "strong", "code", "pre", "em", "ul", "li", "table", "thead", "tbody", "tr",
                               "th", "td", "small"}
        assert HOSTILE in "".join(p.text)  # shown, as text
        rendered = parsed(markdown(r._repr_markdown_()))  # a CommonMark renderer that passes raw HTML through
        assert set(rendered.tags) <= MARKDOWN_TAGS, rendered.tags
        assert HOSTILE in "".join(rendered.text)
    assert r._repr_latex_() is None  # a target of no known spelling has no LaTeX
    assert not re.search(r"(?<!\\)\$", md_text(HOSTILE))  # user text never opens math


def test_code_spans_hold_any_backticks_and_text_escapes_markdown():
    assert md_code("a ``b`` c") == "```a ``b`` c```"
    assert md_code("`x`") == "`` `x` ``"
    assert md_text("- *a* | $b$ <i>") == "\\- \\*a\\* \\| \\$b\\$ &lt;i&gt;"
    assert md_text("1. two\nlines") == "1\\. two lines"


@pytest.mark.parametrize("target", ["dL/dW_hy", "dL/dW_hh", "dL/dh_1", "dL/dW_hy[0,1]", "dL_2/db_h", "L_2", "h_2[0,1]",
                                    "dL/dyhat_2"])
def test_the_markdown_holds_the_packages_latex_of_the_target(target):
    model = RNN(biases=True)
    from bptt_check.model import Target
    from bptt_check.language.ast import Element, Name, Partial

    t = parse_target(target, model)
    assert str(t) == target
    if t.wrt is None:
        name = Name(t.of, model.shape(t.of))
        expected = to_latex(name if t.index is None else Element(name, t.index))
    else:
        expected = to_latex(Partial(t.of, t.wrt, (1, 1), (), den_index=t.index))
    assert isinstance(t, Target) and target_latex(target) == expected
    r = result("equivalent", target=target)
    assert r._repr_markdown_().startswith(f"${expected}$: **equivalent**")
    assert r._repr_latex_() == rf"${expected}:\ \mathrm{{equivalent}}\ (\mathrm{{score}}\ 1)$"
    # and the package reads its LaTeX back as the same target
    assert str(parse_target(expected, model, syntax="latex")) == target


def test_the_latex_repr_escapes_the_verdicts_underscore():
    assert result("not_equivalent")._repr_latex_() == (
        r"$\frac{\partial L}{\partial W_{hy}}:\ \mathrm{not\_equivalent}\ (\mathrm{score}\ 0)$")
    assert result("invalid")._repr_latex_() == r"$\frac{\partial L}{\partial W_{hy}}:\ \mathrm{invalid}$"


def test_grade_results_and_summaries_render_escaped():
    rows = [
        GradeResult(HOSTILE, "not_equivalent", 1.0, 2.0, (Diagnosis("missing_term", HOSTILE),), message=HOSTILE),
        GradeResult("s2", "equivalent", 2.0, 2.0, message="dL/dW_hy: equivalent (score 1)"),
        GradeResult("s3", "invalid", 0.0, 2.0, (Diagnosis("internal_error", "boom"),), "boom", internal_error=True),
    ]
    for g in rows:
        p = parsed(g._repr_html_())
        assert "script" not in p.tags and g.verdict in "".join(p.text)
        assert set(parsed(markdown(g._repr_markdown_())).tags) <= MARKDOWN_TAGS
    assert "internal error" in rows[2]._repr_html_() and VERDICT_COLOURS["invalid"] in rows[2]._repr_html_()
    s = Summary.of(rows, question=HOSTILE, max_score=2.0, graded=3, unique=3, seconds=1.0)
    p = parsed(s._repr_html_())
    text = "".join(p.text)
    assert "script" not in p.tags and HOSTILE in text and "s3" in text
    for v in VERDICTS:
        assert VERDICT_COLOURS[v] in s._repr_html_()
    md = s._repr_markdown_()
    rendered = parsed(markdown(md))
    assert set(rendered.tags) <= MARKDOWN_TAGS and HOSTILE in "".join(rendered.text)
    assert "| `missing_term` | " in md and "internal error" in md
    assert "| not\\_equivalent | 1 |" in md and "| equivalent | 1 |" in md


def test_a_derivation_report_renders_each_claim(tmp_path):
    from bptt_check.derivations import verify

    f = tmp_path / "d.toml"
    f.write_text(
        'title = "t <b>"\n[model]\nsteps = 2\n'
        '[[claim]]\nname = "right <i>"\ntarget = "dL/dW_hy"\nexpr = "sum_{t=1}^{T} (h_t.T @ (yhat_t - y_t))"\n'
        'expect = "equivalent"\n'
        '[[claim]]\nname = "wrong"\ntarget = "dL/dW_hy"\nexpr = "h_2.T @ (yhat_2 - y_2)"\nexpect = "equivalent"\n'
    )
    report = verify([f])
    assert [o.ok for o in report.outcomes] == [True, False]
    p = parsed(report._repr_html_())
    text = "".join(p.text)
    assert "right <i>" in text and "t <b>" in text and "FAIL" in text and "missing_term" in text
    assert set(p.tags).isdisjoint({"i", "b"})
    md = report._repr_markdown_()
    assert md.count(r"$\frac{\partial L}{\partial W_{hy}}$") == 2 and "**FAIL**" in md
    rendered = parsed(markdown(md))
    assert set(rendered.tags) <= MARKDOWN_TAGS and "right <i>" in "".join(rendered.text)
