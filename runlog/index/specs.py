"""Column specs and the filter language, one syntax for every command and page.

A **column spec** names something a run has:

- a metric by its run-level name: ``loss`` (its last value), or ``SUMMARY:NAME`` with
  SUMMARY one of ``last first min max mean count argmin argmax`` (``argmin:loss`` is
  the step where loss was lowest);
- a parameter: ``param:NAME``;
- a run field: ``run_id tag status start_time end_time duration_s`` (a bare word that
  is a run field means the field; ``last:tag`` is a metric called tag).

A name with spaces or other characters is written in backquotes: ``min:`eval loss```
(a backquote inside is doubled).

The grammar also holds the **filter language** (``--where``), which
:mod:`.filters` turns into SQL.

>>> parse_spec("min:`eval loss`")
Spec(kind='metric', name='eval loss', summary='min')
>>> parse_spec("param:lr").label
'param:lr'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..errors import UsageProblem

SUMMARIES = ("last", "first", "min", "max", "mean", "count", "argmin", "argmax")
RUN_FIELDS = ("run_id", "tag", "status", "start_time", "end_time", "duration_s", "steps")
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_KEYWORDS = {"and", "or", "not", "in", "like", "glob", "regexp", "is", "null"}

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr                        -> negate
    | predicate
?predicate: operand COMPARE operand            -> compare
    | operand _IS _NULL                        -> is_null
    | operand _IS _NOT _NULL                   -> is_not_null
    | operand _IN "(" literal ("," literal)* ")"          -> is_in
    | operand _NOT _IN "(" literal ("," literal)* ")"     -> not_in
    | operand MATCH operand                    -> match
    | operand _NOT MATCH operand               -> not_match
    | "(" or_expr ")"
?operand: spec | literal
spec: PREFIX? (NAME | QUOTED_NAME)
?literal: NUMBER -> number
    | STRING -> string

_OR: "or"i
_AND: "and"i
_NOT: "not"i
_IS: "is"i
_NULL: "null"i
_IN: "in"i
MATCH: "like"i | "glob"i | "regexp"i
COMPARE: "=" | "==" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
PREFIX.2: /(last|first|min|max|mean|count|argmin|argmax|param):/i
NAME: /[A-Za-z_][A-Za-z0-9_.\-\/]*/
QUOTED_NAME: /`([^`]|``)+`/
NUMBER: /[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
STRING: /'([^']|'')*'/ | /"([^"]|"")*"/
%ignore /\s+/
"""


@dataclass(frozen=True)
class Spec:
    """One column: ``kind`` is ``field``, ``metric`` or ``param``."""

    kind: str
    name: str
    summary: str = "last"

    @property
    def label(self) -> str:
        """The spec as written canonically: the column's header, and what --sort takes."""
        if self.kind == "field":
            return self.name
        name = quote_name(self.name)
        if self.kind == "param":
            return f"param:{name}"
        if self.summary == "last" and self.name not in RUN_FIELDS and self.name.lower() not in _KEYWORDS:
            return name
        return f"{self.summary}:{name}"


def quote_name(name: str) -> str:
    """``name`` bare when it can be, else in backquotes.

    >>> quote_name("search.lr1.train/loss"), quote_name("eval loss")
    ('search.lr1.train/loss', '`eval loss`')
    """
    if _BARE.match(name) and name.lower() not in _KEYWORDS:
        return name
    return "`" + name.replace("`", "``") + "`"


@lru_cache(maxsize=None)
def lark_parser():
    from lark import Lark

    return Lark(GRAMMAR, start=["start", "spec"], parser="lalr", maybe_placeholders=False)


SPEC_HINT = (f"write NAME, SUMMARY:NAME ({' '.join(SUMMARIES)}) or param:NAME, "
             "with a name that has spaces or odd characters in `backquotes`")


