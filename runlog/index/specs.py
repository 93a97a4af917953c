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


def parse_spec(text: str, what: str = "column spec") -> Spec:
    """One column spec; a syntax error is a one-line :class:`UsageProblem` naming ``what``."""
    from lark.exceptions import LarkError

    try:
        tree = lark_parser().parse(text, start="spec")
    except LarkError as exc:
        problem = syntax_error(what, text, exc).split("; expected")[0]
        raise UsageProblem(f"{problem}; write NAME, SUMMARY:NAME ({' '.join(SUMMARIES)}) or param:NAME, "
                           "with a name that has spaces or odd characters in `backquotes`") from None
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


def syntax_error(what: str, text: str, exc: Exception) -> str:
    """One line saying where the text went wrong and what could come there."""
    column = getattr(exc, "column", None)
    token = getattr(exc, "token", None)
    if token is not None and getattr(token, "type", "") == "$END":
        found, column = "the end", len(text) + 1
    elif token is not None:
        found = repr(str(token))
    elif column is not None and 0 < column <= len(text):
        found = repr(text[column - 1])
    else:
        found = "something unexpected"
    expected = sorted(_describe(name) for name in (getattr(exc, "expected", None) or getattr(exc, "allowed", None) or []))
    hint = f"; expected {', '.join(dict.fromkeys(expected))}" if expected else ""
    where = f" at column {column}" if isinstance(column, int) and column > 0 else ""
    return f"{what} {text!r}: unexpected {found}{where}{hint}"


def _describe(terminal: str) -> str:
    return {
        "NAME": "a name", "QUOTED_NAME": "a `quoted name`", "PREFIX": "a name", "NUMBER": "a number",
        "STRING": "a 'quoted string'", "COMPARE": "a comparison (= != < <= > >=)", "MATCH": "like, glob or regexp",
        "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "_AND": "and", "_OR": "or", "_NOT": "not", "_IN": "in",
        "_IS": "is", "_NULL": "null", "$END": "the end",
    }.get(terminal, terminal.lower())
