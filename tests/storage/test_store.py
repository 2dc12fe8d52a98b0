"""`Store`: which tracks a command reads when the user names none, and errors that name what
exists and what to run, on real stores made by the project's own flows."""

from __future__ import annotations

import shutil

import pytest

from flows.extract_tracks import extract_tracks
from storage.errors import StoreError
from storage.store import LAST_TRACKS, Store
from storage.tracks import tracker_key
from tasks.specs import TracksSpec
from tp_models.perception.tracker import TrackerConfig

OTHER_TRACKER = {"max_misses": 0}


@pytest.fixture(scope="module")
def two_tracks(tiny_store, tmp_path_factory) -> dict[str, str]:
    """A copy of the tiny store with a second tracks group, extracted after the first."""
    url = str(tmp_path_factory.mktemp("two_tracks") / "store.zarr")
    shutil.copytree(tiny_store, url)
    first = Store.open(url).tracks().group.basename
    spec = TracksSpec.model_validate(
        {"store": url, "tracker": OTHER_TRACKER, "compute": {"workers": 1}}
    )
    extract_tracks(spec)
    second = tracker_key(TrackerConfig(**OTHER_TRACKER).to_dict())
    return {"url": url, "first": first, "second": second}


def test_default_tracks_are_the_last_extracted(tiny_store, two_tracks):
    assert Store.open(tiny_store).tracks().group.basename == two_tracks["first"]
    store = Store.open(two_tracks["url"])
    assert store.tracks_keys() == sorted([two_tracks["first"], two_tracks["second"]])
    assert store.tracks().group.basename == two_tracks["second"]
    assert store.tracks(two_tracks["first"]).group.basename == two_tracks["first"]
    assert store.tracks().config["tracker"]["max_misses"] == 0


def test_several_tracks_and_no_default_names_them_and_asks_to_pick(two_tracks, tmp_path):
    url = str(tmp_path / "store.zarr")
    shutil.copytree(two_tracks["url"], url)
    del Store.open(url).dataset.group.attrs[LAST_TRACKS]
    with pytest.raises(StoreError) as error:
        Store.open(url).tracks()
    message = str(error.value)
    assert two_tracks["first"] in message and two_tracks["second"] in message
    assert "--tracks" in message and message.count("\n") == 0
    # Naming one still works without a default.
    assert Store.open(url).tracks(two_tracks["first"]).group.basename == two_tracks["first"]


def test_a_missing_tracks_key_names_what_exists(two_tracks):
    with pytest.raises(StoreError) as error:
        Store.open(two_tracks["url"]).tracks("0123abcd")
    message = str(error.value)
    assert "'0123abcd'" in message and "tp tracks" in message
    keys = ", ".join(sorted([two_tracks["first"], two_tracks["second"]]))
    assert f"complete here: {keys}" in message


def test_missing_features_say_to_run_cache_features(tiny_store):
    with pytest.raises(StoreError, match="tp cache-features") as error:
        Store.open(tiny_store).features("feedbeef")
    assert "feedbeef" in str(error.value)


def test_a_missing_group_and_a_missing_store_are_store_errors(tiny_store, tmp_path):
    with pytest.raises(StoreError, match="no tracks group 'tracks/nope'"):
        Store.open(tiny_store).group("tracks/nope", "tracks")
    with pytest.raises(StoreError, match="tp generate"):
        Store.open(str(tmp_path / "none.zarr"))
