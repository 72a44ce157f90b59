"""The OpenAPI 3.1 document of every JSON endpoint, served at ``/api/openapi.json``.

    GET /api/openapi.json   this document (no login: it describes, it does not reveal)

The response bodies' component schemas are generated from the typed rows the read functions
return (``instances.rows``, ``stats.rows``: one declaration feeds the replies, the export's
columns and this document); the request bodies, the error shape and the crawl job are written
here. The path table below is by hand, short enough to read. Tests check that every route
under ``/api`` appears here with its methods, and that real replies of every documented
route match the schema of their status.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from flask import Blueprint, Response, jsonify

from cephalopod.admin.export import BASE_COLUMNS, FORMATS
from cephalopod.audit import queries as audit_queries
from cephalopod.audit.models import ACTIONS, ACTOR_KINDS, MAX_ACTOR
from cephalopod.audit.rows import AuditItem, AuditPage, Change
from cephalopod.instances.models import CRAWL_STATUSES
from cephalopod.instances.queries import DEFAULT_PER_PAGE, MAX_PER_PAGE, ORDERS, SORTS
from cephalopod.instances.rows import InstanceDetail, InstanceItem, InstancePage, InstanceSummary
from cephalopod.instances.schemas import MAX_TEXT, MAX_URL
from cephalopod.params import CONTROL_CHARACTERS, MAX_PAGE
from cephalopod.stats.queries import STATUSES
from cephalopod.stats.rows import Statistics, Trend
from cephalopod.stats.trend import INSTANCES, INTERVALS

bp = Blueprint("openapi", __name__)

Schema = dict[str, Any]

#: Row types whose schemas are published, under these (older, shorter) component names.
ROW_TYPES: dict[str, type] = {
    "Summary": InstanceSummary,
    "Item": InstanceItem,
    "Detail": InstanceDetail,
    "InstanceList": InstancePage,
    "Statistics": Statistics,
    "Trend": Trend,
    "AuditEntry": AuditItem,
    "AuditChange": Change,
    "AuditLog": AuditPage,
}


def ref(name: str) -> Schema:
    """Point to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    """An object with these properties, all required unless told otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        **extra,
    }


def nullable(kind: str, **extra: Any) -> Schema:
    """A JSON type or null."""
    return {"type": [kind, "null"], **extra}


def row_schemas() -> dict[str, Schema]:
    """Generate the row types' components, renamed as in ``ROW_TYPES`` (references too)."""
    _refs, generated = msgspec.json.schema_components(
        list(ROW_TYPES.values()), ref_template="#/components/schemas/{name}"
    )
    names = {cls.__name__: name for name, cls in ROW_TYPES.items()}
    text = json.dumps({names.get(key, key): value for key, value in generated.items()})
    for old, new in names.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    renamed: dict[str, Schema] = json.loads(text)
    for name, schema in renamed.items():
        schema["title"] = name
    return renamed


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}

# The request fields as ``instances.schemas`` validates them (a test fuzzes the server with
# requests generated from these: what they allow must be accepted, what they refuse refused).
# Leading and trailing white space is trimmed before the checks; no control characters.
_CONTROL = CONTROL_CHARACTERS
_NO_CONTROL = f"[^{_CONTROL}]*"
#: Free text in a query string: no control characters (see `cephalopod.params.text`)
NO_CONTROL = f"^{_NO_CONTROL}$"
TEXT: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TEXT,
    "pattern": f"^{_NO_CONTROL}[^\\s{_CONTROL}]{_NO_CONTROL}$",
    "description": "Not blank, no control characters; trimmed.",
}
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_HOST = "[A-Za-z0-9._~%!$&'()*+,;=-]+"
URL: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_URL,
    "pattern": f"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST}(:{_PORT})?([/?][^\\s{_CONTROL}#]*)?$",
    "description": "An absolute http(s) URL with a host, without user information or "
    "fragment; stored without a trailing slash. Beyond this pattern, host names in other "
    "scripts and IPv6 literals in brackets are accepted too.",
    "examples": ["https://indico.example.org"],
}
_SPECIAL_USE = "|".join(
    "".join(f"[{c.upper()}{c}]" for c in name) for name in SPECIAL_USE_DOMAIN_NAMES
)
EMAIL: Schema = {
    "type": "string",
    "format": "email",
    "minLength": 3,
    "maxLength": 254,  # RFC 5321's limit of an address
    "not": {"type": "string", "pattern": f"[.@]({_SPECIAL_USE})\\.?$"},
    "description": "Checked for syntax only (no DNS look-up), stored as sent; special-use "
    "domains (RFC 6761: .test, .local, .invalid, ...) are refused.",
}
_ORG_ALIAS = {**TEXT, "description": "Alias of organization (older clients send it)."}