def parse_spec(text: str, what: str = "column spec") -> Spec:
    """One column spec; a syntax error is a one-line :class:`UsageProblem` naming ``what``.

    >>> parse_spec("min:", "--metric")
    Traceback (most recent call last):
    ...
    runlog.errors.UsageProblem: --metric 'min:': unexpected end of expression; write NAME, SUMMARY:NAME (last first min max mean count argmin argmax) or param:NAME, with a name that has spaces or odd characters in `backquotes`
    """
    from lark.exceptions import LarkError

    try:
        tree = lark_parser().parse(text, start="spec")
    except LarkError as exc:
        raise UsageProblem(syntax_error(what, text, exc, SPEC_HINT)) from None
    return spec_of(tree.children)


def spec_of(children) -> Spec:
    prefix, token = (children[0], children[1]) if len(children) == 2 else (None, children[0])
    name = token.value[1:-1].replace("``", "`") if token.type == "QUOTED_NAME" else token.value
    if prefix is None:
        if token.type == "NAME" and name in RUN_FIELDS:
            return Spec("field", name)
        return Spec("metric", name)
    kind = prefix.value[:-1].lower()
    return Spec("param", name) if kind == "param" else Spec("metric", name, kind)


def syntax_error(what: str, text: str, exc: Exception, hint: str | None = None) -> str:
    """One line saying, in plain words, where the text went wrong and what could come there
    (``hint``, when given, says that instead of the grammar's list).

    >>> from lark.exceptions import LarkError
    >>> try: lark_parser().parse("loss <", start="start")
    ... except LarkError as exc: print(syntax_error("--where", "loss <", exc))
    --where 'loss <': unexpected end of expression; expected a name, a `quoted name`, a number or a 'quoted string'
    """
    token = getattr(exc, "token", None)
    column = getattr(exc, "column", None)
    column = column if isinstance(column, int) and 0 < column <= len(text) else None
    found = str(token) if token is not None else text[column - 1] if column else ""
    summary = re.search(r"([A-Za-z_]\w*)$", text[: column - 1]) if found == ":" and column else None
    expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or set()
    if token is not None and getattr(token, "type", "") == "$END":
        problem = "unexpected end of expression"
    elif _QUOTES.get(found) in expected:  # a quote that could open a string or name here: never closed
        return f"{what} {text!r}: the quote {found} at column {column} is never closed"
    elif summary:  # "median:loss": a word before ':' that is not a summary
        problem = f"unknown summary {summary.group(1)!r} at column {summary.start() + 1}"
        hint = hint or f"use {', '.join(SUMMARIES)} or param"
    else:
        problem = f"unexpected {found!r}" + (f" at column {column}" if column else "") if found else "unexpected input"
    if hint is None and expected:
        hint = f"expected {_one_of(expected)}"
    return f"{what} {text!r}: {problem}" + (f"; {hint}" if hint else "")


_QUOTES = {"'": "STRING", '"': "STRING", "`": "QUOTED_NAME"}

# What each terminal of the grammar means to a reader, in the order a reader thinks of them.
_EXPECTED = {
    "NAME": "a name", "PREFIX": "a name", "QUOTED_NAME": "a `quoted name`", "NUMBER": "a number",
    "STRING": "a 'quoted string'", "LPAR": "'('", "COMPARE": "a comparison (= != < <= > >=)", "_IS": "'is'",
    "_IN": "'in'", "_NOT": "'not'", "MATCH": "'like', 'glob', 'regexp'", "_NULL": "'null'", "COMMA": "','",
    "RPAR": "')'", "_AND": "'and'", "_OR": "'or'", "$END": "the end",
}


def _one_of(terminals) -> str:
    """``a, b or c``: what the terminals mean, in the order of :data:`_EXPECTED`."""
    order = list(_EXPECTED)
    known = sorted((t for t in terminals if t in _EXPECTED), key=order.index)
    words = list(dict.fromkeys(w for t in known for w in _EXPECTED[t].split(", ")))
    words += sorted(t.lower() for t in terminals if t not in _EXPECTED)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
