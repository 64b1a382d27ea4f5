"""Standard Webhooks signing (https://www.standardwebhooks.com): secrets of the form `whsec_<base64>`,
and the `webhook-signature` of a delivery, `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
keyed by the secret's decoded bytes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime

from sluice.domain.errors import InvalidInput

PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
NEW_KEY_BYTES = 32
HOW_TO_MAKE = "make one with `sluice webhooks secret`"


class BadSecret(InvalidInput):
    """A webhook's variable holds no usable Standard Webhooks secret."""


def new_secret() -> str:
    """A fresh secret: `whsec_` and the base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_KEY_BYTES)).decode()


def signing_key(secret: str, *, variable: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for; `variable` names where it came from, for the error."""
    secret = secret.strip()
    if not secret.startswith(PREFIX):
        raise BadSecret(
            f"environment variable {variable} must hold a Standard Webhooks secret: whsec_ followed by "
            f"base64 of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes; {HOW_TO_MAKE}"
        )
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise BadSecret(
            f"environment variable {variable}: the part after whsec_ is not valid base64; {HOW_TO_MAKE}"
        ) from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise BadSecret(
            f"environment variable {variable}: the secret holds {len(key)} bytes; a Standard Webhooks "
            f"secret holds {MIN_KEY_BYTES} to {MAX_KEY_BYTES}; {HOW_TO_MAKE}"
        )
    return key


def sign(key: bytes, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value of one delivery attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def unix_seconds(moment: datetime) -> int:
    return int(moment.timestamp())
