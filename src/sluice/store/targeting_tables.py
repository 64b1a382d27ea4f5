"""Tables of dynamic targeting: resource tags, bundles and saved scopes. They share `Base` with
`tables.py` (which imports this module at its end, so the metadata is always complete)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sluice.store.tables import Base, Resource

DISCOVERED = "discovered"


class ResourceTag(Base):
    """One tag key on a resource, with its two layers: the value discovered in the target and the
    value injected through the API. An injected value wins while it is there.

    `value` and `source` are the effective tag, the one selectors and the policy read: the injected
    value with `source` = `api:<email>` (the token holder who set it), or else the discovered one with
    `source` = `discovered`. `discovered_value` is what the last sync read from the target (NULL when
    the target has none), kept under an injected value, so that removing the injected value brings
    it back at once. A row with neither layer is deleted."""

    __tablename__ = "resource_tags"
    __table_args__ = (Index("ix_resource_tags_key_value", "key", "value"),)

    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(360))
    discovered_value: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime]


class Bundle(Base):
    __tablename__ = "bundles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    spec: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(40), default="api")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Scope(Base):
    __tablename__ = "scopes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    query: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(40), default="api")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# Listing what may be requested walks each target's resources in path order within one integration and
# type, stopping after a page: this index serves that walk (and "under a parent" ranges within it).
Index("ix_resources_integration_type_path", Resource.integration_id, Resource.type, Resource.path)


class InventoryStaging(Base):
    """What one inventory sync read from its target, written a chunk at a time while the connector
    lists, so that the sync never holds a whole inventory in memory. The apply step walks it in path
    order against `resources`, then deletes the sync's rows; rows a crashed sync left behind are
    removed by the next sync of the same integration. `tags` is the discovered tags as a JSON object
    with sorted keys (`tags.encode_discovered`), compared as text with the store's discovered layer."""

    __tablename__ = "inventory_staging"
    # Rows kept in key order on SQLite (one B-tree per row, read in place in path order), and no index
    # on `integration_id`: a sync writes and deletes a row per listed resource, while only the
    # clean-up of a crashed sync's rows, over a table empty between syncs, would read that index.
    __table_args__ = {"sqlite_with_rowid": False}

    sync_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(500))
    parent_path: Mapped[str | None] = mapped_column(String(1000))
    tags: Mapped[str] = mapped_column(Text)
    staged_at: Mapped[datetime]
