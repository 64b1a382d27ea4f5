"""Webhooks in the config file (`webhooks:`): receivers of events, matched by topic.

```yaml
webhooks:
  - name: pager
    url: https://hooks.example.com/sluice
    secret_env: SLUICE_PAGER_WEBHOOK_SECRET   # the variable holding the whsec_ secret, never the secret
    topics: ["grant.revoke_failed", "request.*"]  # glob patterns; all events when left out
```

Checks: the URL is http(s) with no credentials in it; names are unique; `secret_env` is a variable
name; every topic pattern matches some event. The variable itself is read by the worker when it
delivers (the process that applies the config may not be the one that delivers): applying only warns
when it is not set here, and refuses a value that is not a Standard Webhooks secret (`whsec_…`,
`webhook_signing.py`). Apply: webhooks are created, changed and removed by name like flows.
Delivery is `webhook_delivery.py`.
"""

from __future__ import annotations

import os
import re
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sluice.domain.text import Name, Text, Token
from sluice.events.audit import Action
from sluice.services.audit.webhook_signing import BadSecret, signing_key
from sluice.services.config.source import ConfigPath, ConfigProblem
from sluice.store.tables import Webhook
from sluice.store.types import new_id

if TYPE_CHECKING:
    from sluice.services.config.document import ConfigDocument

CONFIG_SOURCE = "config"
TOPICS = tuple(sorted(action.value for action in Action))

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
NAME_WORDS = "lower-case letters, digits, '-' and '_', starting with a letter or digit"
MAX_NAME = 120
_NAME = re.compile(NAME_PATTERN)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def topic_matches(patterns: list[str], topic: str) -> bool:
    return any(fnmatchcase(topic, pattern) for pattern in patterns)


def _topic_pattern(pattern: str) -> str:
    if not any(fnmatchcase(topic, pattern) for topic in TOPICS):
        raise ValueError(f"topic {pattern!r} matches no event; events: {', '.join(TOPICS)}")
    return pattern


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Token
    url: Annotated[str, Text(max_length=2000)]
    secret_env: Name
    topics: list[Annotated[Token, AfterValidator(_topic_pattern)]] = Field(
        default_factory=lambda: ["*"], max_length=100
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value) or len(value) > 120:
            raise ValueError(
                f"webhook name {value!r} must start with a lower-case letter or digit and hold only "
                "lower-case letters, digits, '-' and '_' (at most 120)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url {value!r} must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "a webhook url holds no credentials; receivers check the webhook-signature header "
                "(Standard Webhooks, signed with the secret secret_env names)"
            )
        return value

    @field_validator("secret_env")
    @classmethod
    def _valid_env(cls, value: str) -> str:
        if not _ENV_NAME.match(value) or len(value) > 200:
            raise ValueError(
                "secret_env is the name of an environment variable holding the signing secret "
                "(e.g. SLUICE_WEBHOOK_SECRET), never the secret itself"
            )
        return value

    @field_validator("topics", mode="before")
    @classmethod
    def _some_topics(cls, value: Any) -> Any:
        if value is None:
            return ["*"]
        if value == []:
            raise ValueError("list at least one topic, or leave topics out for every event")
        return value

    def stored(self) -> dict[str, Any]:
        """The columns of its `webhooks` row."""
        return {
            "url": self.url,
            "secret_env": self.secret_env,
            "topics": list(dict.fromkeys(self.topics)),
            "source": CONFIG_SOURCE,
        }


def webhook_problems(doc: ConfigDocument) -> list[ConfigProblem]:
    """A webhook name declared twice; a `secret_env` set here to what is no `whsec_` secret (where it
    is not set, applying only warns: the worker, not this process, may hold it)."""
    problems = []
    first: dict[str, int] = {}
    for index, spec in enumerate(doc.webhooks):
        secret = os.environ.get(spec.secret_env)
        if secret:
            try:
                signing_key(secret, variable=spec.secret_env)
            except BadSecret as exc:
                problems.append(doc.source.problem(("webhooks", index, "secret_env"), exc.detail))
        if spec.name not in first:
            first[spec.name] = index
            continue
        line = doc.source.line_of(("webhooks", first[spec.name], "name"))
        at = f" (first at line {line})" if line else ""
        path: ConfigPath = ("webhooks", index, "name")
        problems.append(
            doc.source.problem(path, f"webhook {spec.name!r} is declared twice{at}; declare it once")
        )
    return problems


def reconcile_webhooks(reconciler: Any) -> None:
    """Make the store's webhooks match the document (`reconciler` is apply_config's walker). A webhook
    whose url or key changes is tried again at once, whatever its past failures."""
    session: Session = reconciler.session
    doc: ConfigDocument = reconciler.doc
    names = [spec.name for spec in doc.webhooks]
    rows = session.scalars(
        select(Webhook).where(or_(Webhook.source == CONFIG_SOURCE, Webhook.name.in_(names)))
    )
    existing = {row.name: row for row in rows}
    for spec in doc.webhooks:
        if not os.environ.get(spec.secret_env):
            reconciler.plan.warnings.append(
                f"webhook {spec.name!r}: environment variable {spec.secret_env} is not set here; the "
                "worker needs it to sign deliveries (they fail until it is set there)"
            )
        wanted = spec.stored()
        row = existing.get(spec.name)
        if row is None:
            if reconciler.write:
                now = reconciler.now
                session.add(
                    Webhook(id=new_id("wh"), name=spec.name, created_at=now, updated_at=now, **wanted)
                )
            reconciler.created("webhook", spec.name)
            continue
        changed = [key for key, value in wanted.items() if getattr(row, key) != value]
        if changed:
            if reconciler.write:
                for key, value in wanted.items():
                    setattr(row, key, value)
                if {"url", "secret_env"} & set(changed):
                    row.failures, row.retry_at = 0, None
                row.updated_at = reconciler.now
            reconciler.changed("webhook", spec.name, changed)
    for name, row in existing.items():
        if name not in names and row.source == CONFIG_SOURCE:
            if reconciler.write:
                session.delete(row)
            reconciler.removed("webhook", name)
