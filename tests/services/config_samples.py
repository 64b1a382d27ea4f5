"""A config file that applies cleanly, and helpers to break it one line at a time."""

from __future__ import annotations

GOOD = """\
identities:
  - email: alice@example.com
    name: Alice Example
    manager: carol@example.com
    groups: [engineering]
    attributes: {department: eng}
  - email: bob@example.com
    name: Bob Example
    manager: carol@example.com
    groups: [engineering, oncall]
  - email: carol@example.com
    name: Carol Example
    groups: [leads]
groups:
  - name: engineering
    description: Product engineers
integrations:
  - name: local-pg
    kind: postgresql
    owner: carol@example.com
    sync_interval: 10m
    config:
      url: {env: SLUICE_DEMO_POSTGRES_URL}
      databases: [sluice_demo]
  - name: groups
    kind: builtin_groups
    config:
      groups: [{name: oncall, description: People on call}]
flows:
  - name: engineering-read-pg
    requesters: [{group: engineering}]
    targets:
      - integration: local-pg
        type: table
        permissions: [read]
    approvers: [{manager: true}]
    max_duration: 8h
  - name: oncall-membership
    requesters: [{group: leads}]
    targets:
      - integration: groups
        type: group
        permissions: [member]
    approvers: [{user: carol@example.com}]
"""


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    """The line on which `needle` (which may span lines) starts."""
    return text.count("\n", 0, text.index(needle)) + 1
