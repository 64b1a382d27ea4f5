"""Conditions on people: who may request, who a grant may be for, who may approve.

A condition tests one identity attribute, or combines conditions with `all` (AND) / `any` (OR). A list
of conditions (a flow's `requesters`) means any of them. The shapes the config file and API accept:

* shorthands: `{user: EMAIL}`, `{group: NAME}`, `{shift: SCHEDULE}` (on call now), and for approvers
  only `{manager: true}` (the requester's manager);
* a test on any attribute: `{attribute: department, is: payments}`, with one of the operators `is`,
  `is_not`, `in`, `contains`, `starts_with`; attributes are `user` (the email), `name`, `group`,
  `manager` (the manager's email), `shift`, or any attribute synced from the directory;
* groups: `{all: [COND, ...]}`, `{any: [COND, ...]}`.

`group` and `shift` hold several values: `is` means "one of them is", `is_not` "none of them is".
An inactive identity matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from sluice.domain.text import MAX_ITEMS, Email, Name, Token, Value

# Service accounts get an address under a reserved top-level domain (RFC 2606): never a mailbox, and
# never the address of a person an identity provider could sign in or push.
SERVICE_ACCOUNT_DOMAIN = "service-accounts.invalid"
BUILTIN_ATTRIBUTES = ("user", "name", "group", "manager", "shift")
MULTI_VALUED = frozenset({"group", "shift"})
OPERATORS = ("is", "is_not", "in", "contains", "starts_with")


@dataclass(frozen=True)
class Person:
    """The directory snapshot of one identity, taken now by the caller."""

    email: str
    active: bool = True
    groups: frozenset[str] = field(default_factory=frozenset)
    manager: str | None = None
    name: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    shifts: frozenset[str] = field(default_factory=frozenset)  # schedules this person is on call for now

    @property
    def service_account(self) -> bool:
        """A machine identity: it may ask for access, and never decides on anyone's."""
        return self.email.lower().endswith("@" + SERVICE_ACCOUNT_DOMAIN)

    def values_of(self, attribute: str) -> list[str]:
        match attribute:
            case "user":
                return [self.email.lower()]
            case "name":
                return [self.name]
            case "group":
                return sorted(self.groups)
            case "shift":
                return sorted(self.shifts)
            case "manager":
                return [self.manager.lower()] if self.manager else []
        value = self.attributes.get(attribute)
        return [] if value is None else [str(value)]


