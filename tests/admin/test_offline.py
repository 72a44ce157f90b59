"""Works offline: no template, CSS or JS of ours names another host; vendored files are listed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cephalopod"
VENDOR = PACKAGE / "static" / "vendor"
#: XML namespaces are names, not addresses a browser fetches.
NAMESPACES = ("http://www.w3.org",)
EXTERNAL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)


def _ours() -> list[Path]:
    files = [*PACKAGE.glob("templates/**/*.html"), *PACKAGE.glob("static/**/*")]
    return sorted(p for p in files if p.is_file() and VENDOR not in p.parents)


@pytest.mark.parametrize("path", _ours(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_external_url(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for match in EXTERNAL.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        line = text[start : text.find("\n", match.end())]
        if match.group(0).startswith(NAMESPACES):
            continue
        raise AssertionError(f"{path.name} names another host: {line.strip()}")


def test_every_vendored_file_is_listed_with_its_version() -> None:
    listed = (VENDOR / "VENDORED.md").read_text(encoding="utf-8")
    for path in VENDOR.iterdir():
        if path.name == "VENDORED.md":
            continue
        assert path.name in listed, path.name
        assert re.search(r"-\d+\.\d+\.\d+\.", path.name), f"no version in {path.name}"


def test_templates_use_only_vendored_files_that_exist() -> None:
    for template in PACKAGE.glob("templates/**/*.html"):
        for name in re.findall(r"filename='(vendor/[^']+)'", template.read_text()):
            assert (PACKAGE / "static" / name).is_file(), (template.name, name)
