"""The audit log: who registered, changed, disabled, deleted or crawled an instance, and who
logged in (or failed to) or made and revoked tokens; kept AUDIT_RETENTION_DAYS days.

An entry is written by the operation it records, in the same transaction (`record`): a change
that rolled back leaves no entry, and no change is committed without its entry.
"""
