"""Where a store or an output lives: local paths versus URLs, and the folders a command makes.

A store, a report folder or an MLflow SQLite file may name folders that do not exist yet
(`data/store.zarr` on a fresh clone). They are made, parents included, as `zarr` makes a
store's folders; only a parent that cannot be made (a file in the way, a read-only folder)
is the user's to change. Folders a command made and left empty are removed again when it
fails, so a refused run leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from storage.errors import StoreError

# Here, not in storage.store: the CLI and the specs name it without importing Zarr (~0.8 s).
DEFAULT_STORE = "data/store.zarr"

FILE_SCHEME = "file://"


def is_local(url: str) -> bool:
    """A plain path or a file:// URL (anything else is an fsspec URL: s3://, memory://, …)."""
    return "://" not in url or url.startswith(FILE_SCHEME)


def local_path(url: str) -> str:
    """The absolute path of a local store or file URL, without a trailing slash."""
    return os.path.abspath(url.removeprefix(FILE_SCHEME).rstrip("/") or "/")


def make_folders(folder: str, what: str) -> list[str]:
    """Make `folder` and its missing parents; return the ones made, outermost first.

    `what` names the parameter in the one sentence raised when a parent cannot be made.
    """
    folder = os.path.abspath(folder)
    missing: list[str] = []
    existing = folder
    while not os.path.exists(existing):
        missing.append(existing)
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise StoreError(
            f"{what}: cannot create {folder!r}: {existing!r} is a file, not a folder; "
            "choose another path."
        )
    made: list[str] = []
    for each in reversed(missing):
        try:
            os.mkdir(each)
        except FileExistsError:
            continue  # made meanwhile by another process: not ours to remove
        except OSError as exc:
            remove_empty(made)
            raise StoreError(
                f"{what}: cannot create the folder {each!r} ({exc.strerror}); "
                "choose a path in a writable folder."
            ) from None
        made.append(each)
    return made


def remove_empty(folders: Sequence[str]) -> None:
    """Remove folders made by `make_folders` that are still empty, innermost first."""
    for folder in reversed(folders):
        with suppress(OSError):
            os.rmdir(folder)


@contextmanager
def folders_for(folder: str, what: str) -> Iterator[list[str]]:
    """`make_folders` for the duration of a block: what it made is removed again if the block
    fails and left it empty (a succeeding block keeps them: its outputs live there)."""
    made = make_folders(folder, what)
    try:
        yield made
    except BaseException:
        remove_empty(made)
        raise


def require_writable(path: str, what: str = "store") -> None:
    """Probe the nearest existing folder with a real write (permission bits lie to root);
    `what` names the parameter in the error."""
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if os.path.exists(path) and os.path.isdir(path):
        parent = path
    if not os.path.isdir(parent):
        raise StoreError(
            f"{what}: cannot create {path!r}: {parent!r} is a file, not a folder; "
            "choose another path."
        )
    try:
        handle, probe = tempfile.mkstemp(dir=parent, prefix=".tp-write-probe-")
    except OSError as exc:
        raise StoreError(
            f"{what}: cannot write to {path!r} ({exc.strerror}); choose a writable path."
        ) from None
    os.close(handle)
    os.remove(probe)


def absolute(url: str) -> str:
    """A local path made absolute (in this process's working directory); a URL unchanged.

    Done before a path is handed to another process (a Dask worker resolves a relative path
    in its own working directory, which is not the user's)."""
    return local_path(url) if is_local(url) else url


# ---- object stores ------------------------------------------------------------------------
#
# Access to an object store (endpoint, credentials, region) comes from the standard
# configuration: the AWS variables botocore reads (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...,
# or ~/.aws via AWS_PROFILE) and fsspec's own (FSSPEC_S3_* variables, fsspec's config
# folder). `storage_options` turns them into the options passed to every open, here and
# on every Dask worker, which gets the same variables from the driver (`flows.runner`).
# Neither the options nor the variables are ever logged: `redacted` shows which are set.

# Variables forwarded to Dask workers: the AWS SDK's and fsspec's, nothing else.
STORAGE_ENV_PREFIXES = ("AWS_", "FSSPEC_")
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "KEY_ID", "KEY")

# Before services start, an unreachable endpoint must fail in seconds, not after botocore's
# default 60 s connect timeout and retries.
CHECK_CONNECT_TIMEOUT_S = 5
CHECK_READ_TIMEOUT_S = 20


