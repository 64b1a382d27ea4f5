"""The two evaluators of selectors must agree: SQL over the store (listing) and in memory (checking
one resource). Hypothesis generates inventories and criteria and compares the answers, on SQLite and
on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from sluice.domain.criteria import AllOf, AnyOf, Criteria, Not, Op, condition, holds
from sluice.domain.policy import ResourceRef
from sluice.domain.query_language import parse_query
from sluice.domain.selectors import Selector
from sluice.store.db import make_engine
from sluice.store.selector_sql import compile_criteria
from sluice.store.tables import Base, Integration, Resource
from sluice.store.targeting_tables import ResourceTag

NOW = datetime(2026, 1, 5, tzinfo=UTC)
# Few letters, in both cases and with the characters paths and LIKE care about, so that values collide
# often and case, '%', '_' and '/' escapes are exercised.
TEXT = st.text(alphabet="aAb_%/é0", min_size=0, max_size=4)
NAME = st.text(alphabet="aAb_%é0-", min_size=1, max_size=3)
INTEGRATIONS = ("pg", "pg2")
TYPES = ("database", "schema", "table")
KEYS = ("pii", "env", "o.w:n")


@st.composite
def inventories(draw: st.DrawFn) -> list[ResourceRef]:
    refs: dict[str, ResourceRef] = {}
    for number in range(draw(st.integers(1, 14))):
        integration = draw(st.sampled_from(INTEGRATIONS))
        depth = draw(st.integers(1, 3))
        segments = [draw(NAME) for _ in range(depth)]
        path = "/".join([integration, *segments])
        tags = draw(st.dictionaries(st.sampled_from(KEYS), TEXT, max_size=3))
        refs[path] = ResourceRef(integration, TYPES[depth - 1], segments[-1], path, f"res_{number}", tags)
    return list(refs.values())


def _values(field: str) -> st.SearchStrategy[str]:
    if field == "integration":
        return st.sampled_from((*INTEGRATIONS, "PG", "p"))
    if field == "type":
        return st.sampled_from((*TYPES, "Table"))
    if field == "id":
        return st.sampled_from(("res_0", "res_1", "res_2", "res_"))
    if field in ("path", "parent"):
        return st.builds(
            lambda i, rest: "/".join([i, *rest]),
            st.sampled_from(INTEGRATIONS),
            st.lists(NAME, max_size=2),
        ) | TEXT.filter(bool)
    return TEXT


@st.composite
def conditions(draw: st.DrawFn) -> Criteria:
    field = draw(st.sampled_from(("integration", "type", "name", "path", "id", "parent", "tag")))
    ops = [Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.EXISTS]
    if field != "parent":
        ops += [Op.CONTAINS, Op.STARTS_WITH, Op.ENDS_WITH]
    op = draw(st.sampled_from(ops))
    key = draw(st.sampled_from(KEYS)) if field == "tag" else ""
    values = _values(field)
    if op == Op.EXISTS:
        chosen: list[str] = []
    elif op in (Op.IN, Op.NOT_IN):
        chosen = draw(st.lists(values, min_size=1, max_size=3))
    else:
        chosen = [draw(values)]
    if field == "parent" and op != Op.EXISTS:
        chosen = [v for v in chosen if v.rstrip("/")] or ["pg/a"]
    return condition(field, op, chosen, key)


criteria_trees = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.builds(lambda xs: AllOf(tuple(xs)), st.lists(inner, max_size=3)),
        st.builds(lambda xs: AnyOf(tuple(xs)), st.lists(inner, max_size=3)),
        st.builds(Not, inner),
    ),
    max_leaves=6,
)

selectors = st.builds(
    lambda names, tags, under, exclude: Selector.model_validate(
        {"names": names, "tags": tags, "under": under, "exclude": exclude}
    ),
    st.none() | st.lists(NAME, min_size=1, max_size=2),
    st.none()
    | st.lists(
        st.sampled_from(["pii=a", "pii", "env != b", "env in [a, A]", "o.w:n not_in [a]"]),
        min_size=1,
        max_size=2,
    ),
    st.none() | st.lists(st.sampled_from(["pg/a", "pg/A", "pg", "pg2/a_/b", "pg/%"]), min_size=1, max_size=2),
    st.none()
    | st.fixed_dictionaries({"names": st.lists(NAME, min_size=1, max_size=2)})
    | st.fixed_dictionaries({"tags": st.just(["pii"])}),
)


def _load(session: Session, refs: list[ResourceRef]) -> None:
    session.execute(delete(ResourceTag))
    session.execute(delete(Resource))
    session.execute(delete(Integration))
    ids = {}
    for name in INTEGRATIONS:
        ids[name] = f"int_{name}"
        session.add(Integration(id=ids[name], name=name, kind="postgresql", created_at=NOW, updated_at=NOW))
    session.flush()
    for ref in refs:
        session.add(
            Resource(
                id=ref.id,
                integration_id=ids[ref.integration],
                type=ref.type,
                name=ref.name,
                path=ref.path,
                discovered_at=NOW,
                updated_at=NOW,
            )
        )
    session.flush()
    for ref in refs:
        for key, value in ref.tags.items():
            session.add(
                ResourceTag(resource_id=ref.id, key=key, value=value, source="discovered", updated_at=NOW)
            )
    session.flush()


def _agree(engine: Engine, refs: list[ResourceRef], criteria: Criteria) -> None:
    with Session(engine) as session, session.begin():
        _load(session, refs)
        clause = compile_criteria(criteria, engine.dialect.name)
        in_sql = set(session.scalars(select(Resource.id).where(clause)))
        session.rollback()
    in_memory = {r.id for r in refs if holds(criteria, r)}
    assert in_sql == in_memory, (criteria, refs)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sel') / 'store.db'}"
    else:
        url = request.getfixturevalue("make_pg_database")("sluice_sel")
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(refs=inventories(), criteria=criteria_trees)
def test_criteria_agree(engine: Engine, refs: list[ResourceRef], criteria: Criteria) -> None:
    _agree(engine, refs, criteria)


@_settings
@given(refs=inventories(), selector=selectors)
def test_selectors_agree(engine: Engine, refs: list[ResourceRef], selector: Selector) -> None:
    _agree(engine, refs, selector.criteria())


def test_query_compiles_to_the_same_answer(engine: Engine) -> None:
    refs = [
        ResourceRef("pg", "table", "orders", "pg/app/public/orders", "r1", {"pii": "true"}),
        ResourceRef("pg", "table", "secrets", "pg/app/public/secrets", "r2", {"pii": "true"}),
        ResourceRef("pg", "table", "logs", "pg/app/public/logs", "r3", {}),
        ResourceRef("pg2", "table", "orders", "pg2/app/public/orders", "r4", {"pii": "true"}),
    ]
    query = parse_query(
        'type = "table" and tag.pii = "true" and path starts_with "pg/" and not name in ["secrets"]'
    )
    assert {r.id for r in refs if holds(query, r)} == {"r1"}
    _agree(engine, refs, query)
