"""The state store client: Dapr's state API (against the stand-in sidecar) and the
database-backed store of the embedded default, held to one interface."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone as django_timezone

from events import state as state_module
from events.dapr import DaprError
from events.models import StateEntry
from events.state import (
    DaprStateStore,
    DatabaseStateStore,
    InvalidStateKey,
    StateConflict,
    StateOperation,
    state_store,
)
from tests.events.helpers import start_sidecar


@dataclass
class Store:
    kind: str
    client: Any
    advance: Any  # advance(seconds): move the store's clock forward
    sidecar: Any = None


class ShiftedClock:
    """Stands in for ``django.utils.timezone`` inside events.state, ``offset`` seconds ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> dt.datetime:
        return django_timezone.now() + dt.timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(params=["database", "dapr"])
def store(request, db, monkeypatch) -> Store:
    if request.param == "database":
        clock = ShiftedClock()
        monkeypatch.setattr(state_module, "timezone", clock)
        return Store("database", DatabaseStateStore(), clock.advance)
    sidecar = request.getfixturevalue("fake_dapr")
    return Store("dapr", DaprStateStore(), sidecar.advance_clock, sidecar)


def test_the_store_follows_the_transport_setting(settings, db):
    assert isinstance(state_store(), DatabaseStateStore)
    settings.DAPR_ENABLED = True
    assert isinstance(state_store(), DaprStateStore)


def test_a_missing_key_is_none(store):
    assert store.client.get("poll:last") is None


def test_save_then_get(store):
    value = {"at": "2030-01-01T00:00:00Z", "ids": [1, 2], "nested": {"ok": True}}
    store.client.save("poll:last", value)

    item = store.client.get("poll:last")

    assert item.key == "poll:last"
    assert item.value == value
    assert item.etag
    if store.sidecar:
        assert store.sidecar.state()["poll:last"] == value


def test_a_save_without_etag_overwrites_and_changes_the_etag(store):
    store.client.save("poll:last", 1)
    first = store.client.get("poll:last")
    store.client.save("poll:last", 2)
    second = store.client.get("poll:last")
    assert second.value == 2
    assert second.etag != first.etag


def test_a_save_with_the_current_etag_wins_and_a_stale_one_conflicts(store):
    store.client.save("counter:a", 1)
    stale = store.client.get("counter:a").etag
    store.client.save("counter:a", 2, etag=stale)
    assert store.client.get("counter:a").value == 2

    with pytest.raises(StateConflict):
        store.client.save("counter:a", 3, etag=stale)
    assert store.client.get("counter:a").value == 2


def test_an_etag_for_a_missing_key_conflicts(store):
    with pytest.raises(StateConflict):
        store.client.save("counter:none", 1, etag="123")
    assert store.client.get("counter:none") is None


def test_first_write_on_an_existing_key_conflicts(store):
    store.client.save("lock:job", "me", first_write=True)
    with pytest.raises(StateConflict):
        store.client.save("lock:job", "you", first_write=True)
    assert store.client.get("lock:job").value == "me"


def test_ttl_expires_the_entry(store):
    store.client.save("mirror:1", {"seen": True}, ttl_seconds=60)
    store.client.save("mirror:2", {"seen": True})
    assert store.client.get("mirror:1").value == {"seen": True}

    store.advance(30)
    assert store.client.get("mirror:1") is not None
    store.advance(31)

    assert store.client.get("mirror:1") is None
    assert store.client.get("mirror:2") is not None
    # An expired key is a missing key: a first write succeeds again.
    store.client.save("mirror:1", {"seen": 2}, first_write=True)
    assert store.client.get("mirror:1").value == {"seen": 2}


@pytest.mark.parametrize("ttl", [0, -1])
def test_a_ttl_of_zero_or_minus_one_never_expires(store, ttl):
    store.client.save("mirror:forever", 1, ttl_seconds=ttl)
    store.advance(10 * 365 * 24 * 3600)
    assert store.client.get("mirror:forever").value == 1


