"""Security headers on every response: a strict Content-Security-Policy and friends.

``script-src 'self'``: no inline script and no eval, so a stranger's string that slipped into
the HTML could not run; data reaches scripts as JSON in ``data-`` attributes or from the JSON
API. ``style-src 'self'`` holds too: Chart.js and jsvectormap set styles through the CSSOM
(``element.style``), which CSP does not restrict, never through ``style`` attributes or
``<style>`` elements. ``img-src data:`` is for the small SVG icons inside Pico CSS.
"""

from __future__ import annotations

from flask import Flask, Response

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    """Set the headers unless a view chose its own value."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Add the security headers to every response of ``app``."""
    app.after_request(add_security_headers)
