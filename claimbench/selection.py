"""``-k EXPR``: which claims ``run``, ``check``, ``baseline``, ``report`` and ``compare`` keep (as pytest's ``-k``).

A *word* matches a claim when it is a case-insensitive substring of the claim's id or of its suite's
name: ``-k B2`` keeps claim B2 (and any id containing "b2"), ``-k batch`` every claim of a suite whose
name contains "batch". Words combine with ``and``, ``or``, ``not`` and parentheses (``not`` binds
tightest, then ``and``, then ``or``); a comma is an ``or`` of lowest precedence: ``-k "B2,L3"`` keeps
both. ``-k "E1 and not E1b"`` keeps E1 without E1b. Words are letters, digits and ``_-./``. An
expression that does not parse, or one that keeps no claim of the targets, is one line and exit 2; so is
one nested deeper than ``MAX_DEPTH`` parentheses and ``not``s together, or longer than ``MAX_CHARS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from claimbench.errors import UserError

_TOKEN = re.compile(r"\s*(?:(\()|(\))|(,)|([A-Za-z0-9_.\-/]+))")
_KEYWORDS = ("and", "or", "not")
_FIX = 'e.g. -k B2, -k "B2 or L3", -k "batch_size and not B3", -k "B1,B4"'
#: The deepest nesting of parentheses and ``not``s an expression may have (the parser recurses once per level).
MAX_DEPTH = 32
#: The longest expression parsed.
MAX_CHARS = 4096


class SelectionError(UserError):
    """A ``-k`` expression that does not parse, or keeps nothing."""


@dataclass(frozen=True)
class Selection:
    """A parsed ``-k`` expression: ``selection(suite_name, claim_id)`` says whether it keeps the claim."""

    expr: str
    _match: Callable[[str, str], bool]

    def __call__(self, suite: str, claim_id: str) -> bool:
        return self._match(suite.lower(), claim_id.lower())


def parse(expr: str) -> Selection:
    """``expr`` parsed (see the module docstring), or a SelectionError naming what is wrong."""
    if len(expr) > MAX_CHARS:
        raise SelectionError(f"the expression has {len(expr)} characters, more than {MAX_CHARS}", where="-k", fix=_FIX)
    tokens = _tokens(expr)
    pos = 0
    depth = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def fail(what: str) -> SelectionError:
        return SelectionError(f"{what} in {expr!r}", where="-k", fix=_FIX)

    def comma_list():
        parts = [either()]
        while peek() == ",":
            take()
            parts.append(either())
        return parts[0] if len(parts) == 1 else (lambda s, c: any(p(s, c) for p in parts))

    def either():
        parts = [both()]
        while peek() == "or":
            take()
            parts.append(both())
        return parts[0] if len(parts) == 1 else (lambda s, c: any(p(s, c) for p in parts))

    def both():
        parts = [negated()]
        while peek() == "and":
            take()
            parts.append(negated())
        return parts[0] if len(parts) == 1 else (lambda s, c: all(p(s, c) for p in parts))

    def deeper() -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise SelectionError(f"the expression nests more than {MAX_DEPTH} parentheses and 'not's deep",
                                 where="-k", fix="write it flatter: " + _FIX)

    def negated():
        nonlocal depth
        token = peek()
        if token is None:
            raise fail("the expression ends where a word was expected")
        if token == "not":
            take()
            deeper()
            inner = negated()
            depth -= 1
            return lambda s, c: not inner(s, c)
        if token == "(":
            take()
            deeper()
            inner = comma_list()
            depth -= 1
            if peek() != ")":
                raise fail("a '(' is not closed")
            take()
            return inner
        if token in (")", ",", "and", "or"):
            raise fail(f"{token!r} where a word was expected")
        word = take().lower()
        return lambda s, c: word in s or word in c

    if not tokens:
        raise fail("no claim id or suite name")
    match = comma_list()
    if pos != len(tokens):
        raise fail(f"{tokens[pos]!r} where 'and', 'or', ',' or the end was expected")
    return Selection(expr, match)


def _tokens(expr: str) -> list[str]:
    out, i = [], 0
    text = expr.rstrip()
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m:
            raise SelectionError(f"{text[i]!r} cannot appear in an expression ({expr!r}); words are letters, digits "
                                 "and _-./", where="-k", fix=_FIX)
        word = m.group(4)
        out.append(word.lower() if word and word.lower() in _KEYWORDS else m.group(m.lastindex))
        i = m.end()
    return out


def keep(suites: Iterable, selection: Selection | None) -> list:
    """The suites that hold a claim ``selection`` keeps (all, without one); none is a SelectionError."""
    suites = list(suites)
    if selection is None:
        return suites
    kept = [s for s in suites if any(selection(s.name, c.id) for c in s.claims)]
    if not kept:
        names = ", ".join(f"{s.name} ({', '.join(c.id for c in s.claims)})" for s in suites[:6])
        raise SelectionError(f"{selection.expr!r} selects no claim of {names}{', ...' if len(suites) > 6 else ''}",
                             where="-k", fix="match a claim id or a suite name (see `claimbench list`)")
    return kept


def kept_ids(suite, selection: Selection | None) -> list[str]:
    """The ids of ``suite``'s claims that ``selection`` keeps (every id, without one)."""
    return [c.id for c in suite.claims if selection is None or selection(suite.name, c.id)]
