"""What a crawl tells whoever listens (the mail): sent after the commit of the batch."""

from __future__ import annotations

from blinker import Namespace

signals = Namespace()
#: Sender: the Flask app; ``ids``: the instances of one stored batch that failed after at
#: least `CrawlConfig.report_failing_after` successful crawls in a row (each told once).
instances_started_failing = signals.signal("instances-started-failing")
