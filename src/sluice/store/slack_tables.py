"""What the Slack app keeps: the signatures of the requests Slack sent that were already acted on, so a
captured request sent again (within the five minutes its timestamp is accepted) is refused by every
server of the installation, not only the one that saw it first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from sluice.store.tables import Base


class SlackSeenRequest(Base):
    __tablename__ = "slack_seen_requests"

    # The `X-Slack-Signature` value: an HMAC over the timestamp and the body, so one per request sent.
    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
