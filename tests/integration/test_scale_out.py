"""Scale out on the servers users run: the store on S3, MLflow and Prefect on PostgreSQL,
chunked work on a Dask cluster. Every server is real and on loopback, started once for the
session (`scale_out_servers.all_servers`), and `tp` runs as a user types it, in a working
directory that is not the Dask workers' and with the AWS variables the workers lack."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request

import pytest

from storage.errors import StoreError
from tests.conftest import tiny_cli_args
from tests.integration.helpers import BIN, free_port, process, wait_for
from tests.integration.scale_out_servers import BUCKET, SECRET, all_servers, s3_env
from tests.tp_models.track_files import tud_campus

pytestmark = pytest.mark.slow

DASK = "--dask-address"
TRAIN = ["--max-epochs", "1", "--patience", "1", "--d-model", "16", "--n-layers", "1"]


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    with all_servers(tmp_path_factory.mktemp("scale-out")) as running:
        yield running


def _ok(done) -> str:
    assert done.returncode == 0, (
        f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert SECRET not in done.stdout + done.stderr  # credentials never printed
    return done.stdout


def _json(text: str):
    """The JSON a command printed, after any lines MLflow prints first ("View run ...")."""
    start = re.search(r"^[\[{]", text, re.MULTILINE)
    assert start, text[-2000:]
    return json.loads(text[start.start() :])


def _refused(done, *words: str) -> str:
    assert done.returncode == 2, (
        f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )
    error = done.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in error, error
    assert SECRET not in done.stdout + done.stderr
    return error


@pytest.fixture(scope="session")
def trained(servers, tmp_path_factory):
    """generate (with tracks) on the Dask cluster into s3://, then train against the MLflow
    server: what the other pipeline tests start from."""
    cwd = tmp_path_factory.mktemp("user")
    store = f"s3://{BUCKET}/pipeline.zarr"
    _ok(servers.tp(*tiny_cli_args(store), DASK, servers.dask, cwd=cwd))  # and its tracks
    train = _json(_ok(servers.tp("train", "--store", store, *TRAIN, cwd=cwd)))
    return {"store": store, "cwd": cwd, "train": train}


def test_whole_pipeline_on_every_server_at_once(servers, trained):
    """Store on S3, MLflow on PostgreSQL with artifacts on S3, Prefect on PostgreSQL, Dask
    workers that have neither the AWS variables nor the user's working directory."""
    store, cwd = trained["store"], trained["cwd"]
    info = _json(_ok(servers.tp("info", "--store", store, "--json", "--verify", cwd=cwd)))
    assert info["complete"] and not info.get("damaged_groups")
    report = _json(
        _ok(servers.tp("evaluate", "--store", store, "--out", "report", "--json", cwd=cwd))
    )
    assert (cwd / "report").is_dir() and report
    # The trained model made @champion by hand, then a gated night: a gradient-boosting
    # challenger judged against it; both decisions recorded on the PostgreSQL registry.
    version = str(trained["train"]["model_version"])
    gate = ["--not-worse", "roc_auc_full", "p_d_at_fcr_1pct_full", "--out", "retrain"]
    hand = _json(_ok(servers.tp("promote", version, "--store", store, *gate, cwd=cwd)))
    assert hand["outcome"] == "first champion" and hand["champion"] == version
    night = _json(
        _ok(
            servers.tp(
                "retrain", "--store", store, *gate, "--families", "gradient_boosting", cwd=cwd
            )
        )
    )
    assert night["champion_before"] == version and night["outcome"] in {"promoted", "champion kept"}
    assert set(night["metrics"]) == {version, night["challenger"]}
    assert night["families"] == {version: "transformer", night["challenger"]: "gradient_boosting"}
    assert night["champion"] == (night["challenger"] if night["promoted"] else version)
    # Relative tracker files and output folder, two files: one task each on the workers.
    for name in ("a.txt", "b.txt"):
        shutil.copy(tud_campus("test"), cwd / name)
    scored = _json(
        _ok(servers.tp("score", "a.txt", "b.txt", "--out", "scored", DASK, servers.dask, cwd=cwd))
    )
    assert sorted(p.name for p in (cwd / "scored").iterdir()) == ["a.txt", "b.txt"]
    assert scored["rows"] == 2 * len(tud_campus("test").read_text().splitlines())
    # The champion the gate chose, served from the registry (weights through MLflow's S3 proxy).
    port = free_port()
    serve = [str(BIN / "mlflow"), "models", "serve", "-m", "models:/track-persistence@champion"]
    serve += ["--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
    env = servers.tp_env(PATH=f"{BIN}:{os.environ.get('PATH', '')}")  # mlflow runs `uvicorn`
    with process(serve, log=servers.logs / "serve.log", base_env=env) as server:
        wait_for(lambda: _ping(port) or server.poll() is not None, 120, "mlflow models serve")
        assert server.poll() is None, (servers.logs / "serve.log").read_text()[-2000:]
        rows = [
            {
                "frame": f,
                "id": 1,
                "bb_left": 10 + 2 * f,
                "bb_top": 20,
                "bb_width": 8,
                "bb_height": 8,
                "conf": 1,
            }
            for f in range(1, 5)
        ]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": rows}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            predictions = json.loads(reply.read())["predictions"]
    assert len(predictions) == 4 and all(0 <= p["p_persistent"] <= 1 for p in predictions)
    for log in servers.logs.iterdir():  # the workers got the credentials, never logged them
        assert SECRET not in log.read_text(errors="replace"), log.name


def _ping(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


# ---- the defects of issue 22, each one failed before its fix ------------------------------


def test_missing_bucket_or_unreachable_endpoint_is_one_sentence_before_services(servers, tmp_path):
    """A dead PREFECT_API_URL: had the command got as far as its services, it would say so."""
    dead = {"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    missing = servers.tp(*tiny_cli_args("s3://no-such-bucket/s.zarr"), cwd=tmp_path, **dead)
    _refused(missing, "bucket 'no-such-bucket'", "does not exist")
    reading = servers.tp("train", "--store", "s3://no-such-bucket/s.zarr", cwd=tmp_path, **dead)
    _refused(reading, "bucket 'no-such-bucket'", "does not exist")
    endpoint = f"http://127.0.0.1:{free_port()}"
    unreachable = servers.tp(
        *tiny_cli_args(f"s3://{BUCKET}/s.zarr"), cwd=tmp_path, AWS_ENDPOINT_URL=endpoint, **dead
    )
    _refused(unreachable, "cannot be reached", endpoint)


def test_overwrite_on_s3_replaces_the_store(servers, tmp_path):
    store = f"s3://{BUCKET}/overwrite.zarr"
    dask = (DASK, servers.dask)
    first = _json(
        _ok(servers.tp(*tiny_cli_args(store), "--no-extract-tracks", *dask, cwd=tmp_path))
    )
    args = [*tiny_cli_args(store), "--seed", "1", "--no-extract-tracks", *dask]
    second = _json(_ok(servers.tp(*args, "--overwrite", cwd=tmp_path)))
    assert second["fingerprint"] != first["fingerprint"] and second["videos_written"] == 12
    import s3fs

    fs = s3fs.S3FileSystem(
        endpoint_url=servers.s3, key=s3_env(servers.s3)["AWS_ACCESS_KEY_ID"], secret=SECRET
    )
    assert not fs.exists(f"{BUCKET}/overwrite.zarr.tp-replaced")  # the old one is gone
    assert not fs.exists(f"{BUCKET}/overwrite.zarr.tp-lock")  # and the lock released


def test_failed_overwrite_on_s3_puts_the_old_store_back(servers, monkeypatch):
    """`replacing` on an object store: a run failing before its first chunk restores it."""
    import s3fs
    import zarr

    from storage.chunked import PROJECT, SCHEMA_VERSION
    from storage.store import replacing

    for key, value in s3_env(servers.s3).items():
        monkeypatch.setenv(key, value)
    store = f"s3://{BUCKET}/restore.zarr"
    options = {"client_kwargs": {"endpoint_url": servers.s3}}
    group = zarr.open_group(store, mode="w", zarr_format=3, storage_options=options)
    group.attrs.update({"project": PROJECT, "schema_version": SCHEMA_VERSION, "marker": "old"})
    group.create_array("a", shape=(4,), dtype="int32", fill_value=7)[:] = [1, 2, 3, 4]
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    with pytest.raises(RuntimeError), replacing(store, overwrite=True):
        assert not fs.exists(f"{BUCKET}/restore.zarr/zarr.json")  # moved aside: path free
        raise RuntimeError("the run failed before its first chunk")
    back = zarr.open_group(store, mode="r", zarr_format=3, storage_options=options)
    assert back.attrs["marker"] == "old" and back["a"][:].tolist() == [1, 2, 3, 4]


def test_relative_store_with_dask_address(servers, tmp_path):
    """Workers run elsewhere (their own cwd): the store's path reaches them absolute."""
    done = servers.tp(
        *tiny_cli_args("data/rel.zarr"), "--no-extract-tracks", DASK, servers.dask, cwd=tmp_path
    )
    assert _json(_ok(done))["videos_written"] == 12
    assert (tmp_path / "data" / "rel.zarr" / "zarr.json").exists()


def test_concurrent_writers_of_an_s3_store_are_refused(servers, monkeypatch):
    """The lock object is created with a conditional put: one writer gets it, one is refused."""
    from storage.lock import store_lock

    for key, value in s3_env(servers.s3).items():
        monkeypatch.setenv(key, value)
    store = f"s3://{BUCKET}/locked.zarr"
    with (
        store_lock(store, "generate"),
        pytest.raises(StoreError, match=r"being written by `tp generate`"),
        store_lock(store, "tracks"),
    ):
        pass
    with store_lock(store, "tracks"):  # released: the next writer gets it
        pass
