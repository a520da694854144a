"""The integration tests refuse an engine that runs a real stack, and never name one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conftest import SHARE_ENGINE_VARIABLE, STACKS, TEST_PREFIX, _refuse_an_engine_with_real_stacks, own_names


class _Engine:
    def __init__(self, containers: list[str], volumes: list[str]) -> None:
        self.containers = SimpleNamespace(list=lambda all=False: [SimpleNamespace(name=n) for n in containers])
        self.volumes = SimpleNamespace(list=lambda: [SimpleNamespace(name=n) for n in volumes])


def test_an_engine_with_the_real_staging_is_refused(monkeypatch):
    monkeypatch.delenv(SHARE_ENGINE_VARIABLE, raising=False)
    with pytest.raises(pytest.fail.Exception, match="holds bizosaas-redis-staging, redis_data, named like a real"):
        _refuse_an_engine_with_real_stacks(_Engine(["bizosaas-redis-staging", "other"], ["redis_data"]))


def test_an_engine_without_real_stacks_or_when_told_is_accepted(monkeypatch):
    monkeypatch.delenv(SHARE_ENGINE_VARIABLE, raising=False)
    _refuse_an_engine_with_real_stacks(_Engine([f"{TEST_PREFIX}-dev"], [f"{TEST_PREFIX}-dev-data"]))
    monkeypatch.setenv(SHARE_ENGINE_VARIABLE, "1")
    _refuse_an_engine_with_real_stacks(_Engine(["bizosaas-redis-staging"], ["redis_data"]))


@pytest.mark.parametrize("stack", STACKS)
def test_test_deployments_use_only_their_own_names(stack):
    assert all(name.startswith(f"{TEST_PREFIX}-") for name in own_names(stack).values())
