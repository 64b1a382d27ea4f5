"""Selectors, the query language and their explanations, in memory."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sluice.domain.criteria import first_miss, holds, reads_tags
from sluice.domain.policy import ResourceRef
from sluice.domain.query_language import QuerySyntaxError, parse_query
from sluice.domain.selectors import Selector, parse_tag_rule

ORDERS = ResourceRef("pg", "table", "orders", "pg/app/public/orders", "r1", {"pii": "true", "env": "prod"})
SECRETS = ResourceRef("pg", "table", "secrets", "pg/app/public/secrets", "r2", {"pii": "true"})
LOGS = ResourceRef("pg", "table", "logs", "pg/app/public/logs", "r3", {})


def test_any_selector_covers_everything() -> None:
    assert Selector().is_any
    assert all(holds(Selector().criteria(), r) for r in (ORDERS, SECRETS, LOGS))


def test_parts_are_joined_and_exclusions_subtract() -> None:
    selector = Selector.model_validate(
        {"under": ["pg/app/"], "tags": ["pii=true"], "exclude": {"names": ["pg/app/public/secrets"]}}
    )
    criteria = selector.criteria()
    assert [r.id for r in (ORDERS, SECRETS, LOGS) if holds(criteria, r)] == ["r1"]
    assert first_miss(criteria, SECRETS) == 'excluded by exclude.names path in ["pg/app/public/secrets"]'
    assert first_miss(criteria, LOGS) == 'tag pii is missing (wanted tag.pii = "true")'
    assert "is not parent" in (first_miss(criteria, ResourceRef("pg", "table", "x", "pg/other/s/x")) or "")


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ("pii=true", {"r1", "r2"}),
        ("pii", {"r1", "r2"}),
        ("env != prod", {"r2", "r3"}),
        ("env in [prod, dev]", {"r1"}),
        ("env not_in [prod]", {"r2", "r3"}),
    ],
)
def test_tag_rules(rule: str, matches: set[str]) -> None:
    condition = parse_tag_rule(rule)
    assert {r.id for r in (ORDERS, SECRETS, LOGS) if holds(condition, r)} == matches


@pytest.mark.parametrize("rule", ["=x", "pii=", "env in prod", "a b c"])
def test_bad_tag_rules_are_refused(rule: str) -> None:
    with pytest.raises(ValueError):
        parse_tag_rule(rule)


def test_query_language_reads_the_documented_example() -> None:
    query = parse_query(
        'type = "table" and tag.pii = "true" and path starts_with "pg/" and not name in ["secrets"]'
    )
    assert [r.id for r in (ORDERS, SECRETS, LOGS) if holds(query, r)] == ["r1"]
    either = parse_query('(name ends_with "s" or tag["env"] exists) AND NOT parent = "pg/other"')
    assert {r.id for r in (ORDERS, SECRETS, LOGS) if holds(either, r)} == {"r1", "r2", "r3"}
    assert holds(parse_query('name contains "rd" and name = "orders\\"x" or id = "r1"'), ORDERS)


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ('type = "table" and', 19),
        ('type == "table"', 7),
        ('colour = "red"', 1),
        ('name = "open', 8),
        ("name = 'x'", 8),
        ('(name = "x"', 12),
        ('parent contains "x"', 1),
        ('name in ["a",]', 14),
        ("", 1),
        ('name = "x" name = "y"', 12),
    ],
)
def test_query_errors_point_at_the_column(text: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    assert caught.value.column == column, caught.value.detail
    assert caught.value.detail.startswith(f"column {column}: ")


def test_selector_refuses_unknown_fields_and_bad_queries() -> None:
    with pytest.raises(ValidationError, match="names_"):
        Selector.model_validate({"names_": ["x"]})
    with pytest.raises(ValidationError, match="column 6"):
        Selector.model_validate({"query": "name ~ x"})
    with pytest.raises(ValidationError, match="at least one"):
        Selector.model_validate({"tags": []})


@pytest.mark.parametrize(
    ("select", "reads"),
    [
        ({}, False),
        ({"names": ["orders"], "under": ["pg/app"]}, False),
        ({"query": 'name ends_with "s" and not type = "view"'}, False),
        ({"tags": ["pii=true"]}, True),
        ({"query": 'name = "orders" or tag.env exists'}, True),
        ({"names": ["orders", "secrets"], "exclude": {"tags": ["env=prod"]}}, True),
    ],
)
def test_criteria_say_whether_they_read_tags(select: dict[str, object], reads: bool) -> None:
    criteria = Selector.model_validate(select).criteria()
    assert reads_tags(criteria) is reads
    if not reads:  # then the answer is the same for every resource, whatever its tags
        for ref in (ORDERS, SECRETS, LOGS):
            untagged = ResourceRef(ref.integration, ref.type, ref.name, ref.path, ref.id)
            assert holds(criteria, ref) == holds(criteria, untagged)
