"""Config files that cost too much to read, or hold text no store takes: each is refused with every
problem at its FILE:LINE:COL, before anything is applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.services.config.document import MAX_IDENTITIES
from sluice.services.config.file import load_config, parse_config
from sluice.services.config.source import ConfigError
from sluice.services.config.yaml_reader import MAX_CONFIG_CHARS, MAX_DEPTH
from tests.services.config_samples import GOOD, edit, line_of


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "sluice.yaml")
    return str(raised.value).splitlines()


def _billion_laughs() -> str:
    """Nine levels of nine aliases each: a few hundred bytes that stand for 9**9 strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        name, below = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{below}"] * 9) + "]")
    return "\n".join(lines) + "\nidentities: *i\n"


def test_an_alias_bomb_is_refused_at_the_alias_that_goes_past_the_budget() -> None:
    text = _billion_laughs()
    assert len(text) < 500
    (problem,) = _problems(text)
    assert problem.startswith("sluice.yaml:5:8: aliases (*d) repeat more than 10000 values in all")


def test_a_few_aliases_are_fine() -> None:
    text = edit(
        GOOD, "    requesters: [{group: engineering}]", "    requesters: &engineers [{group: engineering}]"
    )
    text = edit(text, "    requesters: [{group: leads}]", "    requesters: *engineers")
    doc = parse_config(text, "sluice.yaml")
    assert doc.flows[1].requesters == doc.flows[0].requesters


def test_an_alias_inside_its_own_value_is_refused() -> None:
    (problem,) = _problems("groups: &g [{name: a}, *g]\n")
    assert problem == "sluice.yaml:1:24: alias *g is inside the value &g names; a value cannot contain itself"


def test_deep_nesting_is_refused_where_it_goes_too_deep() -> None:
    text = "flows: " + "[" * 5000 + "]" * 5000 + "\n"
    (problem,) = _problems(text)
    assert problem == f"sluice.yaml:1:{8 + MAX_DEPTH - 1}: nested more than {MAX_DEPTH} levels deep"


def test_a_nul_byte_in_the_file_is_pointed_at(tmp_path: Path) -> None:
    text = edit(GOOD, "    name: Bob Example", "    name: Bob\x00Example")
    path = tmp_path / "sluice.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    line = line_of(text, "Bob\x00")
    assert str(raised.value) == (
        f"{path}:{line}:14: the character U+0000 is not allowed in a config file (YAML refuses control "
        "characters); remove it"
    )


def test_a_file_past_the_size_bound_is_refused_before_it_is_read() -> None:
    people = "".join(f"  - {{email: u{n}@example.com}}\n" for n in range(300_000))
    text = "identities:\n" + people
    assert len(text) > MAX_CONFIG_CHARS
    (problem,) = _problems(text)
    line = text.count("\n", 0, MAX_CONFIG_CHARS) + 1
    assert problem.startswith(f"sluice.yaml:{line}:")
    assert f"longer than {MAX_CONFIG_CHARS:,} characters" in problem


def test_too_many_identities_are_refused_at_the_section() -> None:
    people = "".join(f"  - {{email: u{n}@example.com}}\n" for n in range(MAX_IDENTITIES + 1))
    (problem,) = _problems("identities:\n" + people)
    assert problem == (
        f"sluice.yaml:1:1: identities: holds {MAX_IDENTITIES + 1} entries; "
        f"at most {MAX_IDENTITIES} are allowed"
    )


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("    name: Bob Example", '    name: "Bob\\0Example"', "identities[1].name", "NUL character"),
        (
            "attributes: {department: eng}",
            'attributes: {department: "\\ud800"}',
            "identities[0].attributes.department",
            "half of a surrogate pair",
        ),
        (
            "  - email: carol@example.com",
            "  - email: " + "c" * 250 + "@example.com",
            "identities[2].email",
            "at most 254 characters",
        ),
        (
            "      groups: [{name: oncall, description: People on call}]",
            '      groups: [{name: oncall, description: "People\\0on call"}]',
            "integrations[1].config.groups[0].description",
            "NUL character",
        ),
        (
            "    max_duration: 8h",
            '    max_duration: "8h"\n    description: "\\udfff"',
            "flows[0].description",
            "surrogate",
        ),
    ],
)
def test_text_no_store_takes_is_refused_where_it_is_written(
    old: str, new: str, path: str, message: str
) -> None:
    text = edit(GOOD, old, new)
    problems = _problems(text)
    found = [p for p in problems if f": {path}: " in p]
    assert found, problems
    assert found[0].startswith(f"sluice.yaml:{line_of(text, new.strip().splitlines()[-1])}:")
    assert message in found[0]


def test_problems_of_shape_and_of_reference_are_reported_together() -> None:
    """An unknown key (found by validation) no longer hides a reference that leads nowhere (found by
    the checks across the document), and what the faulty item declares still counts as declared."""
    text = edit(GOOD, "    name: Alice Example", "    nmae: Alice Example")
    text = edit(text, "    sync_interval: 10m", "    sync_interval: 10m\n    colour: red")
    text = edit(text, "approvers: [{user: carol@example.com}]", "approvers: [{user: dan@example.com}]")
    problems = _problems(text)
    assert problems == [
        f"sluice.yaml:{line_of(text, 'nmae')}:5: identities[0].nmae: unknown key 'nmae'; allowed keys: "
        "active, attributes, email, groups, manager, name",
        f"sluice.yaml:{line_of(text, 'colour')}:5: integrations[0].colour: unknown key 'colour'; allowed "
        "keys: config, disabled, kind, name, owner, sync_interval",
        f"sluice.yaml:{line_of(text, 'user: dan')}:18: flows[1].approvers[0].user: user "
        "'dan@example.com' is not an identity in this file",
    ]


def test_groups_named_in_identities_count_towards_the_bound() -> None:
    people = "".join(
        f"  - email: u{n}@example.com\n    groups: [" + ", ".join(f"g{n}-{g}" for g in range(400)) + "]\n"
        for n in range(26)
    )
    (problem,) = _problems("identities:\n" + people)
    assert problem == (
        "sluice.yaml:1:1: groups: the file names 10400 groups "
        "(under groups:, in identities and in builtin_groups); at most 10000 are allowed"
    )


def test_bytes_that_are_not_utf8_are_pointed_at(tmp_path: Path) -> None:
    path = tmp_path / "sluice.yaml"
    path.write_bytes(GOOD.replace("Bob Example", "Bob Ex\xe9mple").encode("latin-1"))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}:{line_of(GOOD, 'Bob Example')}:17: not UTF-8 text: the byte 0xE9 cannot start or continue "
        "a character"
    )
