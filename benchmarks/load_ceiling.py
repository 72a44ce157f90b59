"""The ceiling of the load benchmark: a bare Flask route returning a small JSON object.

Served by the same servers as the app, so that their own cost is measured alone:

    gunicorn -w N -k gthread --threads T benchmarks.load_ceiling:app
    python -m benchmarks.load_ceiling --port P     (cheroot, as ``cephalopod run`` serves)
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from flask import Flask, jsonify

app = Flask(__name__)
app.config["APP_NAME"] = "ceiling"


@app.get("/ping")
def ping() -> Any:
    """A small JSON object, no database, no extension."""
    return jsonify({"status": "ok", "service": "ceiling"})


def main() -> None:
    """Serve the ceiling app with cheroot, configured as `cephalopod.server.make_server` is."""
    # here and not at the top: gunicorn imports this module for `app` alone
    from cephalopod.server import make_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = make_server(app, "127.0.0.1", args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.stop).start())
    server.safe_start()


if __name__ == "__main__":
    main()
