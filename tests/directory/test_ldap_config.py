"""Mistakes in `directory_sources:` are reported at their line and column, all at once, before
anything is applied; and a condition on an attribute an LDAP source maps is accepted before the first
sync, then decides who may request."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from sluice.services.config.apply import plan_config
from sluice.services.config.export import export_config
from sluice.services.config.file import parse_config
from sluice.services.config.source import ConfigError
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import transaction
from tests.directory.ldap_fixtures import Directory, Sluice
from tests.directory.test_ldap_flow import ask

BAD = """\
directory_sources:
  - name: corp
    ldap:
      url: ldap://ldap.example.com
      bind_dn: cn=sluice,dc=example,dc=com
      bind_password: hunter2
      people_base_dn: ou=people,dc=example,dc=com
  - name: Bad Name
    ldap:
      url: http://ldap.example.com
      bind_dn: cn=sluice,dc=example,dc=com
      bind_password: {env: LDAP_PASSWORD}
      people_base_dn: not a dn
      people_filter: (objectClass=person
      attributes: {manager: title}
      colour: blue
  - name: corp
    sync_interval: 10s
    ldap:
      url: ldap://ldap.example.com
      bind_dn: cn=sluice,dc=example,dc=com
      bind_password: {file: /run/secrets/ldap}
      people_base_dn: ou=people,dc=example,dc=com
"""


def test_every_mistake_is_reported_at_its_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BAD, "sluice.yaml")
    text = str(caught.value)
    assert "hunter2" not in text
    expected = [
        "sluice.yaml:6:7: directory_sources[0].ldap.bind_password: ",
        "never the password itself",
        "sluice.yaml:8:5: directory_sources[1].name: ",
        "sluice.yaml:10:7: directory_sources[1].ldap.url: ",
        "sluice.yaml:16:7: directory_sources[1].ldap.colour: unknown key 'colour'",
        "sluice.yaml:15:7: directory_sources[1].ldap.attributes: ",
        "sluice.yaml:18:5: directory_sources[2].sync_interval: ",
    ]
    for piece in expected:
        assert piece in text, f"{piece!r} not in:\n{text}"


def test_a_wrong_dn_or_filter_is_named() -> None:
    text = (
        BAD.replace("url: http://", "url: ldap://")
        .replace("colour: blue", "")
        .replace("{manager: title}", "{}")
    )
    text = text.replace("name: Bad Name", "name: other").replace("hunter2", "{env: X}").replace("10s", "10m")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "sluice.yaml")
    message = str(caught.value)
    assert "people_base_dn 'not a dn' is not a DN" in message
    assert (
        "sluice.yaml:17:" in message
        and "directory source 'corp' is declared twice (first at line 2)" in message
    )


def test_an_ldap_attribute_decides_who_may_request(directory: Directory, sluice: Sluice) -> None:
    directory.add_person("pia", departmentNumber="payments")
    directory.add_person("sol", departmentNumber="sales")
    source = directory.source_config(attributes={"department": "departmentNumber"})
    flow = {
        "name": "payments-self-serve",
        "requesters": [{"attribute": "department", "is": "payments"}],
        "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
        "max_duration": "1h",
    }
    integration = {"name": "groups", "kind": "builtin_groups", "config": {"groups": [{"name": "oncall"}]}}
    # accepted before any sync: the source says it maps `department`
    sluice.apply({"directory_sources": [source], "integrations": [integration], "flows": [flow]})
    sync_integration(sluice.runtime.factory, sluice.runtime.hub, "groups", clock=sluice.clock)
    sluice.sync()
    assert ask(sluice, "pia@example.com")["status"] in ("approved", "active", "granting")
    refused = sluice.post(
        "sol@example.com",
        "/requests",
        {"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "x"},
    )
    assert refused.status_code == 403, refused.text
    directory.modify(directory.person_dn("sol"), {"departmentNumber": ["payments"]})
    sluice.sync()
    assert ask(sluice, "sol@example.com")["status"] in ("approved", "active", "granting")


def test_the_examples_in_the_identity_page_parse() -> None:
    page = (Path(__file__).parents[2] / "docs" / "identity.md").read_text()
    blocks = [b.split("```", 1)[0] for b in page.split("```yaml\n")[1:]]
    examples = [textwrap.dedent(b) for b in blocks if "directory_sources:" in b]
    assert len(examples) >= 3
    for example in examples:
        doc = parse_config(example, "identity.md")
        assert doc.directory_sources


def test_start_tls_is_asked_for_and_a_server_without_it_is_not_read(
    directory: Directory, sluice: Sluice
) -> None:
    directory.add_person("pat")
    sluice.apply({"directory_sources": [directory.source_config(start_tls=True)]})
    outcome = sluice.sync()
    assert not outcome.ok and outcome.error is not None and "directory source corp" in outcome.error, outcome
    with pytest.raises(ConfigError, match="start_tls is for ldap:// URLs"):
        parse_config(
            yaml.safe_dump(
                {"directory_sources": [directory.source_config(url="ldaps://127.0.0.1:1", start_tls=True)]}
            ),
            "sluice.yaml",
        )


def test_applying_warns_when_the_password_cannot_be_read_here(directory: Directory, sluice: Sluice) -> None:
    source = directory.source_config(bind_password={"env": "SLUICE_TEST_UNSET_LDAP_PASSWORD"})
    with transaction(sluice.runtime.factory) as session:
        doc = parse_config(yaml.safe_dump({"directory_sources": [source]}), "sluice.yaml", session=session)
        plan = plan_config(session, doc)
    assert plan.warnings == [
        "directory source corp bind_password: environment variable SLUICE_TEST_UNSET_LDAP_PASSWORD "
        "is not set here; the worker and server need it to sync"
    ]


def test_an_exported_config_keeps_the_source_and_plans_clean(directory: Directory, sluice: Sluice) -> None:
    """Applying an exported file must not remove the source (which would deactivate its people)."""
    directory.add_person("pat")
    source = directory.source_config(attributes={"department": "departmentNumber"}, start_tls=False)
    sluice.apply({"directory_sources": [source]})
    sluice.sync()
    with transaction(sluice.runtime.factory) as session:
        exported = export_config(session)
        assert "pat@example.com" not in yaml.safe_dump(exported)  # LDAP people are the directory's
        doc = parse_config(yaml.safe_dump(exported), "exported.yaml", session=session)
        assert plan_config(session, doc).is_empty
    assert exported["directory_sources"][0]["ldap"]["attributes"] == {"department": "departmentNumber"}
