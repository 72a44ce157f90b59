"""The registration protocol, spoken by real clients (Indico's community hub): never break it.

    POST   /api/instance/         register → 201 {"uuid"}
    GET    /api/instance/<uuid>   the summary (CORS: read from the instance admin's browser)
    PATCH  /api/instance/<uuid>   change any subset of url, contact, email, organization, enabled
    DELETE /api/instance/<uuid>   leave for good: the record and all crawled data → 204

The same routes answer under ``/instance/`` (the original README's path).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from cephalopod.audit.operations import Actor
from cephalopod.errors import ApiError
from cephalopod.extensions import limiter
from cephalopod.instances import operations as ops
from cephalopod.instances.models import Instance
from cephalopod.instances.queries import instance_summary
from cephalopod.instances.schemas import (
    EDITABLE,
    FieldError,
    UnexpectedKeysError,
    validate_registration,
    validate_update,
)
from cephalopod.jsonlimits import JSONLimitError, loads_limited
from cephalopod.serialize import reply

bp = Blueprint("instances_api", __name__)

PREFIXES = ("/api/instance", "/instance")
#: Bounds of a request body, checked while it is decoded: an object of a few strings needs
#: two levels; thousands made the decoder recurse until it failed (a 500).
MAX_BODY_DEPTH = 32
MAX_BODY_KEYS = 1000


def _registration_limit() -> str:
    limit: str = current_app.config["REGISTRATION_RATE_LIMIT"]  # validated by settings.load
    return limit


def json_body() -> dict[str, Any]:
    """Return the request's JSON object, or raise the protocol's 400."""
    if not request.is_json:
        raise ApiError("Content-Type must be application/json")
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit and len(request.get_data()) >= limit:
        # a chunked body is cut at the limit without an error (werkzeug): a full buffer
        # means it was longer, so answer as for a declared Content-Length over the limit
        raise RequestEntityTooLarge()
    body = request.get_data(cache=True)
    try:
        data = loads_limited(
            body, max_depth=MAX_BODY_DEPTH, max_keys=MAX_BODY_KEYS, check_text=False
        )
    except JSONLimitError as exc:
        raise ApiError(f"Refused JSON body: {exc}") from None
    except ValueError:  # not JSON, not UTF-8/16/32, NaN or Infinity, a number beyond a float
        raise ApiError("Malformed JSON body") from None
    if not isinstance(data, dict):
        raise ApiError("The JSON body must be an object")
    return data


def _field_error(exc: FieldError) -> ApiError:
    if exc.empty:
        return ApiError("Invalid value", field=exc.field, message=exc.message)
    return ApiError(exc.message, field=exc.field)


def _load(uuid: str) -> Instance:
    instance = ops.get_instance(uuid)
    if instance is None:
        raise ApiError("Instance not found", 404)
    return instance


def _client() -> Actor:
    """The instance itself, from the client's address (ProxyFix's, behind USE_PROXY)."""
    return Actor.instance(request.remote_addr)


def _cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# shared: one budget per client address for both prefixes, or alternating them doubles it
@limiter.shared_limit(_registration_limit, scope="registration", methods=["POST"])
def create() -> tuple[Response, int, dict[str, str]]:
    """Register a new instance."""
    try:
        data = validate_registration(json_body())
    except FieldError as exc:
        raise _field_error(exc) from None
    instance = ops.register_instance(data, _client())
    location = url_for(".instance", uuid=str(instance.uuid))
    return jsonify({"uuid": str(instance.uuid)}), 201, {"Location": location}


def instance(uuid: str) -> Response | tuple[str, int]:
    """Read, update or delete an instance's own record."""
    if request.method == "OPTIONS":
        return _preflight()
    if request.method == "GET":
        found = instance_summary(uuid)
        if found is None:
            raise ApiError("Instance not found", 404)
        return reply(found)
    record = _load(uuid)
    if request.method == "DELETE":
        ops.delete_instance(record, _client())
        return "", 204
    try:
        changes = validate_update(json_body(), allowed=(*EDITABLE, "enabled"))
    except UnexpectedKeysError as exc:
        raise ApiError("Unexpected data", data=exc.data) from None
    except FieldError as exc:
        raise _field_error(exc) from None
    return reply(ops.summary(ops.update_instance(record, changes, _client())))


def _preflight() -> Response:
    response = _cors(Response(status=204))
    response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "86400"
    return response


@bp.after_request
def cors_on_reads(response: Response) -> Response:
    """Let browsers read the record and its 404 from any origin (Indico's admin page does)."""
    if request.method in ("GET", "OPTIONS", "HEAD"):
        _cors(response)
    return response


for prefix in PREFIXES:
    name = "" if prefix == "/api/instance" else "legacy_"
    bp.add_url_rule(f"{prefix}/", f"{name}create", create, methods=["POST"], strict_slashes=False)
    bp.add_url_rule(
        f"{prefix}/<uuid>",
        f"{name}instance",
        instance,
        methods=["GET", "PATCH", "DELETE", "OPTIONS"],
    )
