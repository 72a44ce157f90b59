"""Every table, imported so that the metadata (and Alembic) sees them all.

Each domain keeps its tables in its own ``models`` module; `Meta`, the one table of no
domain (facts about the database itself), lives with the declarative base in `cephalopod.db`.
"""

from cephalopod.audit.models import AuditEntry
from cephalopod.auth.models import ApiToken, User
from cephalopod.crawler.models import CrawlJob, CrawlJobChunk
from cephalopod.db import Meta
from cephalopod.instances.models import Instance, InstanceField, Snapshot

__all__ = [
    "ApiToken",
    "AuditEntry",
    "CrawlJob",
    "CrawlJobChunk",
    "Instance",
    "InstanceField",
    "Meta",
    "Snapshot",
    "User",
]
