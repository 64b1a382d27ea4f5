"""`sluice webhooks`: the configured webhooks with their health (`list`), one webhook's deliveries
(`deliveries NAME`), and `test NAME`, which has a worker send that webhook a signed `webhook.test`
event through the normal delivery path and reports what the receiver answered (admin token); and
`secret`, a fresh `whsec_` signing secret made here, for a webhook's `secret_env`."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import typer

from sluice.cli.client import ApiClient
from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import err_console, print_json, print_line, print_table

webhooks_app = typer.Typer(help="Webhooks: their health, their deliveries, and a signed test event (admin).")

POLL_SECONDS = 0.5

WEBHOOK_COLUMNS = [
    ("name", "Name"),
    ("url", "URL"),
    ("topics", "Topics"),
    ("pending", "Pending"),
    ("delivered", "Delivered"),
    ("given_up", "Given up"),
    ("failures", "Failures in a row"),
    ("resting_until", "Resting until"),
    ("last_error", "Last error"),
]
DELIVERY_COLUMNS = [
    ("id", "Delivery"),
    ("type", "Event type"),
    ("event_id", "Event"),
    ("state", "State"),
    ("attempts", "Attempts"),
    ("last_status", "Last status"),
    ("last_error", "Last error"),
    ("next_attempt_at", "Next attempt"),
    ("delivered_at", "Delivered"),
]

NameArg = Annotated[str, typer.Argument(help="The webhook's name (as in the config file).")]


@webhooks_app.command("secret")
def secret() -> None:
    """Print a fresh Standard Webhooks secret (whsec_…) to set in a webhook's secret_env variable, on
    the workers and at the receiver. Made here from the system's randomness; nothing is stored."""
    from sluice.services.audit.webhook_signing import new_secret

    print_line(new_secret())


def _path(name: str) -> str:
    return f"/webhooks/{quote(name, safe='')}"


def _webhook_row(hook: dict[str, Any]) -> dict[str, Any]:
    return {**hook, **hook.get("deliveries", {})}


@webhooks_app.command("list")
def list_webhooks(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 1000,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Each webhook: where it sends, what, how its deliveries stand, and whether it is resting after
    failures. Secrets are never shown, only the variable that holds each (in --json)."""
    with ApiClient.from_options(url, token) as api:
        items, total = api.get_pages("/webhooks", limit=limit)
    if as_json:
        print_json({"items": items, "total": total})
        return
    print_table(
        [_webhook_row(h) for h in items],
        WEBHOOK_COLUMNS,
        empty="no webhooks; declare some under `webhooks:` and run `sluice apply`",
    )
    if total > len(items):
        err_console.print(f"[dim]showing {len(items)} of {total}; raise --limit[/dim]")


@webhooks_app.command("deliveries")
def list_deliveries(
    name: NameArg,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only deliveries in this state: pending, delivered or given_up."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """One webhook's deliveries, newest first: attempts, the receiver's last status, what comes next."""
    with ApiClient.from_options(url, token) as api:
        items, total = api.get_pages(f"{_path(name)}/deliveries", limit=limit, state=state)
    if as_json:
        print_json({"items": items, "total": total})
        return
    print_table(items, DELIVERY_COLUMNS, empty=f"no deliveries of {name} match")
    if total > len(items):
        err_console.print(f"[dim]showing {len(items)} of {total}; narrow with --state or --limit[/dim]")


@webhooks_app.command("test")
def test(
    name: NameArg,
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="Seconds to wait for a worker to send it (0: do not wait)."),
    ] = 30.0,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Send NAME a `webhook.test` event, signed per Standard Webhooks with its secret, through the
    workers' normal delivery path (the worker holds the secret), and say what the receiver answered.
    Fails when the receiver does not answer 2xx or no worker sends it within --wait."""
    with ApiClient.from_options(url, token) as api:
        delivery = api.post(f"{_path(name)}/test") or {}
        one = f"{_path(name)}/deliveries/{quote(str(delivery.get('id', '')), safe='')}"
        deadline = time.monotonic() + wait
        while _waiting(delivery) and time.monotonic() < deadline:
            _pause()
            delivery = api.get(one) or {}
    if as_json:
        print_json(delivery)
    sent = f"{name}: webhook.test {delivery.get('id')}"
    if delivery.get("state") == "delivered":
        if not as_json:
            print_line(f"{sent} delivered; the receiver answered HTTP {delivery.get('last_status')}")
        return
    if _waiting(delivery):
        if wait == 0:
            if not as_json:
                print_line(f"{sent} queued; `sluice webhooks deliveries {name}` shows when it is sent")
            return
        raise CliError(
            f"{sent} was not sent within {wait:g}s",
            notes=["is a worker running (`sluice worker` or `sluice up`)? the event stays queued"],
        )
    raise CliError(f"{sent} failed: {_why(delivery)}", notes=_next(delivery))


def _pause() -> None:
    time.sleep(POLL_SECONDS)


def _waiting(delivery: dict[str, Any]) -> bool:
    """Still pending and not yet tried (a failed first attempt is an answer)."""
    return delivery.get("state") == "pending" and not delivery.get("attempts")


def _why(delivery: dict[str, Any]) -> str:
    status = delivery.get("last_status")
    if status is not None:
        return f"the receiver answered HTTP {status}"
    return str(delivery.get("last_error") or "no answer")


def _next(delivery: dict[str, Any]) -> list[str]:
    if delivery.get("state") == "pending" and delivery.get("next_attempt_at"):
        return [f"the worker tries again at {delivery['next_attempt_at']}"]
    return []
