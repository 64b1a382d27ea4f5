"""What Slack sends to Sluice, under /slack (outside /api/v1 and its tokens: Slack signs instead):
button clicks and modal submissions (`/slack/interactivity`), the `/sluice` slash command
(`/slack/commands`) and the resource search of the request modal (`/slack/options`).

Every request is checked first: Slack's signature over the raw body with the signing secret, a
timestamp within five minutes, and a signature never seen before (kept in the store, so a replay is
refused by every server). The Slack user is then matched to an active person by email; what they do
goes through the same use cases, and the same authorisation, as the API. Slack is called outside any
transaction."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from starlette.concurrency import run_in_threadpool

from sluice.api.auth import RuntimeDep
from sluice.api.params import changing
from sluice.domain.errors import InvalidInput, NotAuthenticated, NotFound, SluiceError
from sluice.domain.text import Text
from sluice.runtime.wiring import Runtime
from sluice.services.notify import slack_blocks as blocks
from sluice.services.notify import slack_inbound as inbound
from sluice.services.notify import slack_views as views
from sluice.services.notify.slack_settings import SlackSettings
from sluice.store.db import transaction

log = logging.getLogger("sluice.slack")
router = APIRouter(prefix="/slack", include_in_schema=False)

SlackId = Annotated[str, Text(max_length=255)]
MAX_BODY = 256 * 1024  # a view submission carries every input's state


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _User(_Part):
    id: SlackId


class _Channel(_Part):
    id: SlackId


class _Action(_Part):
    action_id: SlackId
    value: Annotated[str, Text(max_length=blocks.MAX_BUTTON_VALUE)] = ""


class _View(_Part):
    callback_id: SlackId = ""
    private_metadata: Annotated[str, Text(max_length=blocks.MAX_PRIVATE_METADATA)] = ""
    state: dict[str, Any] = Field(default_factory=dict)


class Interaction(_Part):
    type: SlackId
    user: _User
    trigger_id: SlackId | None = None
    channel: _Channel | None = None
    actions: list[_Action] = Field(default_factory=list, max_length=25)
    view: _View | None = None
    action_id: SlackId = ""  # block_suggestion: which select asks
    value: Annotated[str, Text(max_length=2000)] = ""  # block_suggestion: what was typed


class Command(_Part):
    command: SlackId
    user_id: SlackId
    trigger_id: SlackId
    text: Annotated[str, Text(max_length=4000)] = ""


async def _checked_body(request: Request, runtime: Runtime) -> tuple[bytes, SlackSettings]:
    settings = runtime.settings.slack
    if settings is None or not settings.signing_secret:
        raise NotFound("the Slack app is not configured on this server")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidInput(f"a request from Slack holds at most {MAX_BODY} bytes")
    signature = inbound.check_signature(
        settings.signing_secret,
        body,
        request.headers.get("x-slack-request-timestamp"),
        request.headers.get("x-slack-signature"),
        runtime.clock(),
    )
    await run_in_threadpool(_remember, runtime, signature)
    return body, settings


def _remember(runtime: Runtime, signature: str) -> None:
    """Committed before anything is done, so a replay is refused even when the first one failed."""
    with transaction(runtime.factory) as session:
        if not inbound.first_sighting(session, signature, runtime.clock()):
            raise NotAuthenticated("this request from Slack was received before; a replay is refused")


def _form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise InvalidInput("a request from Slack must be UTF-8 form data") from exc
    return {key: values[0] for key, values in fields.items()}


def _interaction(body: bytes) -> Interaction:
    try:
        return Interaction.model_validate(json.loads(_form(body).get("payload", "")))
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(f"the Slack payload is not one Sluice reads: {str(exc)[:300]}") from exc


def _who(client: WebClient, user_id: str) -> str | None:
    found: Any = client.users_info(user=user_id)
    return inbound.email_of(found["user"])


def _tell(client: WebClient, interaction: Interaction, text: str) -> None:
    if interaction.channel is None:
        return
    try:
        client.chat_postEphemeral(channel=interaction.channel.id, user=interaction.user.id, text=text)
    except (SlackApiError, SlackClientError, OSError) as exc:
        log.warning("could not answer %s in Slack: %s", interaction.user.id, exc)


@router.post("/interactivity")
async def interactivity(request: Request, runtime: RuntimeDep) -> Response:
    body, settings = await _checked_body(request, runtime)
    interaction = _interaction(body)
    answer = await run_in_threadpool(_interact, runtime, settings.client(), interaction)
    return JSONResponse(answer) if answer is not None else Response(status_code=200)


@router.post("/options")
async def options(request: Request, runtime: RuntimeDep) -> Response:
    body, settings = await _checked_body(request, runtime)
    interaction = _interaction(body)
    found = await run_in_threadpool(_options, runtime, settings.client(), interaction)
    return JSONResponse({"options": found})


@router.post("/commands")
async def commands(request: Request, runtime: RuntimeDep) -> Response:
    body, settings = await _checked_body(request, runtime)
    try:
        command = Command.model_validate(_form(body))
    except ValidationError as exc:
        raise InvalidInput(f"the slash command is not one Sluice reads: {str(exc)[:300]}") from exc
    text = await run_in_threadpool(_command, runtime, settings.client(), command)
    if text is None:
        return Response(status_code=200)
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _options(runtime: Runtime, client: WebClient, interaction: Interaction) -> list[dict[str, Any]]:
    try:
        email = _who(client, interaction.user.id)
        with transaction(runtime.factory) as session:
            actor = inbound.person(session, email)
            return inbound.resource_options(
                session, actor=actor, query=interaction.value, now=runtime.clock()
            )
    except (inbound.SlackRefusal, SlackApiError, SlackClientError, OSError) as exc:
        log.info("no options for %s: %s", interaction.user.id, exc)
        return []


def _command(runtime: Runtime, client: WebClient, command: Command) -> str | None:
    try:
        email = _who(client, command.user_id)
        with transaction(runtime.factory) as session:
            inbound.person(session, email)
        client.views_open(trigger_id=command.trigger_id, view=views.request_modal())
    except inbound.SlackRefusal as exc:
        return str(exc)
    except (SlackApiError, SlackClientError, OSError) as exc:
        log.warning("Slack did not open the request form: %s", exc)
        return "Sorry, Slack did not open the request form; try again in a moment."
    return None


def _interact(runtime: Runtime, client: WebClient, interaction: Interaction) -> dict[str, Any] | None:
    try:
        email = _who(client, interaction.user.id)
        with transaction(runtime.factory) as session:
            inbound.person(session, email)
        if interaction.type == "view_submission" and interaction.view is not None:
            return _submitted(runtime, interaction.view, email)
        if interaction.type == "block_actions" and interaction.actions:
            _clicked(runtime, client, interaction, email)
    except inbound.SlackRefusal as exc:
        if interaction.type == "view_submission":
            return {"response_action": "errors", "errors": {"reason": str(exc)[:2000]}}
        _tell(client, interaction, str(exc))
    except (SlackApiError, SlackClientError, OSError) as exc:
        log.warning("Slack refused a call while answering %s: %s", interaction.type, exc)
    return None


def _clicked(runtime: Runtime, client: WebClient, interaction: Interaction, email: str | None) -> None:
    action = interaction.actions[0]
    if action.action_id == blocks.REJECT:
        if interaction.trigger_id:
            client.views_open(trigger_id=interaction.trigger_id, view=views.reject_modal(action.value))
        return
    if action.action_id == blocks.REVIEW:
        _review_form(runtime, client, interaction, email)
        return
    try:
        with changing(runtime) as session:
            actor = inbound.person(session, email)
            now = runtime.clock()
            if action.action_id == blocks.APPROVE:
                request = inbound.decide(
                    session, actor=actor, request_id=action.value, approve=True, reason="", now=now
                )
                said = f"You approved request {request.id}; it is now {request.status}."
            elif action.action_id == blocks.EXTEND:
                grant = inbound.extend(session, actor=actor, grant_id=action.value, now=now)
                said = f"Extended: your access now ends at {blocks.when(grant.ends_at)}."
            else:
                return
    except SluiceError as exc:
        said = f"Sluice could not do that: {exc.detail}"
    _tell(client, interaction, said)


def _review_form(runtime: Runtime, client: WebClient, interaction: Interaction, email: str | None) -> None:
    """Open the review form, for someone who may review the request now; anyone else is told why not
    (the form's submission is checked again: the request may be reviewed meanwhile)."""
    request_id = interaction.actions[0].value
    try:
        with transaction(runtime.factory) as session:
            actor = inbound.person(session, email)
            summary = inbound.to_review(session, actor=actor, request_id=request_id, now=runtime.clock())
    except SluiceError as exc:
        _tell(client, interaction, f"Sluice could not do that: {exc.detail}")
        return
    if interaction.trigger_id:
        client.views_open(trigger_id=interaction.trigger_id, view=views.review_modal(request_id, summary))


# The input under which a modal's refusal is shown.
_REFUSAL_BLOCK = {blocks.REJECT_VIEW: "reason", blocks.REVIEW_VIEW: "reason", blocks.REQUEST_VIEW: "resource"}


def _submitted(runtime: Runtime, view: _View, email: str | None) -> dict[str, Any] | None:
    values = view.state.get("values") or {}
    try:
        with changing(runtime) as session:
            actor = inbound.person(session, email)
            now = runtime.clock()
            if view.callback_id == blocks.REJECT_VIEW:
                reason = inbound.text_value(values, "reason")
                inbound.decide(
                    session,
                    actor=actor,
                    request_id=view.private_metadata,
                    approve=False,
                    reason=reason,
                    now=now,
                )
            elif view.callback_id == blocks.REVIEW_VIEW:
                inbound.review(session, actor=actor, request_id=view.private_metadata, values=values, now=now)
            elif view.callback_id == blocks.REQUEST_VIEW:
                inbound.submit_from_modal(session, hub=runtime.hub, actor=actor, values=values, now=now)
    except inbound.ModalProblem as exc:
        return {"response_action": "errors", "errors": {exc.block: exc.detail[:2000]}}
    except SluiceError as exc:
        block = _REFUSAL_BLOCK.get(view.callback_id, "reason")
        return {"response_action": "errors", "errors": {block: exc.detail[:2000]}}
    return None
