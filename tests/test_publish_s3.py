"""`publish --to s3://...` and `open_archive("s3://...")`, against moto's S3 server on
127.0.0.1 (started once per session). Archives are made with tests/archive_factory.py.

What was uploaded is observed at the server: every request moto's server answers is
logged (werkzeug's request log), so the tests count the PUTs it received per key.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pandas.testing import assert_frame_equal

from crawler.commands.cli import main
from pipelines.core.compaction import CompactionPolicy
from pipelines.core.schema import TABLES
from pipelines.core.storage import s3_options
from pipelines.core.store import ArchiveStore
from pipelines.notebook import open_archive
from tests.archive_factory import at, commit_run, make_page
from tests.crawl_runner import run_cli, run_main

README = Path(__file__).resolve().parents[1] / "README.md"
_REQUEST = re.compile(r'"(?P<method>[A-Z]+) /(?P<path>[^ ?]+)(?:\?[^ ]*)? HTTP/')


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, for the whole session: its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_environment(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The AWS_* variables pointing at moto's server (its endpoint URL)."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    return moto_endpoint


@pytest.fixture
def bucket(aws_environment: str) -> str:
    """A new bucket on moto's server."""
    name = f"archive-{secrets.token_hex(4)}"
    _client(aws_environment).create_bucket(Bucket=name)
    return name


def _client(endpoint: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _objects(endpoint: str, bucket: str, prefix: str) -> dict[str, int]:
    """Size of every object under `prefix/`, by key relative to it (boto3, not pyarrow)."""
    client = _client(endpoint)
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(  # type: ignore[attr-defined]
        Bucket=bucket, Prefix=f"{prefix}/"
    ):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1 :]] = item["Size"]
    return found


def _uploads(records: list[logging.LogRecord], bucket: str, prefix: str) -> list[str]:
    """Keys (relative to `prefix`) the server received uploads for, in order, from its
    request log: a PUT of an object or of a part of one (a multipart upload)."""
    keys: list[str] = []
    for record in records:
        match = _REQUEST.search(record.getMessage())
        if match and match["method"] == "PUT" and match["path"].startswith(f"{bucket}/{prefix}/"):
            key = match["path"][len(bucket) + len(prefix) + 2 :]
            if key not in keys:
                keys.append(key)
    return keys


def _committed_paths(root: Path) -> set[str]:
    """What the local archive committed, from its manifest files (read here as JSON)."""
    paths = {"_archive.json"}
    for manifest in sorted((root / "_runs").glob("*.json")):
        paths.add(f"_runs/{manifest.name}")
        data = json.loads(manifest.read_text(encoding="utf-8"))
        paths.update(entry["path"] for entry in data["files"])
        if data.get("warc"):
            paths.add(data["warc"]["path"])
    for manifest in sorted((root / "_compactions").glob("*.json")):
        paths.add(f"_compactions/{manifest.name}")
        data = json.loads(manifest.read_text(encoding="utf-8"))
        paths.update(table["output"]["path"] for table in data["tables"])
    return paths


def _two_runs(root: Path) -> list[str]:
    first = commit_run(
        root,
        at(date(2024, 1, 10)),
        [make_page("asthma"), make_page("flu"), make_page("asma", language="es")],
    )
    second = commit_run(
        root,
        at(date(2024, 2, 10)),
        [
            make_page("asthma", last_updated=date(2024, 2, 1), text="Asthma, revised."),
            make_page("asma", language="es"),
        ],
        gone=[("en", "flu")],
    )
    return [first, second]


