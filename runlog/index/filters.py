"""The filter language (``--where``, the runs page's filter box) as SQL.

Comparisons of column specs (:mod:`.specs`) with numbers and quoted strings:
``= != < <= > >=``, ``and``, ``or``, ``not``, parentheses, ``in (...)``, ``like``,
``glob``, ``regexp``, ``is null`` / ``is not null`` (and ``not in``, ``not like``...).
Values are always bound, never spliced into the SQL.

>>> values = []
>>> def bind(v): values.append(v); return "?"
>>> parse_where("param:lr in (0.1, 0.01) and min:loss < 0.5", lambda s: s.label, bind).sql
'((param:lr IN (?, ?)) AND (min:loss < ?))'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Token, Transformer
from lark.exceptions import LarkError

from ..errors import UsageProblem
from .functions import check_pattern
from .specs import Spec, lark_parser, spec_of, syntax_error

_OPERATORS = {"==": "=", "<>": "!="}


@dataclass
class Filter:
    """A parsed ``--where``: its SQL, and the specs it names."""

    sql: str
    specs: list[Spec]


def parse_where(text: str, column: Callable[[Spec], str], bind: Callable[[Any], str],
                what: str = "--where") -> Filter:
    """The filter as SQL: ``column(spec)`` gives a spec's SQL expression, ``bind(value)``
    a placeholder for a value. A syntax error, or a name that matches nothing (from
    ``column``), is one :class:`UsageProblem`."""
    to_sql = ToSql(column, bind)
    try:
        sql = to_sql.transform(lark_parser().parse(text, start="start"))
    except LarkError as exc:
        if isinstance(getattr(exc, "orig_exc", None), UsageProblem):
            raise exc.orig_exc from None
        raise UsageProblem(syntax_error(what, text, exc)) from None
    if isinstance(sql, Token) or not isinstance(sql, str) or not sql.startswith("("):
        raise UsageProblem(f"{what} {text!r}: a filter compares something, e.g. \"min:loss < 0.5\"")
    return Filter(sql, to_sql.specs)


class ToSql(Transformer):
    """A parsed filter to SQL (each rule of the grammar in :mod:`.specs` is a method)."""

    def __init__(self, column: Callable[[Spec], str], bind: Callable[[Any], str]):
        super().__init__()
        self.column, self.bind = column, bind
        self.specs: list[Spec] = []
        self.texts: dict[str, str] = {}  # placeholder -> the string it binds

    def spec(self, children):
        spec = spec_of(children)
        self.specs.append(spec)
        return self.column(spec)

    def number(self, children):
        text = children[0].value
        return self.bind(float(text) if re.search(r"[.eE]", text) else int(text))

    def string(self, children):
        raw = children[0].value
        text = raw[1:-1].replace(raw[0] * 2, raw[0])
        placeholder = self.bind(text)
        self.texts[placeholder] = text
        return placeholder

    def compare(self, children):
        left, op, right = children
        return f"({left} {_OPERATORS.get(op.value, op.value)} {right})"

    def is_null(self, children, negate=""):
        return f"({children[0]} IS {negate}NULL)"

    def is_not_null(self, children):
        return self.is_null(children, "NOT ")

    def is_in(self, children, negate=""):
        return f"({children[0]} {negate}IN ({', '.join(children[1:])}))"

    def not_in(self, children):
        return self.is_in(children, "NOT ")

    def match(self, children, negate=""):
        operator = children[1].value.upper()
        if operator == "REGEXP" and children[2] in self.texts:
            check_pattern(self.texts[children[2]])  # a bad one fails here, in one line, not in SQLite
        return f"({children[0]} {negate}{operator} {children[2]})"

    def not_match(self, children):
        return self.match(children, "NOT ")

    def negate(self, children):
        return f"(NOT {children[0]})"

    def and_expr(self, children, joint=" AND "):
        return "(" + joint.join(children) + ")"

    def or_expr(self, children):
        return self.and_expr(children, " OR ")