class Subject(BaseModel):
    """One condition on a person (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    user: Email | None = None
    group: Name | None = None
    shift: Token | None = None
    manager: bool = False
    attribute: Token | None = None
    is_: Value | None = Field(default=None, alias="is")
    is_not: Value | None = None
    in_: list[Value] | None = Field(default=None, alias="in", max_length=MAX_ITEMS)
    contains: Value | None = None
    starts_with: Value | None = None
    all: list[Subject] | None = Field(default=None, max_length=MAX_ITEMS)
    any: list[Subject] | None = Field(default=None, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _one_shape(self) -> Subject:
        shorthands = [k for k in ("user", "group", "shift") if getattr(self, k)]
        shorthands += ["manager"] if self.manager else []
        operators = [op for op in OPERATORS if self.operand(op) is not None]
        combos = [k for k in ("all", "any") if getattr(self, k) is not None]
        if self.attribute is not None:
            if shorthands or combos:
                raise ValueError("a condition with 'attribute' takes one operator and nothing else")
            if len(operators) != 1:
                raise ValueError(
                    f"condition on {self.attribute!r} needs exactly one operator: {', '.join(OPERATORS)}"
                )
            if self.in_ is not None and not self.in_:
                raise ValueError("'in' needs at least one value")
            return self
        if operators:
            raise ValueError("an operator needs 'attribute': e.g. {attribute: department, is: payments}")
        if len(shorthands) + len(combos) != 1:
            raise ValueError("name exactly one of 'user', 'group' or 'manager: true'")
        for combo in combos:
            if not getattr(self, combo):
                raise ValueError(f"'{combo}' needs at least one condition")
        return self

    @model_serializer(mode="wrap")
    def _compact(self, handler: Any) -> dict[str, Any]:
        """Only what was written: `{group: sre}`, not every empty field."""
        data: dict[str, Any] = handler(self)
        renamed = {"is_": "is", "in_": "in"}
        return {renamed.get(k, k): v for k, v in data.items() if v is not None and v is not False}

    def operand(self, op: str) -> str | list[str] | None:
        value: str | list[str] | None = getattr(self, {"is": "is_", "in": "in_"}.get(op, op))
        return value

    def test(self) -> tuple[str, str, str | list[str]] | None:
        """(attribute, operator, operand) for a single test; None for a combination or `manager`."""
        for name in ("user", "group", "shift"):
            value = getattr(self, name)
            if value:
                return name, "is", value.lower() if name == "user" else value
        if self.attribute is not None:
            for op in OPERATORS:
                operand = self.operand(op)
                if operand is not None:
                    return self.attribute, op, operand
        return None

    def attributes_used(self) -> set[str]:
        found: set[str] = set()
        single = self.test()
        if single is not None:
            found.add(single[0])
        for child in (self.all or []) + (self.any or []):
            found |= child.attributes_used()
        return found

    def mentions_manager_of_requester(self) -> bool:
        return self.manager or any(
            c.mentions_manager_of_requester() for c in (self.all or []) + (self.any or [])
        )

    def describe(self) -> str:
        if self.all is not None:
            return "(" + " and ".join(c.describe() for c in self.all) + ")"
        if self.any is not None:
            return "(" + " or ".join(c.describe() for c in self.any) + ")"
        if self.manager:
            return "the requester's manager"
        single = self.test()
        if single is None:
            return "nobody"
        attribute, op, operand = single
        if op == "is" and self.attribute is None:
            return f"{attribute} {operand}" if attribute != "shift" else f"on call for {operand}"
        shown = ", ".join(operand) if isinstance(operand, list) else operand
        return f"{attribute} {op.replace('_', ' ')} {shown}"


def _compare(values: list[str], op: str, operand: str | list[str], attribute: str) -> bool:
    fold = attribute in ("user", "manager")
    norm = [v.lower() for v in values] if fold else values
    wanted: list[str] = [operand] if isinstance(operand, str) else list(operand)
    if fold:
        wanted = [w.lower() for w in wanted]
    match op:
        case "is":
            return wanted[0] in norm
        case "is_not":
            return wanted[0] not in norm
        case "in":
            return any(w in norm for w in wanted)
        case "contains":
            return any(wanted[0] in v for v in norm)
        case "starts_with":
            return any(v.startswith(wanted[0]) for v in norm)
    raise ValueError(f"unknown operator {op!r}")


def holds(subject: Subject, person: Person) -> bool:
    """Does the (active) person satisfy the condition? `manager: true` never holds here: it names an
    approver relative to a requester (see `domain.approval`)."""
    if not person.active:
        return False
    if subject.all is not None:
        return all(holds(c, person) for c in subject.all)
    if subject.any is not None:
        return any(holds(c, person) for c in subject.any)
    single = subject.test()
    if single is None:
        return False
    attribute, op, operand = single
    return _compare(person.values_of(attribute), op, operand, attribute)


def any_holds(subjects: Iterable[Subject], person: Person) -> bool:
    return person.active and any(holds(s, person) for s in subjects)


def miss(subject: Subject, person: Person) -> str:
    """Why the person does not satisfy the condition, in words ("not in group sre")."""
    if subject.all is not None:
        for child in subject.all:
            if not holds(child, person):
                return miss(child, person)
    if subject.any is not None:
        return "none of: " + "; ".join(miss(c, person) for c in subject.any)
    single = subject.test()
    if single is None:
        return f"is not {subject.describe()}"
    attribute, op, operand = single
    if attribute == "group" and op == "is":
        return f"not in group {operand}"
    if attribute == "shift" and op == "is":
        return f"not on call for {operand}"
    values = person.values_of(attribute)
    have = ", ".join(values) if values else "nothing"
    return f"{attribute} is {have}, wanted {subject.describe()}"
