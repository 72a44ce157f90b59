"""gunicorn's settings for Cephalopod (/etc/cephalopod/gunicorn.conf.py; cephalopod-web.service).

The address is on the unit's command line (--bind). Each worker builds its own app: no
``preload_app``, a database pool must not be shared across a fork.
"""

from typing import Any

from prometheus_client import multiprocess

# gthread: the same threads per process as `cephalopod run`'s cheroot (README, "Load")
worker_class = "gthread"
workers = 2  # about one per core
threads = 8
# a request that takes longer is a stuck worker (the CSV export of 100,000 took 3-13 s)
timeout = 120
graceful_timeout = 30  # SIGTERM: requests in flight get this long (below TimeoutStopSec)
# nginx on this host: its X-Forwarded-Proto is trusted (USE_PROXY does the rest in the app)
forwarded_allow_ips = "127.0.0.1,::1"
accesslog = None  # the app logs one line per request itself (cephalopod.access)
# no gunicornc control socket (gunicorn 27 makes one in $HOME/.gunicorn by default)
control_socket_disable = True


def child_exit(_server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the shared metrics (PROMETHEUS_MULTIPROC_DIR)."""
    multiprocess.mark_process_dead(worker.pid)
