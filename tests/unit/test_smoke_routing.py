"""Which instance of a split stack each smoke scenario runs on."""

from __future__ import annotations

from bizosaas_redis_ops.check import scenarios


def names(use: str) -> set[str]:
    return {name for name, _ in scenarios.scenarios_for(use)}


def test_services_data_goes_to_the_durable_instance_and_the_rest_to_the_cache():
    assert names("durable") == {
        "health check",
        "eviction fits the role",
        "sessions",
        "jwt blacklist",
        "celery task round trip",
        "streams consumer group",
    }
    assert names("cache") & names("durable") == scenarios.BOTH_INSTANCES
    assert names("cache") | names("durable") == {name for name, _ in scenarios.SCENARIOS}
    assert {name for name, _ in scenarios.SCENARIOS} >= scenarios.DURABLE_SCENARIOS, "names match the scenarios"
