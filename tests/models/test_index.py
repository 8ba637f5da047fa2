"""Asking a package index what it lists (PEP 503 HTML, PEP 691 JSON), and reading pip's settings.

A local HTTP server (pytest-httpserver) answers as the simple API does and
expects the exact request pip would make: the project's normalized name,
with a trailing slash. ``file://`` indexes and find-links folders are built
in a temporary folder, as pip reads them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pytest_httpserver import HTTPServer

from moa_local.models.sources.index import Requirement, check
from moa_local.models.sources.pip_settings import (
    DEFAULT_INDEX,
    PipSettings,
    parse_config_list,
    pip_settings,
    redact,
    settings_from,
)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def html_page(*files: str) -> str:
    links = "\n".join(f'<a href="../../files/{f}#sha256=00">{f}</a>' for f in files)
    return f"<!DOCTYPE html><html><body>\n{links}\n</body></html>"


def json_page(name: str, *files: str) -> dict[str, object]:
    return {
        "meta": {"api-version": "1.1"},
        "name": name,
        "files": [{"filename": f, "url": f"https://files/{f}", "hashes": {}} for f in files],
    }


def index(server: HTTPServer) -> PipSettings:
    return PipSettings(indexes=(server.url_for("/simple").rstrip("/"),))


def test_an_html_page_that_lists_the_version_says_listed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/simple/some-model-part1/").respond_with_data(
        html_page(
            "some_model_part1-0.8.0-py3-none-any.whl", "some_model_part1-0.9.0-py3-none-any.whl"
        ),
        content_type="text/html",
    )
    [status] = check([Requirement("Some_Model.Part1", "0.9", wheel_only=True)], index(httpserver))
    assert (
        status.state == "listed" and status.summary() == f"listed ({index(httpserver).indexes[0]})"
    )


def test_a_json_page_without_the_version_says_gone_with_what_it_lists(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(
        "/simple/bigbench/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
    ).respond_with_json(
        json_page("bigbench", "bigbench-0.0.1.tar.gz", "bigbench-0.0.1-py3-none-any.whl"),
        content_type=JSON_TYPE,
    )
    [status] = check([Requirement("bigbench", "1.0.0")], index(httpserver))
    assert status.state == "gone" and status.versions == ["0.0.1"]
    assert status.summary() == "gone (versions listed: 0.0.1)"


def test_a_project_the_index_does_not_have_is_gone(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/simple/vanished/").respond_with_data("Not Found", status=404)
    [status] = check([Requirement("vanished", "1.0")], index(httpserver))
    assert status.summary() == "gone (versions listed: none)"


def test_only_a_wheel_will_do_for_a_model_part(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/simple/part/").respond_with_data(
        html_page("part-1.0.tar.gz"), content_type="text/html"
    )
    wheel, anything = check(
        [Requirement("part", "1.0", wheel_only=True), Requirement("part", "1.0")],
        index(httpserver),
    )
    assert wheel.summary() == "gone (no wheel of it; versions listed: 1.0)"
    assert anything.state == "listed"


def test_an_index_that_fails_cannot_be_asked(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/simple/flaky/").respond_with_data("busy", status=503)
    [status] = check([Requirement("flaky", "1.0")], index(httpserver))
    assert status.state == "unknown"
    assert status.summary() == f"could not ask: {index(httpserver).indexes[0]}: HTTP 503"


def nothing_listens() -> str:
    """An index URL on a local port nothing listens on (the shared httpserver keeps running)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple"


def test_an_unreachable_index_cannot_be_asked() -> None:
    url = nothing_listens()
    [status] = check([Requirement("anything", "1.0")], PipSettings(indexes=(url,)), timeout=2)
    assert status.state == "unknown"
    assert status.reason is not None and status.reason.startswith(f"{url}: ")


def test_the_first_place_that_lists_it_wins_even_after_one_failed(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/simple/pkg/").respond_with_data("busy", status=500)
    links = tmp_path / "wheels"
    links.mkdir()
    (links / "pkg-2.0-py3-none-any.whl").write_bytes(b"")
    settings = PipSettings(indexes=(httpserver.url_for("/simple"),), find_links=(str(links),))
    [status] = check([Requirement("pkg", "2.0")], settings)
    assert status.summary() == f"listed ({links})"


def test_a_file_index_is_read_as_pip_reads_it(tmp_path: Path) -> None:
    simple = tmp_path / "simple"
    (simple / "pkg").mkdir(parents=True)
    (simple / "pkg" / "index.html").write_text(html_page("pkg-1.0-py3-none-any.whl"))
    settings = PipSettings(indexes=(simple.as_uri(),))
    listed, gone = check([Requirement("pkg", "1.0"), Requirement("other", "1.0")], settings)
    assert listed.summary() == f"listed ({simple.as_uri()})"
    assert gone.summary() == "gone (versions listed: none)"
    missing = PipSettings(indexes=((tmp_path / "nowhere").as_uri(),))
    [unknown] = check([Requirement("pkg", "1.0")], missing)
    assert (
        unknown.summary()
        == f"could not ask: {missing.indexes[0]}: no folder {tmp_path / 'nowhere'}"
    )


def test_pip_config_list_is_merged_as_pip_download_merges_it() -> None:
    text = "\n".join(
        [
            ":env:.find-links='/opt/wheels'",
            "download.index-url='https://mirror.example/simple'",
            "global.index-url='https://ignored.example/simple'",
            "global.extra-index-url='file:///a/simple\\nfile:///b/simple'",
            "install.index-url='https://install-only.example/simple'",
            "global.cert='/etc/ca.pem'",
        ]
    )
    settings = settings_from(parse_config_list(text), "test")
    assert settings.indexes == (
        "https://mirror.example/simple",
        "file:///a/simple",
        "file:///b/simple",
    )
    assert settings.find_links == ("/opt/wheels",) and settings.cert == "/etc/ca.pem"
    env_wins = parse_config_list(
        "global.index-url='a'\n:env:.index-url='b'\ndownload.index-url='c'"
    )
    assert env_wins == {"index-url": "b"}
    assert settings_from({"no-index": "1", "index-url": "x"}, "t").indexes == ()
    assert settings_from({}, "t").indexes == (DEFAULT_INDEX,)


def test_pip_itself_is_asked_for_its_settings() -> None:
    env = {
        **os.environ,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "https://u:secret@m.example/simple/",
    }
    env.pop("PIP_FIND_LINKS", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    settings = pip_settings(env)
    assert settings.source == "pip config list"
    assert settings.indexes == ("https://u:secret@m.example/simple",)
    assert settings.describe() == "index https://u:****@m.example/simple (pip config list)"
    assert redact("https://pypi.org/simple") == "https://pypi.org/simple"
