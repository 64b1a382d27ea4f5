"""The scope query language: a small, readable way to write resource criteria.

    type = "table" and tag.pii = "true" and path starts_with "prod-pg/" and not name in ["secrets"]

Fields: `integration`, `type`, `name`, `path`, `id`, `parent`, `tag.KEY` (or `tag["KEY"]` for keys
with unusual characters). Operators: `=`, `!=`, `in`, `not_in`, `contains`, `starts_with`,
`ends_with`, and `exists` (no value). Values are double-quoted strings (`\\"` and `\\\\` escape) or
lists of them in brackets. `and` binds tighter than `or`; `not` and parentheses as usual; keywords
in any case. The parser builds the same `domain.criteria` tree that selectors build, and every error
names the column (1-based) where it was found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sluice.domain.criteria import FIELDS, AllOf, AnyOf, Criteria, Not, Op, condition
from sluice.domain.errors import InvalidInput

MAX_QUERY_LENGTH = 4000
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TAG_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
_OPERATOR_WORDS = {"in", "not_in", "contains", "starts_with", "ends_with", "exists"}


class QuerySyntaxError(InvalidInput):
    """A query that cannot be read; `column` (1-based) points at the problem."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}", column=column)
        self.message = message
        self.column = column


@dataclass(frozen=True)
class _Token:
    kind: str  # word, string, op, punct, end
    text: str
    column: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        column = i + 1
        if ch == '"':
            i, value = _string(text, i)
            tokens.append(_Token("string", value, column))
        elif text.startswith("!=", i):
            tokens.append(_Token("op", "!=", column))
            i += 2
        elif ch == "=":
            tokens.append(_Token("op", "=", column))
            i += 1
        elif ch in "()[],":
            tokens.append(_Token("punct", ch, column))
            i += 1
        elif (match := _IDENT.match(text, i)) is not None:
            tokens.append(_Token("word", match.group(), column))
            i = match.end()
            if match.group().lower() == "tag" and text.startswith(".", i):
                key = _TAG_KEY.match(text, i + 1)
                if key is None:
                    raise QuerySyntaxError("expected a tag key after 'tag.'", i + 2)
                tokens.append(_Token("key", key.group(), i + 2))
                i = key.end()
        elif ch == "'":
            raise QuerySyntaxError("strings are written in double quotes", column)
        else:
            raise QuerySyntaxError(f"unexpected character {ch!r}", column)
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _string(text: str, start: int) -> tuple[int, str]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return i + 1, "".join(out)
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in '"\\':
                raise QuerySyntaxError('only \\" and \\\\ may follow a backslash', i + 1)
            out.append(text[i + 1])
            i += 2
            continue
        if ch in "\r\n":
            raise QuerySyntaxError("a string cannot span lines", i + 1)
        out.append(ch)
        i += 1
    raise QuerySyntaxError("this string is never closed", start + 1)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def _next(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def _is_word(self, *words: str) -> bool:
        return self.token.kind == "word" and self.token.text.lower() in words

    def _expect(self, kind: str, text: str, what: str) -> _Token:
        if self.token.kind != kind or self.token.text != text:
            raise QuerySyntaxError(f"expected {what}, found {self._shown()}", self.token.column)
        return self._next()

    def _shown(self) -> str:
        token = self.token
        if token.kind == "end":
            return "the end of the query"
        return f'"{token.text}"' if token.kind != "string" else f"the string {token.text!r}"

    def parse(self) -> Criteria:
        if self.token.kind == "end":
            raise QuerySyntaxError("the query is empty", 1)
        tree = self._or()
        if self.token.kind != "end":
            raise QuerySyntaxError(f"expected and, or or the end, found {self._shown()}", self.token.column)
        return tree

    def _or(self) -> Criteria:
        items = [self._and()]
        while self._is_word("or"):
            self._next()
            items.append(self._and())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def _and(self) -> Criteria:
        items = [self._unary()]
        while self._is_word("and"):
            self._next()
            items.append(self._unary())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def _unary(self) -> Criteria:
        if self._is_word("not"):
            self._next()
            return Not(self._unary())
        if self.token.kind == "punct" and self.token.text == "(":
            self._next()
            inner = self._or()
            self._expect("punct", ")", '")"')
            return inner
        return self._comparison()

    def _field(self) -> tuple[str, str, int]:
        token = self.token
        if token.kind != "word":
            raise QuerySyntaxError(
                f"expected a field ({', '.join(FIELDS)}, tag.KEY), found {self._shown()}", token.column
            )
        self._next()
        name = token.text.lower()
        if name != "tag":
            if name not in FIELDS:
                raise QuerySyntaxError(
                    f"unknown field {token.text!r}; fields: {', '.join(FIELDS)}, tag.KEY", token.column
                )
            return name, "", token.column
        if self.token.kind == "punct" and self.token.text == "[":
            self._next()
            if self.token.kind != "string" or not self.token.text:
                raise QuerySyntaxError('expected a tag key in double quotes: tag["KEY"]', self.token.column)
            key = self._next().text
            self._expect("punct", "]", '"]"')
            return "tag", key, token.column
        if self.token.kind != "key":
            raise QuerySyntaxError('a tag is written tag.KEY or tag["KEY"]', self.token.column)
        return "tag", self._next().text, token.column

    def _comparison(self) -> Criteria:
        field, key, column = self._field()
        op_token = self.token
        if op_token.kind == "op":
            op = op_token.text
        elif op_token.kind == "word" and op_token.text.lower() in _OPERATOR_WORDS:
            op = op_token.text.lower()
        else:
            raise QuerySyntaxError(
                "expected an operator (=, !=, in, not_in, contains, starts_with, ends_with, exists), "
                f"found {self._shown()}",
                op_token.column,
            )
        self._next()
        values: tuple[str, ...] = ()
        if op in ("in", "not_in"):
            values = self._list()
        elif op != "exists":
            values = (self._value(),)
        try:
            return condition(field, Op(op), values, key)
        except ValueError as exc:
            raise QuerySyntaxError(str(exc), column) from exc

    def _value(self) -> str:
        if self.token.kind != "string":
            raise QuerySyntaxError(
                f"expected a value in double quotes, found {self._shown()}", self.token.column
            )
        return self._next().text

    def _list(self) -> tuple[str, ...]:
        self._expect("punct", "[", 'a list like ["a", "b"]')
        values = [self._value()]
        while self.token.kind == "punct" and self.token.text == ",":
            self._next()
            values.append(self._value())
        self._expect("punct", "]", '"," or "]"')
        return tuple(values)


@lru_cache(maxsize=4096)
def parse_query(text: str) -> Criteria:
    """The criteria a query means; raises `QuerySyntaxError` (an `InvalidInput`) with the column."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(f"a query may be at most {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH + 1)
    if "\x00" in text:
        raise QuerySyntaxError("NUL characters are not allowed", text.index("\x00") + 1)
    return _Parser(text).parse()


def readable_query(text: str) -> str:
    """For validators: the query unchanged, or a ValueError (which pydantic reports) with the column."""
    try:
        parse_query(text)
    except QuerySyntaxError as exc:
        raise ValueError(exc.detail) from exc
    return text