def protocol(url: str) -> str:
    return "file" if is_local(url) else url.split("://", 1)[0]


def storage_env() -> dict[str, str]:
    """The environment variables that configure object-store access in this process."""
    return {k: v for k, v in os.environ.items() if k.startswith(STORAGE_ENV_PREFIXES)}


def redacted(options: dict[str, object]) -> dict[str, object]:
    """Options (or variables) as they may be shown: every secret's value replaced."""
    shown: dict[str, object] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            shown[key] = redacted(value)
        elif any(word in key.upper() for word in SECRET_WORDS):
            shown[key] = "***"
        else:
            shown[key] = value
    return shown


def storage_options(url: str) -> dict[str, object]:
    """The fsspec options for opening `url` ({} for a local path), from the environment.

    s3://: the endpoint (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, which older botocore
    ignores), the region and the credentials are read by botocore itself from the same
    variables; fsspec's FSSPEC_S3_* variables and config files are merged in by fsspec.
    Explicit here only what botocore may not read: the endpoint.
    """
    if is_local(url):
        return {}
    options: dict[str, object] = {}
    if protocol(url) in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
    return options


def endpoint_of(url: str) -> str:
    """Where a remote store's requests go, for messages (never a credential)."""
    client = storage_options(url).get("client_kwargs") or {}
    endpoint = client.get("endpoint_url") if isinstance(client, dict) else None
    return str(endpoint) if endpoint else f"the default {protocol(url)} endpoint"


def remote_filesystem(url: str, what: str = "store", check: bool = False):  # noqa: ANN201
    """(filesystem, path) of a remote URL with `storage_options`; one sentence if its
    filesystem package is missing. `check`: short timeouts and no retries (pre-start)."""
    try:
        from fsspec.core import url_to_fs

        options = dict(storage_options(url))
        if check and protocol(url) in ("s3", "s3a"):
            options["config_kwargs"] = {
                "connect_timeout": CHECK_CONNECT_TIMEOUT_S,
                "read_timeout": CHECK_READ_TIMEOUT_S,
                "retries": {"max_attempts": 1},
            }
            options["skip_instance_cache"] = True
        return url_to_fs(url, **options)
    except ImportError as exc:
        scheme = protocol(url)
        extra = " (`pip install 'track-persistence[s3]'`)" if scheme in ("s3", "s3a") else ""
        raise StoreError(
            f"{what}: {url!r} needs a filesystem package for {scheme}:// that is not "
            f"installed ({exc}); install it{extra}, on every Dask worker too."
        ) from None
    except ValueError as exc:  # an unknown protocol
        raise StoreError(f"{what}: {url!r} is not a path or a known URL ({exc}).") from None


def _bucket(path: str) -> str:
    return path.split("/", 1)[0]


def check_remote(url: str, what: str = "store", writable: bool = True) -> None:
    """An object store's bucket answers and exists (and takes a write, with `writable`):
    one sentence each, in seconds, before any service starts."""
    fs, path = remote_filesystem(url, what, check=True)
    bucket = _bucket(path)
    endpoint = endpoint_of(url)
    try:
        fs.info(bucket)
    except FileNotFoundError:
        raise StoreError(
            f"{what}: the bucket {bucket!r} of {url!r} does not exist at {endpoint}; create it "
            f"(e.g. `aws s3 mb s3://{bucket}`) or choose another bucket."
        ) from None
    except PermissionError as exc:
        raise StoreError(
            f"{what}: access to the bucket {bucket!r} of {url!r} is denied ({_reason(exc)}); "
            "check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) or choose another bucket."
        ) from None
    except Exception as exc:  # connection refused, DNS, timeouts: botocore's own types
        raise StoreError(
            f"{what}: the object store of {url!r} cannot be reached at {endpoint} "
            f"({_reason(exc)}); check AWS_ENDPOINT_URL and that the server is up."
        ) from None
    if writable:
        probe = f"{path.rstrip('/')}.tp-write-probe-{uuid.uuid4().hex[:12]}"
        try:
            fs.pipe_file(probe, b"")
            fs.rm_file(probe)
        except Exception as exc:
            raise StoreError(
                f"{what}: cannot write to {url!r} ({_reason(exc)}); check the credentials' "
                "permissions on the bucket or choose a writable store."
            ) from None


def _reason(exc: BaseException) -> str:
    """An exception's type and first line, short (botocore messages carry no secrets)."""
    text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
