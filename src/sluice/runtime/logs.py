"""Structured logs: with `SLUICE_LOG_FORMAT=json` every record is one JSON object per line, carrying
the grant, request and integration it is about when the caller passed them (`extra=`). Only the
fields named here are copied, so a secret cannot ride along in an unexpected attribute; messages
themselves never hold secrets (connector errors are scrubbed before they are raised)."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

CONTEXT_FIELDS = (
    "grant_id",
    "request_id",
    "integration",
    "operation",
    "worker_id",
    "attempts",
    "url",
    "store",
    "audit_head",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def wants_json() -> bool:
    return os.environ.get("SLUICE_LOG_FORMAT", "").lower() == "json"