def _or_null(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


#: Written by hand: requests (validated by ``instances.schemas``), errors and crawl jobs.
HAND_SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {
            "error": STRING,
            "parameter": {**STRING, "description": "The query parameter that is wrong."},
            "field": {**STRING, "description": "The body field that is wrong."},
            "message": {**STRING, "description": "Why the field's value is refused."},
            "data": {"type": "object", "description": "The keys that were not expected."},
        },
        required=["error"],
        additionalProperties=False,
        description="Every error: a human message, sometimes with the field or parameter.",
    ),
    "Registration": obj(
        {
            "url": URL,
            "contact": TEXT,
            "email": EMAIL,
            "organization": TEXT,
            "organisation": _ORG_ALIAS,
        },
        required=["url", "contact", "email"],
        oneOf=[{"required": ["organization"]}, {"required": ["organisation"]}],
        description="Other keys are ignored. 'organisation' is accepted instead of "
        "'organization' (not both).",
    ),
    "Changes": obj(
        {
            "url": _or_null(URL),
            "contact": _or_null(TEXT),
            "email": _or_null(EMAIL),
            "organization": _or_null(TEXT),
            "organisation": _or_null(_ORG_ALIAS),
            "enabled": {"type": ["boolean", "null"]},
        },
        required=[],
        additionalProperties=False,
        # not both spellings of the organization
        **{"not": {"required": ["organization", "organisation"]}},
        description="Any subset; null values are ignored.",
    ),
    "Job": obj(
        {
            "state": {"enum": ["queued", "running", "done", "failed"]},
            "total": INTEGER,
            "done": INTEGER,
            "ok": INTEGER,
            "failed": INTEGER,
        },
        additionalProperties=False,
    ),
    "Geolocation": obj(
        {
            "available": BOOLEAN,
            "reason": nullable("string", description="Why locations are unknown."),
            "credit": obj({"text": STRING, "url": STRING}, additionalProperties=False),
        },
        additionalProperties=False,
    ),
}


def param(
    name: str, schema: Schema, description: str, where: str = "query", *, empty: bool = True
) -> Schema:
    """A parameter; path parameters are required. An empty query parameter (``?status=``, as
    a form sends it) means its default: ``empty`` says the schema lets it through."""
    if where == "query" and empty and schema.get("type") != "string":
        if "enum" in schema:
            schema = {**schema, "enum": [*schema["enum"], ""]}
        else:
            bare = {k: v for k, v in schema.items() if k != "default"}
            default = {"default": schema["default"]} if "default" in schema else {}
            schema = {"anyOf": [bare, {"const": ""}], **default}
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


STATUS_ALL = param("status", {"enum": list(STATUSES), "default": "all"}, "Which instances.")
STATUS_ENABLED = param(
    "status", {"enum": list(STATUSES), "default": "enabled"}, "Which instances are counted."
)
PAGE = param(
    "page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}, "Page number."
)
LIST_PARAMETERS = [
    STATUS_ALL,
    param(
        "q",
        {"type": "string", "maxLength": 200, "pattern": NO_CONTROL},
        "Case-insensitive substring of organization, url, contact or email.",
    ),
    param("country", {"type": "string", "pattern": "^([A-Za-z]{2})?$"}, "ISO 3166 country code."),
    param("health", {"enum": list(CRAWL_STATUSES)}, "The latest crawl's outcome."),
    param(
        "error",
        {"type": "string", "maxLength": 500, "pattern": NO_CONTROL},
        "Failing instances whose latest crawl error is exactly this text.",
    ),
    param(
        "duplicates",
        {"enum": ["0", "1", "false", "true"], "default": "0"},
        "1 (or true): only instances sharing a normalised URL.",
    ),
    param(
        "sort",
        {
            "anyOf": [{"enum": list(SORTS)}, {"type": "string", "pattern": "^field:.+"}],
            "default": "organization",
        },
        "A column or field:<name> of a visible crawled field (400 for a field that is hidden, "
        "or neither configured nor reported by any instance); numbers sort numerically, "
        "missing values last in both orders.",
    ),
    param("order", {"enum": list(ORDERS), "default": "asc"}, "Sort direction."),
    PAGE,
    param(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
        "Items per page.",
    ),
]


def or_empty(schema: Schema) -> Schema:
    """A string parameter's schema that also takes the empty value (its default: no filter)."""
    return {"anyOf": [schema, {"const": ""}]}


