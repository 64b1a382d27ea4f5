"""Standard Webhooks signing, checked against the spec's own library (`standardwebhooks`)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from sluice.services.audit.webhook_signing import BadSecret, new_secret, sign, signing_key


def test_a_new_secret_is_whsec_and_32_random_bytes_the_library_accepts() -> None:
    made = new_secret()
    assert made.startswith("whsec_") and made != new_secret()
    key = signing_key(made, variable="X")
    assert len(key) == 32
    now = int(time.time())
    body = b'{"type":"webhook.test","timestamp":"2026-01-05T09:31:00+00:00","data":{}}'
    headers = {
        "webhook-id": "whd_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(key, message_id="whd_1", timestamp=now, body=body),
    }
    assert StandardWebhook(made).verify(body, headers)["type"] == "webhook.test"


def test_the_signature_matches_the_librarys_own_and_covers_id_timestamp_and_body() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    key = signing_key(secret, variable="X")
    moment = datetime(2026, 1, 5, 9, 31, tzinfo=UTC)
    stamp = int(moment.timestamp())
    ours = sign(key, message_id="whd_abc", timestamp=stamp, body=b'{"a":1}')
    assert ours == StandardWebhook(secret).sign("whd_abc", moment, '{"a":1}')
    assert ours != sign(key, message_id="whd_abd", timestamp=stamp, body=b'{"a":1}')
    assert ours != sign(key, message_id="whd_abc", timestamp=stamp + 1, body=b'{"a":1}')
    assert ours != sign(key, message_id="whd_abc", timestamp=stamp, body=b'{"a":2}')


def test_a_tampered_body_fails_the_librarys_check() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = {
        "webhook-id": "whd_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(
            signing_key(secret, variable="X"), message_id="whd_1", timestamp=now, body=b"{}"
        ),
    }
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(secret).verify(b'{"x":1}', headers)


@pytest.mark.parametrize("value", ["plain", "whsec_%%%", "whsec_" + base64.b64encode(b"x" * 65).decode()])
def test_what_is_not_a_usable_secret_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(BadSecret) as refused:
        signing_key(value, variable="HOOK_VAR")
    assert "HOOK_VAR" in refused.value.detail and value not in refused.value.detail
