"""The registration protocol's validators as pure functions: no app, no request.

Each refusal is a `FieldError` naming the field as the client sent it, with the message the
API answers (``empty``: the API's "Invalid value" form) or an `UnexpectedKeysError` with the
keys a PATCH may not send. The HTTP answers built from them are tested in test_api.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from cephalopod.instances.schemas import (
    EDITABLE,
    MAX_TEXT,
    MAX_URL,
    FieldError,
    UnexpectedKeysError,
    clean_email,
    clean_enabled,
    clean_name,
    clean_url,
    validate_registration,
    validate_update,
)

VALID = {
    "url": "https://indico.example.org",
    "contact": "Ann Example",
    "email": "ann@example.org",
    "organization": "Example Lab",
}
#: what the public and admin APIs allow a PATCH to change
PATCHABLE = (*EDITABLE, "enabled")


def refusal(call: Any, *args: Any) -> tuple[str, str, bool]:
    """The (field, message, empty) of the FieldError that call(*args) raises."""
    with pytest.raises(FieldError) as caught:
        call(*args)
    assert str(caught.value) == caught.value.message  # a ValueError whose text is the message
    return caught.value.field, caught.value.message, caught.value.empty


# --- url ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("https://indico.example.org", "https://indico.example.org"),
        ("https://indico.example.org/", "https://indico.example.org"),
        ("https://indico.example.org///", "https://indico.example.org"),
        ("  https://indico.example.org/event/ \n", "https://indico.example.org/event"),
        ("HTTPS://Indico.Example.org", "HTTPS://Indico.Example.org"),  # case kept as sent
        ("http://x.example.org:8080/", "http://x.example.org:8080"),
        ("https://x.example.org:65535", "https://x.example.org:65535"),
        ("http://[2001:db8::1]:8443/indico", "http://[2001:db8::1]:8443/indico"),
        ("https://x.example.org/?a=1", "https://x.example.org/?a=1"),
        ("http://localhost", "http://localhost"),
        ("https://x.org/" + "a" * (MAX_URL - 14), "https://x.org/" + "a" * (MAX_URL - 14)),
    ],
)
def test_good_urls(sent: str, kept: str) -> None:
    assert clean_url(sent) == kept


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ("ftp://indico.example.org", "url must start with http:// or https://"),
        ("javascript:alert(1)", "url must start with http:// or https://"),
        ("file:///etc/passwd", "url must start with http:// or https://"),
        ("indico.example.org", "url must start with http:// or https://"),
        ("//indico.example.org", "url must start with http:// or https://"),
        ("https://", "url must have a host name"),
        ("https:///event", "url must have a host name"),
        ("https:x.example.org", "url must have a host name"),
        ("https://:443/", "url must have a host name"),
        ("https://user@x.example.org", "url must not contain user information"),
        ("https://user:pw@x.example.org", "url must not contain user information"),
        ("https://@x.example.org", "url must not contain user information"),
        ("https://x.example.org/#top", "url must not contain a fragment (#...)"),
        ("https://x.example.org/#", "url must not contain a fragment (#...)"),
        ("https://x.example.org:0", "url has an invalid port"),
        ("https://x.example.org:99999", "url is not a valid URL"),
        ("https://x.example.org:abc", "url is not a valid URL"),
        ("https://[::1", "url is not a valid URL"),
        ("https://x.example.org/a b", "url must not contain spaces"),
        ("https://x.example.org\u00a0/", "url must not contain spaces"),
        ("https://x.example.org/\x00", "url must not contain control characters"),
        ("https://x.example.org/\ud800", "url must not contain unpaired surrogates"),
        ("https://x.org/" + "a" * (MAX_URL - 13), f"url must be at most {MAX_URL} characters"),
        (42, "url must be a string"),
        (["https://x.example.org"], "url must be a string"),
    ],
)
def test_bad_urls(sent: Any, message: str) -> None:
    assert refusal(clean_url, sent) == ("url", message, False)


@pytest.mark.parametrize("sent", ["", "   ", "\t\n"])
def test_an_empty_url_is_an_empty_value(sent: str) -> None:
    assert refusal(clean_url, sent) == ("url", "url must not be empty", True)


# --- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("ann@example.org", "ann@example.org"),
        ("Ann.Example+hub@Example.ORG", "Ann.Example+hub@Example.ORG"),  # not normalised
        ("  ann@example.org\n", "ann@example.org"),
        ("ann@exämple.org", "ann@exämple.org"),
    ],
)
def test_good_emails(sent: str, kept: str) -> None:
    assert clean_email(sent) == kept


@pytest.mark.parametrize(
    "sent",
    [
        "ann.example.org",
        "ann@",
        "@example.org",
        "ann example@example.org",
        "Ann <ann@example.org>",
        "ann@example",
        "a@@example.org",
        "a" * (MAX_TEXT - 12) + "@example.org",  # 256 characters: too long an address
    ],
)
def test_bad_emails_say_why(sent: str) -> None:
    field, message, empty = refusal(clean_email, sent)
    prefix = "email is not a valid e-mail address: "
    assert (field, empty) == ("email", False)
    assert message.startswith(prefix)
    assert len(message) > len(prefix)  # email_validator's reason follows


@pytest.mark.parametrize(
    ("sent", "message", "empty"),
    [
        ("", "email must not be empty", True),
        (None, "email must be a string", False),
        (7, "email must be a string", False),
        ("ann\x07@example.org", "email must not contain control characters", False),
        ("x" * (MAX_TEXT + 1), f"email must be at most {MAX_TEXT} characters", False),
    ],
)
def test_emails_refused_before_their_syntax(sent: Any, message: str, empty: bool) -> None:
    assert refusal(clean_email, sent) == ("email", message, empty)


# --- contact and organization ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["contact", "organization"])
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("Ann", "Ann"),
        ("  Ann  ", "Ann"),
        ("\tLab\n", "Lab"),
        ("Zoë Ünïcødé 😀", "Zoë Ünïcødé 😀"),
        ("東京大学", "東京大学"),
        ("x" * MAX_TEXT, "x" * MAX_TEXT),
    ],
)
def test_good_names(field: str, sent: str, kept: str) -> None:
    assert clean_name(field)(sent) == kept


@pytest.mark.parametrize("field", ["contact", "organization"])
@pytest.mark.parametrize(
    ("sent", "problem", "empty"),
    [
        ("", "must not be empty", True),
        (" \t\n ", "must not be empty", True),
        (42, "must be a string", False),
        (True, "must be a string", False),
        (None, "must be a string", False),
        (["Ann"], "must be a string", False),
        ({"x": 1}, "must be a string", False),
        ("x" * (MAX_TEXT + 1), f"must be at most {MAX_TEXT} characters", False),
        ("Ann\x00", "must not contain control characters", False),
        ("Ann\nExample", "must not contain control characters", False),
        ("Lab\x1b[31m", "must not contain control characters", False),
        ("Lab\x7f", "must not contain control characters", False),
        ("Ann\x85Example", "must not contain control characters", False),  # C1
        ("Ann \ud800", "must not contain unpaired surrogates", False),
    ],
)
def test_bad_names(field: str, sent: Any, problem: str, empty: bool) -> None:
    assert refusal(clean_name(field), sent) == (field, f"{field} {problem}", empty)


# --- enabled -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [True, False])
def test_enabled_is_a_json_boolean(sent: bool) -> None:
    assert clean_enabled(sent) is sent


@pytest.mark.parametrize("sent", ["false", "true", 0, 1, None, [], "", {}])
def test_enabled_refuses_anything_else(sent: Any) -> None:
    assert refusal(clean_enabled, sent) == ("enabled", "enabled must be true or false", False)


# --- POST: the registration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "cleaned"),
    [
        (VALID, VALID),
        ({**VALID, "url": " https://indico.example.org/ "}, VALID),
        (
            {k: v for k, v in VALID.items() if k != "organization"} | {"organisation": "UK Lab"},
            {**VALID, "organization": "UK Lab"},
        ),
        # unknown keys are ignored, as by the original (enabled included: not set on POST)
        ({**VALID, "enabled": False, "uuid": "x", "foo": {"bar": [1]}, "": None}, VALID),
    ],
    ids=["valid", "normalised", "organisation-alias", "unknown-keys-ignored"],
)
def test_a_registration_is_cleaned(body: dict[str, Any], cleaned: dict[str, Any]) -> None:
    assert validate_registration(body) == cleaned


def without(*names: str, **changes: Any) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k not in names} | changes


@pytest.mark.parametrize(
    ("body", "error"),
    [
        *[(without(f), (f, f"{f} is required", True)) for f in EDITABLE],
        *[(without(f, **{f: None}), (f, f"{f} is required", True)) for f in EDITABLE],
        ({}, ("url", "url is required", True)),  # the first in the protocol's order
        (without(contact=1, email="x"), ("contact", "contact must be a string", False)),
        (without(url=""), ("url", "url must not be empty", True)),
        # a refused alias: the field as sent, the message in the canonical name
        (
            without("organization", organisation=""),
            ("organisation", "organization must not be empty", True),
        ),
        (
            without("organization", organisation="x" * 256),
            ("organisation", "organization must be at most 255 characters", False),
        ),
        (
            without(organisation="Other"),
            (
                "organisation",
                "organization is given twice (as organization and organisation)",
                False,
            ),
        ),
    ],
)
def test_a_registration_is_refused(body: dict[str, Any], error: tuple[str, str, bool]) -> None:
    assert refusal(validate_registration, body) == error


# --- PATCH: an update ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "cleaned"),
    [
        ({}, {}),
        ({"contact": " Bob "}, {"contact": "Bob"}),
        ({"url": "https://new.example.org/"}, {"url": "https://new.example.org"}),
        ({"organisation": "UK Lab"}, {"organization": "UK Lab"}),
        ({"enabled": False}, {"enabled": False}),
        ({"contact": None, "url": None, "enabled": None}, {}),  # null means "leave it"
        ({"contact": None, "email": "bob@example.org"}, {"email": "bob@example.org"}),
        ({**VALID, "enabled": True}, {**VALID, "enabled": True}),  # Indico's sync: everything
    ],
)
def test_an_update_is_cleaned(body: dict[str, Any], cleaned: dict[str, Any]) -> None:
    assert validate_update(body, PATCHABLE) == cleaned


@pytest.mark.parametrize(
    ("body", "unexpected"),
    [
        ({"foo": "bar"}, {"foo": "bar"}),
        ({"foo": None, "uuid": "x", "contact": "Bob"}, {"foo": None, "uuid": "x"}),
        ({"registered": "2020-01-01T00:00:00Z"}, {"registered": "2020-01-01T00:00:00Z"}),
        ({"contact": "", "id": 3}, {"id": 3}),  # unknown keys first, before any value
    ],
)
def test_an_update_refuses_unknown_keys(body: dict[str, Any], unexpected: dict[str, Any]) -> None:
    with pytest.raises(UnexpectedKeysError) as caught:
        validate_update(body, PATCHABLE)
    assert caught.value.data == unexpected


def test_an_update_allows_only_what_it_is_told() -> None:
    with pytest.raises(UnexpectedKeysError) as caught:
        validate_update({"contact": "Bob", "enabled": False}, EDITABLE)
    assert caught.value.data == {"enabled": False}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"contact": ""}, ("contact", "contact must not be empty", True)),
        ({"organisation": "  "}, ("organisation", "organization must not be empty", True)),
        ({"enabled": "false"}, ("enabled", "enabled must be true or false", False)),
        ({"url": "ftp://x.example.org"}, ("url", "url must start with http:// or https://", False)),
        (
            {"organization": "Lab\x00"},
            ("organization", "organization must not contain control characters", False),
        ),
        (
            {"organization": "A", "organisation": "B"},
            (
                "organisation",
                "organization is given twice (as organization and organisation)",
                False,
            ),
        ),
    ],
)
def test_an_update_is_refused(body: dict[str, Any], error: tuple[str, str, bool]) -> None:
    assert refusal(validate_update, body, PATCHABLE) == error


# --- the same extra keys: ignored on POST, refused on PATCH --------------------------------------


@pytest.mark.parametrize(
    "extra",
    [{"foo": 1}, {"uuid": "x"}, {"registered": None}, {"Url": "https://x.example.org"}],
    ids=["foo", "uuid", "registered-null", "case-matters"],
)
def test_extra_keys_are_ignored_on_post_and_refused_on_patch(extra: dict[str, Any]) -> None:
    assert validate_registration({**VALID, **extra}) == VALID
    with pytest.raises(UnexpectedKeysError) as caught:
        validate_update({**VALID, **extra}, PATCHABLE)
    assert caught.value.data == extra
