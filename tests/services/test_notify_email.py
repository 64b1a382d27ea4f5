"""The email channel against a real SMTP server on loopback (aiosmtpd): STARTTLS (required by the
server), implicit TLS and plain; AUTH; text and HTML parts with the portal link; hostile names and
reasons escaped in HTML; refusals and failures mapped to retryable or not; and the whole path from a
request to an approver's mailbox through the notification duty."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from sluice.services.notify.channels import ChannelError, Notice, Subject
from sluice.services.notify.configured import channels_from_env
from sluice.services.notify.delivery import NotificationDuty
from sluice.services.notify.email import EmailChannel, SmtpSettings, compose
from sluice.services.notify.sending import NotifyPolicy
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.store.db import transaction
from tests.services.conftest import Store
from tests.smtp_server import running_mail_server

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


def notice(**changes: object) -> Notice:
    subject = Subject(
        request_id="req_1",
        grant_id=None,
        requester_name="Alice <img src=x onerror=alert(1)>",
        requester_email="alice@example.com",
        resources=["pg/prod/<b>payments</b>"],
        resource_count=1,
        permission="read",
        duration="2h",
        reason=HOSTILE,
        flow="db-read",
        state="pending",
        decided_by=None,
        decision_reason=None,
        ends_at=None,
        break_glass=False,
        portal_url="https://sluice.example.com/requests/req_1",
    )
    made = Notice(
        notification_id="ntf_1",
        topic="request.created",
        event_id=7,
        channel="email",
        recipient_email="carol@example.com",
        recipient_identity_id="id_2",
        destination=None,
        role="approver",
        subject=subject,
        earlier=[],
    )
    return Notice(**{**made.__dict__, **changes})  # type: ignore[arg-type]


def settings(port: int, ca: Path, **changes: object) -> SmtpSettings:
    base = SmtpSettings(
        "127.0.0.1", port, "Sluice <sluice@example.com>", "starttls", ca_file=str(ca), timeout_seconds=5
    )
    return SmtpSettings(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_a_notice_is_sent_over_starttls_with_auth_as_text_and_escaped_html(tmp_path: Path) -> None:
    with running_mail_server(tmp_path, security="starttls", users={"sluice": "s3cret"}) as server:
        channel = EmailChannel(settings(server.port, server.ca_file, username="sluice", password="s3cret"))
        reference = channel.send(notice())
    (mail,) = server.received
    assert mail.tls and mail.authenticated_as == "sluice"
    assert mail.recipients == ["carol@example.com"] and mail.sender == "sluice@example.com"
    message = mail.message
    assert message["Message-ID"] == reference and message["X-Sluice-Notification"] == "ntf_1"
    assert message["Subject"].startswith("[Sluice] Alice <img src=x onerror=alert(1)> asks for read on")
    text, html = mail.part("plain"), mail.part("html")
    assert HOSTILE in text and "Review the request: https://sluice.example.com/requests/req_1" in text
    assert "<script>" not in html and "<b>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "pg/prod/&lt;b&gt;payments&lt;/b&gt;" in html
    assert '<a href="https://sluice.example.com/requests/req_1">Review the request</a>' in html
    assert "Requested by" in html and "2h" in html


def test_implicit_tls_and_plain_to_a_local_relay(tmp_path: Path) -> None:
    with running_mail_server(tmp_path, security="tls") as server:
        EmailChannel(settings(server.port, server.ca_file, security="tls")).send(notice())
    assert server.received[0].tls
    with running_mail_server(tmp_path, security="none") as server:
        EmailChannel(settings(server.port, server.ca_file, security="none")).send(notice())
    assert not server.received[0].tls


def test_a_server_without_starttls_gets_nothing_and_an_untrusted_certificate_is_refused(
    tmp_path: Path,
) -> None:
    with (
        running_mail_server(tmp_path, security="none") as server,
        pytest.raises(ChannelError, match="does not offer STARTTLS") as raised,
    ):
        EmailChannel(settings(server.port, server.ca_file)).send(notice())
    assert raised.value.retryable and server.received == []
    with (
        running_mail_server(tmp_path, security="starttls") as server,
        pytest.raises(ChannelError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        EmailChannel(settings(server.port, server.ca_file, ca_file=None)).send(notice())
    assert server.received == []


def test_refusals_are_permanent_or_not_by_their_code(tmp_path: Path) -> None:
    with running_mail_server(tmp_path, security="starttls") as server:
        channel = EmailChannel(settings(server.port, server.ca_file))
        server.handler.refuse["carol@example.com"] = "550 5.1.1 no such user"
        with pytest.raises(ChannelError) as permanent:
            channel.send(notice())
        server.handler.refuse["carol@example.com"] = "451 4.3.0 try again later"
        with pytest.raises(ChannelError) as passing:
            channel.send(notice())
        server.handler.refuse.clear()
        server.handler.fail_data.append("452 4.3.1 out of space")
        with pytest.raises(ChannelError, match="SMTP 452") as full:
            channel.send(notice())
    assert not permanent.value.retryable and passing.value.retryable and full.value.retryable
    with pytest.raises(ChannelError) as closed:
        EmailChannel(settings(server.port, server.ca_file)).send(notice())  # nobody listens any more
    assert closed.value.retryable


def test_a_later_notice_threads_under_the_first() -> None:
    message = compose(notice(topic="request.approved", earlier=["<first@example.com>"]), "s@example.com")
    assert message["In-Reply-To"] == "<first@example.com>" and message["References"] == "<first@example.com>"


def test_break_glass_asks_for_a_review_and_its_review_says_by_whom_and_how() -> None:
    glass = dataclasses.replace(notice().subject, break_glass=True, state="active")
    link = "https://sluice.example.com/requests/req_1"
    assert f"Review the request: {link}" in _text(notice(topic="request.break_glass", subject=glass))
    reviewed = dataclasses.replace(glass, reviewed_by="Bob", review_outcome="revoke", review_reason="no case")
    # Sent after its review: nothing left to do but look.
    assert f"Open in Sluice: {link}" in _text(notice(topic="request.break_glass", subject=reviewed))
    told = compose(notice(topic="request.break_glass_reviewed", subject=reviewed), "s@example.com")
    assert told["Subject"].endswith("was reviewed by Bob: access ended")
    text = told.get_body(("plain",)).get_content()
    assert "Reviewed by: Bob" in text and "Review: no case" in text


def _text(one: Notice) -> str:
    return compose(one, "s@example.com").get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLUICE_SMTP_FROM": "nobody"}, "SLUICE_SMTP_FROM must be an email address"),
        ({"SLUICE_SMTP_PORT": "smtp"}, "SLUICE_SMTP_PORT must be a whole number"),
        ({"SLUICE_SMTP_STARTTLS": "maybe"}, "SLUICE_SMTP_STARTTLS must be true or false"),
        ({"SLUICE_SMTP_PASSWORD_ENV": "MISSING_PW"}, "MISSING_PW, which is not set"),
        (
            {
                "SLUICE_SMTP_STARTTLS": "false",
                "SLUICE_SMTP_USERNAME": "u",
                "SLUICE_SMTP_HOST": "mail.example.com",
            },
            "in the clear",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_setting(env: dict[str, str], message: str) -> None:
    base = {"SLUICE_SMTP_HOST": "127.0.0.1", "SLUICE_SMTP_FROM": "sluice@example.com"}
    with pytest.raises(ValueError, match=message):
        SmtpSettings.from_env({**base, **env})


def test_settings_from_the_environment() -> None:
    assert SmtpSettings.from_env({}) is None
    read = SmtpSettings.from_env(
        {
            "SLUICE_SMTP_HOST": "mail.example.com",
            "SLUICE_SMTP_FROM": "sluice@example.com",
            "SLUICE_SMTP_USERNAME": "sluice",
            "SLUICE_SMTP_PASSWORD_ENV": "MAIL_PW",
            "MAIL_PW": "pw",
            "SLUICE_SMTP_TLS": "true",
        }
    )
    assert read == SmtpSettings(
        "mail.example.com", 465, "sluice@example.com", "tls", "sluice", "pw", 10.0, None
    )


def test_a_request_reaches_its_approver_by_email_and_the_decision_threads_under_it(
    store: Store, tmp_path: Path
) -> None:
    with running_mail_server(tmp_path, security="starttls") as server:
        channel = EmailChannel(settings(server.port, server.ca_file))
        duty = NotificationDuty(
            store.factory,
            clock=store.clock,
            channels={"email": channel},
            public_url="https://sluice.example.com/",
            policy=NotifyPolicy(),
        )
        with transaction(store.factory) as session:
            request = submit_request(
                session,
                hub=store.hub,
                requester=store.identity(session, "alice@example.com"),
                units=[UnitAsked("groups/oncall", "member")],
                duration=timedelta(hours=1),
                reason="<i>incident</i> & rollback",
                now=store.clock(),
            )
            request_id = request.id
        assert duty.run() == 1
        with transaction(store.factory) as session:
            approve_request(
                session,
                request_id=request_id,
                approver=store.identity(session, "carol@example.com"),
                reason="go",
                now=store.clock(),
            )
        assert duty.run() == 2
    first, *decided = server.received
    assert first.recipients == ["carol@example.com"]
    assert f"https://sluice.example.com/requests/{request_id}" in first.part("plain")
    assert "&lt;i&gt;incident&lt;/i&gt; &amp; rollback" in first.part("html")
    by_rcpt = {m.recipients[0]: m for m in decided}
    assert set(by_rcpt) == {"alice@example.com", "carol@example.com"}
    assert by_rcpt["carol@example.com"].message["In-Reply-To"] == first.message["Message-ID"]
    assert "Your request for member on groups/oncall was approved by Carol" in by_rcpt[
        "alice@example.com"
    ].part("plain")


def test_the_email_channel_is_there_only_when_configured(tmp_path: Path) -> None:
    from sluice.runtime.settings import Settings

    settings_ = Settings(home=tmp_path, database_url="sqlite://", secret_key=None)
    assert channels_from_env(settings_, {}) == {}
    made = channels_from_env(
        settings_, {"SLUICE_SMTP_HOST": "mail.example.com", "SLUICE_SMTP_FROM": "s@example.com"}
    )
    assert isinstance(made["email"], EmailChannel) and made["email"].settings.security == "starttls"