def test_dapr_gets_the_ttl_as_metadata_and_the_token(settings):
    sidecar = start_sidecar(settings, api_token="s3cret")
    try:
        DaprStateStore().save("mirror:1", 1, ttl_seconds=90)
        sidecar.advance_clock(89)
        assert sidecar.state() == {"mirror:1": 1}
        sidecar.advance_clock(2)
        assert sidecar.state() == {}

        settings.DAPR_API_TOKEN = "wrong"
        with pytest.raises(DaprError) as exc:
            DaprStateStore().get("mirror:1")
        assert exc.value.status == 401
    finally:
        sidecar.stop()


def test_delete(store):
    store.client.delete("gone:never-there")  # deleting a missing key is fine

    store.client.save("gone:a", 1)
    store.client.delete("gone:a")
    assert store.client.get("gone:a") is None


def test_delete_with_etag(store):
    store.client.save("gone:b", 1)
    stale = store.client.get("gone:b").etag
    store.client.save("gone:b", 2)

    with pytest.raises(StateConflict):
        store.client.delete("gone:b", etag=stale)
    assert store.client.get("gone:b").value == 2

    store.client.delete("gone:b", etag=store.client.get("gone:b").etag)
    assert store.client.get("gone:b") is None


def test_a_transaction_is_all_or_nothing(store):
    store.client.save("tx:a", "a0")
    store.client.save("tx:b", "b0")
    store.client.save("tx:c", "c0")
    stale = store.client.get("tx:b").etag
    store.client.save("tx:b", "b1")

    with pytest.raises(StateConflict):
        store.client.transaction(
            [
                StateOperation("upsert", "tx:a", "a2"),
                StateOperation("delete", "tx:c"),
                StateOperation("upsert", "tx:b", "b2", etag=stale),
            ]
        )
    assert store.client.get("tx:a").value == "a0"
    assert store.client.get("tx:b").value == "b1"
    assert store.client.get("tx:c").value == "c0"

    store.client.transaction(
        [
            StateOperation("upsert", "tx:a", "a3"),
            StateOperation("delete", "tx:c"),
            StateOperation("upsert", "tx:b", "b3", etag=store.client.get("tx:b").etag),
            StateOperation("upsert", "tx:d", "d3", ttl_seconds=10),
        ]
    )
    assert store.client.get("tx:a").value == "a3"
    assert store.client.get("tx:b").value == "b3"
    assert store.client.get("tx:c") is None
    assert store.client.get("tx:d").value == "d3"
    store.advance(11)
    assert store.client.get("tx:d") is None


def test_keys_with_url_characters_round_trip(store):
    key = "poll:a b?c#d%e"
    store.client.save(key, 1)
    assert store.client.get(key).value == 1
    store.client.delete(key)
    assert store.client.get(key) is None


def test_a_key_of_255_characters_is_accepted(store):
    key = "ns:" + "k" * 252
    store.client.save(key, 1)
    assert store.client.get(key).value == 1


@pytest.mark.parametrize(
    "key, message",
    [
        ("no-colon", "namespace:identifier"),
        (":identifier", "namespace:identifier"),
        ("namespace:", "namespace:identifier"),
        ("", "non-empty"),
        ("ns:" + "k" * 253, "longer than 255"),
        ("dapr:internal", "reserved"),
        ("DAPR:internal", "reserved"),
        ("ns:a||b", "||"),
    ],
)
def test_invalid_keys_are_refused_with_a_clear_error(store, key, message):
    calls = [
        lambda: store.client.get(key),
        lambda: store.client.save(key, 1),
        lambda: store.client.delete(key),
        lambda: store.client.transaction([StateOperation("upsert", key, 1)]),
    ]
    for call in calls:
        with pytest.raises(InvalidStateKey, match=message.replace("|", r"\|")):
            call()
    if store.sidecar:
        assert store.sidecar.state() == {}
        assert not store.sidecar.errors
    else:
        assert not StateEntry.objects.exists()


def test_the_database_store_purges_expired_entries(db, monkeypatch):
    clock = ShiftedClock()
    monkeypatch.setattr(state_module, "timezone", clock)
    store = DatabaseStateStore()
    store.save("mirror:old", 1, ttl_seconds=5)
    store.save("mirror:new", 1, ttl_seconds=500)
    store.save("mirror:kept", 1)
    clock.advance(10)

    assert store.purge_expired() == 1
    assert sorted(StateEntry.objects.values_list("key", flat=True)) == ["mirror:kept", "mirror:new"]
