"""Import every model so that metadata (and Alembic) sees all tables."""

from cephalopod.auth.models import ApiToken, User
from cephalopod.crawler.models import CrawlJob, CrawlJobChunk
from cephalopod.instances.models import Instance, InstanceField, Meta, Snapshot

__all__ = [
    "ApiToken",
    "CrawlJob",
    "CrawlJobChunk",
    "Instance",
    "InstanceField",
    "Meta",
    "Snapshot",
    "User",
]
