"""Local paths versus URLs for remote stores: absolute paths, options from the environment,
secrets never shown (the S3 server itself: tests/integration/test_scale_out.py)."""

from __future__ import annotations

import os

import pytest

from storage.errors import StoreError
from storage.paths import absolute, redacted, remote_filesystem, storage_env, storage_options
from tasks.specs import ScoreSpec


def test_local_paths_become_absolute_and_urls_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute("data/s.zarr") == str(tmp_path / "data" / "s.zarr")
    assert absolute("file://data/s.zarr/") == str(tmp_path / "data" / "s.zarr")
    assert absolute("s3://bucket/s.zarr") == "s3://bucket/s.zarr"
    spec = ScoreSpec(files=("a.txt",))
    assert spec.files == (str(tmp_path / "a.txt"),) and spec.out == str(tmp_path / "scored")


def test_storage_options_come_from_the_standard_variables(monkeypatch):
    for key in list(os.environ):
        if key.startswith(("AWS_", "FSSPEC_")):
            monkeypatch.delenv(key)
    assert storage_options("s3://b/s.zarr") == {} and storage_options("data/s.zarr") == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    assert storage_options("s3://b/s.zarr") == {
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}
    }
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9001")  # the S3-specific wins
    assert storage_options("s3://b/s.zarr")["client_kwargs"]["endpoint_url"].endswith("9001")
    shown = redacted(storage_env())
    assert shown["AWS_SECRET_ACCESS_KEY"] == "***" and "very-secret" not in repr(shown)
    assert shown["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"


def test_unknown_protocol_is_one_sentence():
    with pytest.raises(StoreError, match="not a path or a known URL"):
        remote_filesystem("nosuchproto://b/s.zarr")