AUDIT_PARAMETERS = [
    param(
        "instance",
        or_empty({"type": "string", "format": "uuid"}),
        "Only this instance's entries (also once it is deleted).",
        empty=False,
    ),
    param("action", {"enum": list(ACTIONS)}, "Only entries of this action."),
    param(
        "actor",
        {"type": "string", "maxLength": MAX_ACTOR, "pattern": NO_CONTROL},
        "Only entries of this actor: a user name (exactly), the name tried by a failed "
        "log-in, or the shell user of the command line.",
    ),
    param("actor_kind", {"enum": list(ACTOR_KINDS)}, "Only entries of this kind of actor."),
    param(
        "since",
        or_empty({"type": "string", "format": "date-time"}),
        "Only entries at or after this time (RFC 3339, with its offset: ...Z or ...+01:00).",
        empty=False,
    ),
    param(
        "until",
        or_empty({"type": "string", "format": "date-time"}),
        "Only entries before this time (RFC 3339, with its offset).",
        empty=False,
    ),
    PAGE,
    param(
        "per_page",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": audit_queries.MAX_PER_PAGE,
            "default": audit_queries.DEFAULT_PER_PAGE,
        },
        "Entries per page.",
    ),
]
UUID = param("uuid", {"type": "string", "format": "uuid"}, "The instance's UUID.", "path")