def _publish(root: Path, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["publish", "--archive", str(root), "--to", url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_open_archive_on_s3_reads_what_was_published(
    tmp_path: Path, bucket: str, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    first, second = _two_runs(root)
    # Never published: leftovers of an uncommitted run, the lock, a stray file.
    (root / "_staging" / "20990101T000000Z-dead").mkdir(parents=True)
    (root / "_staging" / "20990101T000000Z-dead" / "topics.parquet").write_bytes(b"partial")
    (root / "topics" / "part-20990101T000000Z-dead.parquet").write_bytes(b"uncommitted")
    (root / "notes.txt").write_text("mine", encoding="utf-8")

    code, out, err = _publish(root, f"s3://{bucket}/team/medlineplus", capsys)

    assert (code, err) == (0, "")
    published = _objects(moto_endpoint, bucket, "team/medlineplus")
    assert set(published) == _committed_paths(root)
    assert f"{len(published)} files uploaded" in out
    local, remote = open_archive(root), open_archive(f"s3://{bucket}/team/medlineplus")
    assert str(remote.path) == f"s3://{bucket}/team/medlineplus"
    assert remote.run_ids == (first, second)
    assert_frame_equal(local.runs(), remote.runs())
    assert_frame_equal(local.observations(), remote.observations())
    assert_frame_equal(local.topics(), remote.topics())
    assert len(remote.topics()) == 2  # flu is gone
    assert_frame_equal(local.links(), remote.links())
    january = date(2024, 1, 31)
    assert_frame_equal(local.topics(as_of=january), remote.topics(as_of=january))
    assert len(remote.topics(as_of=january)) == 3
    assert_frame_equal(local.topics(as_of=first), remote.topics(as_of=first))
    assert_frame_equal(local.history("asthma"), remote.history("asthma"))
    assert_frame_equal(local.journal_articles(), remote.journal_articles())
    assert main(["runs", "--archive", f"s3://{bucket}/team/medlineplus", "--format", "json"]) == 0
    assert [run["run_id"] for run in json.loads(capsys.readouterr().out)] == [first, second]


def test_a_second_publish_uploads_only_the_new_runs_files(
    tmp_path: Path,
    bucket: str,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, url = tmp_path / "archive", f"s3://{bucket}/medlineplus"
    _two_runs(root)
    assert _publish(root, url, capsys)[0] == 0
    before = _objects(moto_endpoint, bucket, "medlineplus")
    third = commit_run(root, at(date(2024, 3, 10)), [make_page("flu", text="Flu is back.")])
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="werkzeug"):
        code, out, _ = _publish(root, url, capsys)

    assert code == 0
    manifest = json.loads((root / "_runs" / f"{third}.json").read_text(encoding="utf-8"))
    new_files = {entry["path"] for entry in manifest["files"]}
    assert len(new_files) == len(TABLES)  # one file per table
    uploaded = _uploads(caplog.records, bucket, "medlineplus")
    assert set(uploaded) == {*new_files, f"_runs/{third}.json"}
    assert uploaded[-1] == f"_runs/{third}.json"  # the manifest after its files
    assert f"{len(TABLES) + 1} files uploaded" in out
    assert f"{len(before)} already there" in out
    assert open_archive(url).run_ids[-1] == third
    assert len(open_archive(url).topics()) == 3

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        code, out, _ = _publish(root, url, capsys)
    assert code == 0
    assert _uploads(caplog.records, bucket, "medlineplus") == []
    assert "0 files uploaded" in out


def test_compacted_archives_publish_replaced_files_and_manifests_in_commit_order(
    tmp_path: Path,
    bucket: str,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, url = tmp_path / "archive", f"s3://{bucket}/compacted"
    runs = _two_runs(root)
    with ArchiveStore.open(root) as store:
        (compaction,) = store.compact(CompactionPolicy(fanout=2))
    assert (root / "_retired" / "topics" / f"part-{runs[0]}.parquet").exists()
    # A replaced file no longer kept (as a vacuum would delete it): no reader needs it.
    (root / "_retired" / "links" / f"part-{runs[0]}.parquet").unlink()

    with caplog.at_level(logging.INFO, logger="werkzeug"):
        code, _, err = _publish(root, url, capsys)

    assert code == 0
    assert err.startswith("warning: 1 files replaced by compactions were not uploaded")

    uploaded = _uploads(caplog.records, bucket, "compacted")
    manifests = [key for key in uploaded if key.startswith(("_runs/", "_compactions/"))]
    assert manifests == [
        f"_runs/{runs[0]}.json",
        f"_runs/{runs[1]}.json",
        f"_compactions/{compaction.compaction_id}.json",
    ]
    data = [key for key in uploaded if key.endswith((".parquet", ".gz"))]
    first_manifest = uploaded.index(manifests[0])
    assert all(uploaded.index(key) < first_manifest for key in data if "_catalog/" not in key)
    published = _objects(moto_endpoint, bucket, "compacted")
    assert f"topics/part-{runs[0]}.parquet" in published  # replaced, kept at its path
    assert not any(key.startswith("_retired/") for key in published)
    assert f"links/part-{runs[0]}.parquet" not in published
    assert any(key.startswith("_catalog/") for key in published)
    local, remote = open_archive(root), open_archive(url)
    assert_frame_equal(local.topics(), remote.topics())
    assert_frame_equal(local.topics(as_of=runs[0]), remote.topics(as_of=runs[0]))
    assert_frame_equal(local.observations(), remote.observations())
    assert_frame_equal(local.links(), remote.links())


def test_publishing_to_a_prefix_holding_another_archive_is_refused(
    tmp_path: Path, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{bucket}/shared"
    commit_run(tmp_path / "one", at(date(2024, 1, 10)), [make_page("asthma")])
    commit_run(tmp_path / "two", at(date(2024, 1, 11)), [make_page("flu")])
    assert _publish(tmp_path / "one", url, capsys)[0] == 0

    code, _out, err = _publish(tmp_path / "two", url, capsys)

    assert code == 2
    assert err.startswith(f"error: {url} holds another archive")
    assert err.count("\n") == 1
    assert open_archive(url).topics()["slug"].tolist() == ["asthma"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_publishing_to_an_unreachable_endpoint_exits_3_with_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_run(tmp_path / "archive", at(date(2024, 1, 10)), [make_page("asthma")])
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    result = run_main("publish", "--archive", tmp_path / "archive", "--to", "s3://bucket/x")

    assert result.returncode == 3, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith("error: cannot list s3://bucket/x (endpoint http://127.0.0.1:")


def test_reading_from_an_unreachable_endpoint_exits_3_with_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    assert main(["runs", "--archive", "s3://bucket/x"]) == 3

    err = capsys.readouterr().err
    assert err.startswith("error: cannot read s3://bucket/x/_archive.json (endpoint http://")
    assert err.count("\n") == 1


@pytest.mark.parametrize("destination", ["/srv/archive", "https://bucket/x", "s3://", "s3:/b"])
def test_a_destination_that_is_not_an_s3_url_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], destination: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["publish", "--archive", str(tmp_path), "--to", destination])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --to:")
    assert err.count("\n") == 1


def test_the_endpoint_and_region_come_from_the_aws_variables() -> None:
    assert s3_options({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}) == {
        "endpoint_override": "127.0.0.1:9000",
        "scheme": "http",
    }
    assert s3_options(
        {
            "AWS_ENDPOINT_URL": "https://other.example",
            "AWS_ENDPOINT_URL_S3": "https://s3.example.org/",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-central-1",
        }
    ) == {"endpoint_override": "s3.example.org", "scheme": "https", "region": "eu-central-1"}
    assert s3_options({}) == {}


def test_the_readme_s3_example_reads_a_published_bucket(
    tmp_path: Path,
    aws_environment: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (code,) = re.findall(r"```python s3\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    (url,) = set(re.findall(r"s3://team-bucket/\w+", code))
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")  # for Polars, as the README says
    _client(aws_environment).create_bucket(Bucket="team-bucket")
    _two_runs(tmp_path / "archive")
    assert _publish(tmp_path / "archive", url, capsys)[0] == 0

    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "asma" in completed.stdout
    assert "asthma" in completed.stdout


def test_an_archived_page_is_read_from_the_bucket(
    tmp_path: Path, bucket: str, moto_endpoint: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Every file goes up byte for byte (a `.gz` WARC file is not compressed again), and
    `page` reads the raw page's WARC record from S3 at its offset, as from a file."""
    site = Path(__file__).resolve().parent / "fixtures" / "site"
    root = tmp_path / "archive"
    crawled = run_cli("crawl", "--base-url", site.as_uri(), "--archive", root, "--delay", "0")
    assert crawled.returncode == 0, crawled
    assert main(["publish", "--archive", str(root), "--to", f"s3://{bucket}/pages"]) == 0
    capsysbinary.readouterr()
    published = _objects(moto_endpoint, bucket, "pages")
    assert published == {path: (root / path).stat().st_size for path in published}

    assert main(["page", "asthma", "--archive", f"s3://{bucket}/pages", "--out", "-"]) == 0
    assert capsysbinary.readouterr().out == (site / "asthma.html").read_bytes()
