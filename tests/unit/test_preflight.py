"""What a maxmemory change would do to the data in use, decided before anything changes."""

from __future__ import annotations

import pytest

from bizosaas_redis.settings import build_settings
from bizosaas_redis_ops.deploy import preflight

MB = 1024**2


def test_enough_room_or_nothing_running_says_nothing():
    assert preflight.maxmemory_change(build_settings({"maxmemory": "64mb"}, "dev"), 10 * MB) is None
    assert preflight.maxmemory_change(build_settings({"maxmemory": "1mb"}, "dev"), None) is None


def test_a_cache_below_its_data_is_told_what_will_be_evicted():
    note = preflight.maxmemory_change(build_settings({"maxmemory": "2mb"}, "dev"), 5 * MB)
    assert note == (
        "redis:maxmemory = 2.0mb is below the 5.0mb in use: "
        "allkeys-lru will evict about 3.0mb of keys on the next writes"
    )


@pytest.mark.parametrize(
    ("policy", "effect"),
    [
        ("noeviction", "writes would be refused"),
        ("volatile-lru", "only keys with a TTL can be evicted, then writes would be refused"),
        ("volatile-ttl", "only keys with a TTL can be evicted, then writes would be refused"),
    ],
)
def test_other_policies_below_their_data_are_refused(policy, effect):
    with pytest.raises(preflight.PreflightError) as caught:
        preflight.maxmemory_change(build_settings({"maxmemory": "2mb", "maxmemoryPolicy": policy}, "dev"), 5 * MB)
    assert str(caught.value) == (
        f"redis:maxmemory = 2.0mb is below the 5.0mb in use under maxmemory-policy {policy}: {effect}; "
        "raise maxmemory, or delete 3.0mb first; nothing was changed"
    )
