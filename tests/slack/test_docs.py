"""docs/notifications.md, Slack, says what the code does: the manifest's URLs are the routes Sluice
serves, its scopes are the ones the Web API methods Sluice calls need, and the example flow is valid."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import yaml

from sluice.api.routes.slack import router
from sluice.domain.flows import FlowSpec

DOC = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text()
SECTION = DOC[DOC.index("## Slack") :]
# What each Web API method Sluice calls needs (api.slack.com/methods), and `commands` for /sluice.
NEEDED = {"chat:write", "im:write", "users:read", "users:read.email", "commands"}


def _yaml_blocks() -> list[object]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", SECTION, re.S)]


def _blocks_dedented() -> list[object]:
    found = re.findall(r"   ```yaml\n(.*?)   ```", SECTION, re.S)
    return [yaml.safe_load(re.sub(r"(?m)^   ", "", block)) for block in found]


def test_the_manifest_points_slack_at_the_routes_sluice_serves() -> None:
    [manifest] = _blocks_dedented()
    assert isinstance(manifest, dict)
    served = {route.path for route in router.routes}  # type: ignore[attr-defined]
    interactivity = manifest["settings"]["interactivity"]
    [command] = manifest["features"]["slash_commands"]
    urls = [interactivity["request_url"], interactivity["message_menu_options_url"], command["url"]]
    assert (
        {urlparse(u).path for u in urls}
        == served
        == {"/slack/interactivity", "/slack/options", "/slack/commands"}
    )
    assert command["command"] == "/sluice"
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == NEEDED


def test_the_example_flow_is_valid() -> None:
    flows = [b for b in _yaml_blocks() if isinstance(b, dict) and "flows" in b]
    [example] = flows
    spec = FlowSpec.model_validate(example["flows"][0])
    assert spec.notify is not None and spec.notify.destinations == ["slack:#db-access"]


def test_the_settings_named_are_the_ones_read() -> None:
    source = (
        Path(__file__).resolve().parents[2] / "src/sluice/services/notify/slack_settings.py"
    ).read_text()
    named = set(re.findall(r"`(SLUICE_SLACK_[A-Z_]+)`", SECTION))
    assert (
        named
        == set(re.findall(r"SLUICE_SLACK_[A-Z_]+", source))
        == {
            "SLUICE_SLACK_BOT_TOKEN",
            "SLUICE_SLACK_SIGNING_SECRET",
            "SLUICE_SLACK_API_URL",
        }
    )


def test_the_example_of_who_hears_what_is_a_valid_flow() -> None:
    general = DOC[: DOC.index("## Slack")]
    [block] = re.findall(r"```yaml\n(.*?)```", general, re.S)
    [flow] = yaml.safe_load(block)["flows"]
    spec = FlowSpec.model_validate(flow)
    assert spec.notify_spec.destinations == ["slack:#db-access", "teams:db-team"]
    assert spec.notify_spec.remind_after_delta is not None
