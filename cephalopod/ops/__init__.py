"""Operating the hub: its health, its metrics and its logs (``/healthz``, ``/metrics``).

A package of its own because none of it is a domain of the hub: each module reads the
others' state (the database, the broker, the crawl jobs) and changes none of it.
"""
