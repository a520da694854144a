"""The policy pack's copies of shared constants match the originals."""

from __future__ import annotations

from bizosaas_redis import constants, settings
from redis_policies import rules


def test_the_policy_pack_copies_are_the_originals():
    assert rules.CONTAINER == constants.CONTAINER
    assert rules.REMOTE_IMAGE == constants.REMOTE_IMAGE
    assert rules.ONLINE_SETTINGS == constants.ONLINE_SETTINGS
    assert rules.LABEL == constants.LABEL_PREFIX
    assert rules.LABEL_SERVICE == constants.LABEL_SERVICE
    assert rules.LABEL_ENVIRONMENT == constants.LABEL_ENVIRONMENT
    assert rules.LABEL_ROLE == constants.LABEL_ROLE
    assert rules.REDIS_USER == constants.REDIS_USER
    assert (rules.AUTH_ON, rules.AUTH_TURNING_ON) == (constants.AUTH_ON, constants.AUTH_TURNING_ON)
    assert rules.MIN_HEADROOM == settings.MIN_MEMORY_HEADROOM
    assert rules.MIN_OVERHEAD == settings.MIN_MEMORY_OVERHEAD


def test_the_consumer_library_defaults_are_the_settings_defaults():
    import bizosaas_redis_patterns as patterns

    assert patterns.DEFAULT_CACHE_TTL == constants.DEFAULT_CACHE_TTL == 3600
    assert patterns.DEFAULT_SESSION_TTL == constants.DEFAULT_SESSION_TTL == 86400
