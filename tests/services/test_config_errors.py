"""Bad config files: every problem is found before anything is applied, and pointed at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.domain.errors import InvalidInput
from sluice.services.config.document import ConfigDocument
from sluice.services.config.file import ConfigError, load_config, parse_config
from tests.services.config_samples import GOOD, edit, line_of

BAD = [
    pytest.param(
        edit(GOOD, "    max_duration: 8h", "    max_duration: 8h\n    break_glass: {max_duration: soon}"),
        "break_glass: {max_duration: soon}",
        "flows[0].break_glass.max_duration",
        "soon",
        id="break-glass-duration",
    ),
    pytest.param(
        edit(GOOD, "    max_duration: 8h", "    max_duration: 8h\n    break_glass: {one_at_a_tme: true}"),
        "break_glass: {one_at_a_tme",
        "flows[0].break_glass.one_at_a_tme",
        "unknown key 'one_at_a_tme'; allowed keys: allowed, max_duration, one_at_a_time",
        id="break-glass-unknown-key",
    ),
    pytest.param(
        edit(
            GOOD, "      databases: [sluice_demo]\n", "      databases: [sluice_demo]\n      sslmode: maybe\n"
        ),
        "sslmode: maybe",
        "integrations[0].config.sslmode",
        "verify-full",
        id="postgres-sslmode",
    ),
    pytest.param(
        edit(GOOD, "    name: Alice Example", "    nmae: Alice Example"),
        "nmae: Alice",
        "identities[0].nmae",
        "unknown key 'nmae'; allowed keys: active, attributes, email, groups, manager, name",
        id="unknown-identity-key",
    ),
    pytest.param(
        edit(GOOD, "    max_duration: 8h", "    max_duraton: 8h"),
        "max_duraton",
        "flows[0].max_duraton",
        "unknown key 'max_duraton'; allowed keys: active, ",
        id="unknown-flow-key",
    ),
    pytest.param(
        edit(GOOD, "groups: [engineering]", "groups: engineering"),
        "groups: engineering",
        "identities[0].groups",
        "expected a list, got the text 'engineering'",
        id="wrong-type",
    ),
    pytest.param(
        edit(GOOD, "  - email: carol@example.com", "  - email: Alice@Example.com"),
        "Alice@Example.com",
        "identities[2].email",
        "identity 'alice@example.com' is declared twice (first at line 2); declare it once",
        id="duplicate-email",
    ),
    pytest.param(
        edit(GOOD, "  - name: groups\n", "  - name: local-pg\n"),
        "  - name: local-pg\n    kind: builtin",
        "integrations[1].name",
        "integration 'local-pg' is declared twice (first at line 18); declare it once",
        id="duplicate-integration",
    ),
    pytest.param(
        edit(
            GOOD,
            "    manager: carol@example.com\n    groups: [engineering]\n",
            "    manager: dan@example.com\n",
        ),
        "dan@example.com",
        "identities[0].manager",
        "manager 'dan@example.com' is not an identity in this file",
        id="manager-not-an-identity",
    ),
    pytest.param(
        edit(GOOD, "requesters: [{group: leads}]", "requesters: [{user: eve@example.com}]"),
        "eve@example.com",
        "flows[1].requesters[0].user",
        "user 'eve@example.com' is not an identity in this file",
        id="requester-not-an-identity",
    ),
    pytest.param(
        edit(GOOD, "approvers: [{user: carol@example.com}]", "approvers: [{group: dbas}]"),
        "group: dbas",
        "flows[1].approvers[0].group",
        "group 'dbas' is not known in this file",
        id="approver-group-unknown",
    ),
    pytest.param(
        edit(GOOD, "      - integration: local-pg", "      - integration: prod-pg"),
        "integration: prod-pg",
        "flows[0].targets[0].integration",
        "integration 'prod-pg' is not declared under integrations (declared: local-pg, groups)",
        id="target-integration-undeclared",
    ),
    pytest.param(
        edit(GOOD, "        type: group", "        type: table"),
        "type: table\n        permissions: [member]",
        "flows[1].targets[0].type",
        "builtin_groups integrations have no resource type 'table'; resource types: group",
        id="target-type-unknown",
    ),
    pytest.param(
        edit(GOOD, "        permissions: [read]", "        permissions: [read, drop]"),
        "permissions: [read, drop]",
        "flows[0].targets[0].permissions[1]",
        "permission 'drop' cannot be granted on table resources of postgresql; permissions: read, write",
        id="permission-invalid",
    ),
    pytest.param(
        edit(GOOD, "    owner: carol@example.com", "    owner: mallory@example.com"),
        "mallory@example.com",
        "integrations[0].owner",
        "owner 'mallory@example.com' is not an identity in this file",
        id="owner-unknown",
    ),
    pytest.param(
        edit(GOOD, "      databases: [sluice_demo]", "      databases: [sluice_demo]\n      port: high"),
        "port: high",
        "integrations[0].config.port",
        "expected a whole number, got the text 'high'",
        id="connector-config-invalid",
    ),
    pytest.param(
        edit(GOOD, "[{name: oncall, description: People on call}]", "[{nam: oncall}]"),
        "nam: oncall",
        "integrations[1].config.groups[0].nam",
        "unknown key 'nam'; allowed keys: description, name",
        id="connector-config-unknown-key",
    ),
    pytest.param(
        edit(GOOD, "      url: {env: SLUICE_DEMO_POSTGRES_URL}", "      password: hunter2"),
        "password: hunter2",
        "integrations[0].config.password",
        "admin secrets are never written in the config: use password: {env: NAME} or {file: PATH}",
        id="plain-password",
    ),
    pytest.param(
        edit(GOOD, "      url: {env: SLUICE_DEMO_POSTGRES_URL}", "      url: postgresql://admin:s3cret@db/x"),
        "url: postgresql",
        "integrations[0].config.url",
        "this URL holds a password, and admin secrets are never written in the config: "
        "use url: {env: NAME} or {file: PATH}",
        id="password-in-url",
    ),
    pytest.param(
        edit(GOOD, "    kind: postgresql", "    kind: oracle"),
        "kind: oracle",
        "integrations[0].kind",
        "unknown integration kind 'oracle'; known kinds: aws, builtin_groups, http, ldap_groups, mysql, "
        "postgresql, redis, ssh",
        id="unknown-kind",
    ),
    pytest.param(
        edit(GOOD, "  - name: local-pg\n", "  - name: Local PG\n"),
        "Local PG",
        "integrations[0].name",
        "integration name 'Local PG' must start with a lower-case letter",
        id="integration-name",
    ),
    pytest.param(
        edit(GOOD, "    sync_interval: 10m", "    sync_interval: often"),
        "sync_interval: often",
        "integrations[0].sync_interval",
        "duration 'often' is not understood",
        id="sync-interval",
    ),
    pytest.param(
        edit(
            GOOD,
            "    requesters: [{group: engineering}]",
            "    requesters: [{group: engineering, user: a@b.c}]",
        ),
        "requesters: [{group: engineering, user",
        "flows[0].requesters[0]",
        "name exactly one of 'user', 'group' or 'manager: true'",
        id="subject-shape",
    ),
    pytest.param(
        edit(GOOD, "    name: Bob Example\n", "    name: Bob Example\n    name: Robert\n"),
        "name: Robert",
        "identities[1].name",
        "key 'name' is written twice in this mapping (first at line 8); keep one",
        id="duplicate-yaml-key",
    ),
]


@pytest.mark.parametrize(("text", "needle", "path", "message"), BAD)
def test_bad_input_is_reported_at_its_line(text: str, needle: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "sluice.yaml")
    problems = [p for p in raised.value.problems if p.path == path]
    assert problems, str(raised.value)
    assert problems[0].line == line_of(text, needle)
    assert message in problems[0].message, problems[0].message
    assert f"sluice.yaml:{problems[0].line}:{problems[0].col}: {path}: " in str(raised.value)
    assert isinstance(raised.value, InvalidInput)


def test_yaml_syntax_errors_say_where() -> None:
    text = edit(GOOD, "    name: Bob Example", "    name: Bob Example\n   oops: [")
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "sluice.yaml")
    (problem,) = raised.value.problems
    assert problem.line == line_of(text, "oops: [")
    assert problem.message.startswith("YAML syntax error: ")
    assert str(problem).startswith(f"sluice.yaml:{problem.line}:")


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = edit(GOOD, "    owner: carol@example.com", "    owner: mallory@example.com")
    text = edit(text, "        permissions: [read]", "        permissions: [drop]")
    text = edit(
        text, "    manager: carol@example.com\n    groups: [engineering]\n", "    manager: dan@example.com\n"
    )
    path = tmp_path / "sluice.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    lines = str(raised.value).splitlines()
    assert [p.path for p in raised.value.problems] == [
        "identities[0].manager",
        "integrations[0].owner",
        "flows[0].targets[0].permissions[0]",
    ]
    assert lines[0].startswith(f"{path}:{line_of(text, 'dan@example.com')}:5: identities[0].manager: ")
    assert len(lines) == 3


def test_a_file_that_is_not_a_mapping_or_not_there() -> None:
    with pytest.raises(ConfigError, match=r"sluice.yaml:1:1: the file must be a mapping"):
        parse_config("- just\n- a list\n", "sluice.yaml")
    allowed = r"unknown key 'integration'; allowed keys: (bundles, )?(directory_sources, )?flows, groups"
    with pytest.raises(ConfigError, match=allowed):
        parse_config("integration: []\n", "sluice.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(Path("/nonexistent/sluice.yaml"))
    assert parse_config("", "empty.yaml").model_dump() == ConfigDocument().model_dump()