def json_reply(description: str, schema: Schema) -> Schema:
    """A JSON response."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Schema]:
    """Error responses, all in the one JSON error shape."""
    texts = {
        400: "Invalid input (the message names the parameter or field)",
        401: "Not logged in and no valid bearer token",
        404: "Not found",
        413: "Body too large",
        429: "Too many requests",
    }
    return {str(s): json_reply(texts[s], ref("Error")) for s in statuses}


def operation(summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
    """An operation of the admin API (login or token required)."""
    return {
        "summary": summary,
        "tags": ["admin"],
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "responses": {**responses, **errors(401)},
        **extra,
    }


def body(schema: Schema) -> Schema:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def registration_paths(prefix: str, deprecated: bool = False) -> dict[str, Schema]:
    """The registration protocol (public: an instance speaks it about itself)."""
    tag = {"tags": ["registration"], **({"deprecated": True} if deprecated else {})}
    name = prefix.strip("/").replace("/", "_")
    return {
        f"{prefix}/": {
            "post": {
                "operationId": f"{name}_register",
                "summary": "Register an instance",
                "requestBody": body(ref("Registration")),
                "responses": {
                    "201": json_reply("Registered", obj({"uuid": STRING})),
                    **errors(400, 413, 429),
                },
                **tag,
            }
        },
        f"{prefix}/{{uuid}}": {
            "parameters": [UUID],
            "get": {
                "operationId": f"{name}_read",
                "summary": "Read an instance's record",
                "responses": {"200": json_reply("The record", ref("Summary")), **errors(404)},
                **tag,
            },
            "patch": {
                "operationId": f"{name}_update",
                "summary": "Change an instance's record",
                "requestBody": body(ref("Changes")),
                "responses": {
                    "200": json_reply("The changed record", ref("Summary")),
                    **errors(400, 404, 413),
                },
                **tag,
            },
            "delete": {
                "operationId": f"{name}_delete",
                "summary": "Delete an instance and all its crawled data",
                "responses": {"204": {"description": "Deleted"}, **errors(404)},
                **tag,
            },
            "options": {
                "operationId": f"{name}_preflight",
                "summary": "CORS preflight of a read",
                "description": "Answered for any path, before a record is looked up.",
                "parameters": [param("uuid", STRING, "Any value.", "path")],
                "responses": {"204": {"description": "Allowed"}},
                **tag,
            },
        },
    }


ADMIN_PATHS: dict[str, Schema] = {
    "/api/admin/instances": {
        "get": operation(
            "List instances",
            {"200": json_reply("A page of instances", ref("InstanceList")), **errors(400)},
            operationId="admin_list_instances",
            parameters=LIST_PARAMETERS,
        )
    },
    "/api/admin/instances/{uuid}": {
        "parameters": [UUID],
        "get": operation(
            "An instance with its crawled data and history",
            {"200": json_reply("The instance", ref("Detail")), **errors(404)},
            operationId="admin_get_instance",
        ),
        "patch": operation(
            "Edit an instance (CSRF token required with a session)",
            {"200": json_reply("The edited instance", ref("Item")), **errors(400, 404)},
            operationId="admin_edit_instance",
            requestBody=body(ref("Changes")),
        ),
        "delete": operation(
            "Delete an instance and all its crawled data",
            {"204": {"description": "Deleted"}, **errors(404)},
            operationId="admin_delete_instance",
        ),
    },
    "/api/admin/instances/{uuid}/crawl": {
        "parameters": [UUID],
        "post": operation(
            "Crawl an instance now",
            {
                "200": json_reply(
                    "Crawled within a few seconds: the instance as stored", ref("Item")
                ),
                "202": {
                    **json_reply(
                        "Still crawling after a few seconds: the job to poll",
                        obj({"job": STRING}),
                    ),
                    "headers": {
                        "Location": {
                            "description": "The job's progress (GET /api/admin/crawl/{job}).",
                            "schema": STRING,
                        }
                    },
                },
                **errors(404),
            },
            operationId="admin_crawl_instance",
            description="The crawl runs in the background; the request waits for it at most "
            "a few seconds (5).",
        ),
    },
    "/api/admin/crawl": {
        "post": operation(
            "Crawl every enabled instance in the background",
            {"202": json_reply("Started (or the one already running)", obj({"job": STRING}))},
            operationId="admin_crawl_all",
        )
    },
    "/api/admin/crawl/{job}": {
        "parameters": [param("job", {"type": "string", "format": "uuid"}, "The job id.", "path")],
        "get": operation(
            "A crawl's progress",
            {"200": json_reply("The job", ref("Job")), **errors(404)},
            operationId="admin_crawl_status",
        ),
    },
    "/api/admin/statistics": {
        "get": operation(
            "Counts, countries, registrations and the configured charts",
            {"200": json_reply("The statistics", ref("Statistics")), **errors(400)},
            operationId="admin_statistics",
            parameters=[STATUS_ENABLED],
        )
    },
    "/api/admin/statistics/trend": {
        "get": operation(
            "A field's count distribution per period, from the daily snapshots",
            {"200": json_reply("The trend", ref("Trend")), **errors(400)},
            operationId="admin_statistics_trend",
            parameters=[
                {
                    **param(
                        "field",
                        {"type": "string", "minLength": 1, "examples": [INSTANCES]},
                        f"A visible crawled field (400 for one that is hidden, or neither "
                        f"configured nor reported by any instance), or {INSTANCES!r}.",
                        empty=False,
                    ),
                    "required": True,
                },
                param("interval", {"enum": list(INTERVALS), "default": "month"}, "Period."),
                STATUS_ENABLED,
            ],
        )
    },
    "/api/admin/geolocation": {
        "get": operation(
            "Whether locations can be determined, why not, and the credit the data requires",
            {
                "200": json_reply("The geolocation status", ref("Geolocation")),
            },
            operationId="admin_geolocation",
        )
    },
    "/api/admin/audit": {
        "get": operation(
            "The audit log: registrations, changes, deletions, crawls, log-ins, tokens",
            {"200": json_reply("A page of entries, newest first", ref("AuditLog")), **errors(400)},
            operationId="admin_audit",
            parameters=AUDIT_PARAMETERS,
            description="Who did what, when and from where: the instances themselves (the "
            "registration protocol), users and their tokens, the command line. Entries are "
            f"kept AUDIT_RETENTION_DAYS days; an instance's latest {audit_queries.RECENT} are "
            "also in its item (GET /api/admin/instances/{uuid}).",
        )
    },
    "/api/admin/export": {
        "get": operation(
            "Every instance matching the list's filters, streamed",
            {
                "200": {
                    "description": "Columns: "
                    + ", ".join(BASE_COLUMNS)
                    + ", then each visible crawled field's display value under its label.",
                    "content": {
                        "text/csv": {"schema": STRING},
                        "application/json": {"schema": {"type": "array", "items": {}}},
                    },
                },
                **errors(400),
            },
            operationId="admin_export",
            parameters=[
                param("format", {"enum": list(FORMATS), "default": "csv"}, "File format."),
                *LIST_PARAMETERS,
            ],
        )
    },
}

PUBLIC_PATHS: dict[str, Schema] = {
    "/api/statistics": {
        "get": {
            "operationId": "public_statistics",
            "summary": "The aggregate statistics, when PUBLIC_STATISTICS is on (404 otherwise)",
            "tags": ["public"],
            "parameters": [STATUS_ENABLED],
            "responses": {
                "200": json_reply("The statistics", ref("Statistics")),
                **errors(400, 404),
            },
        }
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["public"],
            "responses": {"200": json_reply("OpenAPI 3.1", {"type": "object"})},
        }
    },
}


def _version() -> str:
    try:
        return version("cephalopod")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


@cache
def document() -> dict[str, Any]:
    """Return the OpenAPI document (built once)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cephalopod",
            "version": _version(),
            "description": "Registration protocol, admin API and public statistics.",
        },
        "paths": {
            **registration_paths("/api/instance"),
            **registration_paths("/instance", deprecated=True),
            **ADMIN_PATHS,
            **PUBLIC_PATHS,
        },
        "components": {
            "schemas": {**row_schemas(), **HAND_SCHEMAS},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


@bp.get("/api/openapi.json")
def openapi() -> Response:
    """Serve the OpenAPI document."""
    return jsonify(document())
