"""Writes to instances: the only place that registers, edits or deletes one.

Each write records itself in the audit log, in its own transaction (`cephalopod.audit`):
``actor`` says who acts (None: the request's user, see `audit.current_actor`).
"""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Mapping
from typing import Any

from blinker import Namespace
from sqlalchemy import delete, select, update

from cephalopod.audit import operations as audit
from cephalopod.audit.operations import Actor
from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.instances.rows import InstanceSummary
from cephalopod.instances.urls import url_key

#: What the audit log keeps of a registration and a deletion (old or new values).
RECORDED = ("url", "contact", "email", "organization", "enabled")

#: Hooks for later features (e-mail notifications, audit log): sent after the commit.
signals = Namespace()
instance_registered = signals.signal("instance-registered")
instance_updated = signals.signal("instance-updated")
instance_deleted = signals.signal("instance-deleted")


def parse_uuid(value: str) -> uuid_mod.UUID | None:
    """Return the UUID in ``value``, or None when it is not one."""
    try:
        return uuid_mod.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def get_instance(value: str) -> Instance | None:
    """Return the instance with this UUID (given as text), or None."""
    parsed = parse_uuid(value)
    if parsed is None:
        return None
    return db.session.scalar(select(Instance).where(Instance.uuid == parsed))


def register_instance(data: Mapping[str, Any], actor: Actor | None = None) -> Instance:
    """Create an instance from validated registration data."""
    now = utcnow()
    instance = Instance(
        uuid=uuid_mod.uuid4(),
        url=data["url"],
        url_key=url_key(data["url"]),
        contact=data["contact"],
        email=data["email"],
        organization=data["organization"],
        enabled=True,
        registered_at=now,
        updated_at=now,
        crawl_status="never",
        consecutive_failures=0,
    )
    db.session.add(instance)
    audit.record(
        "register",
        actor,
        instance=instance,
        changes=audit.created({k: getattr(instance, k) for k in RECORDED}),
        at=now,
    )
    # kept loaded through the commit: every value is the one just written, and the signal's
    # receivers and the reply read them (expired, each read would be a SELECT of the row)
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire
    instance_registered.send(instance)
    return instance


def update_instance(
    instance: Instance, changes: Mapping[str, Any], actor: Actor | None = None
) -> Instance:
    """Apply validated changes; a changed URL also changes the duplicate key.

    Every field of the request is written, in one UPDATE, also those equal to what was read:
    the record then ends as one whole request when several arrive at once (the last one
    wins), never as fields of one mixed with fields of another that had read the same row.
    The audit entry names the fields that changed (a change of ``enabled`` makes it an
    ``enable`` or ``disable``); a request that changes nothing records nothing.
    """
    old = {k: getattr(instance, k) for k in changes}
    changed = {k: v for k, v in changes.items() if old[k] != v}
    if changed:
        values = dict(changes)
        if "url" in values:
            values["url_key"] = url_key(values["url"])
        values["updated_at"] = utcnow()
        db.session.execute(update(Instance).where(Instance.id == instance.id).values(values))
        action = "update"
        if "enabled" in changed:
            action = "enable" if changed["enabled"] else "disable"
        named = audit.InstanceRef(
            instance.uuid,
            changes.get("organization", instance.organization),
            changes.get("url", instance.url),
        )
        audit.record(
            action,
            actor,
            instance=named,
            changes=audit.changed(old, changed),
            at=values["updated_at"],
        )
    db.session.commit()  # expires the instance: it is read again as stored
    if changed:
        instance_updated.send(instance, changes=changed)
    return instance


def delete_instance(instance: Instance, actor: Actor | None = None) -> None:
    """Delete an instance and everything crawled from it (an instance may leave for good).

    Its audit entries stay: they name it by uuid, organization and URL, with no foreign key.
    """
    instance_id, instance_uuid = instance.id, instance.uuid
    audit.record(
        "delete",
        actor,
        instance=instance,
        changes=audit.removed({k: getattr(instance, k) for k in RECORDED}),
    )
    # explicit deletes: SQLite only cascades with foreign keys on, and bulk is cheaper
    db.session.execute(delete(InstanceField).where(InstanceField.instance_id == instance_id))
    db.session.execute(delete(Snapshot).where(Snapshot.instance_id == instance_id))
    db.session.execute(delete(Instance).where(Instance.id == instance_id))
    db.session.commit()
    instance_deleted.send(instance_uuid)


def summary(instance: Instance) -> InstanceSummary:
    """Return the public summary that registration clients compare with their own values."""
    return InstanceSummary(
        uuid=instance.uuid,
        enabled=instance.enabled,
        url=instance.url,
        contact=instance.contact,
        email=instance.email,
        organization=instance.organization,
        registered=instance.registered_at,
    )
