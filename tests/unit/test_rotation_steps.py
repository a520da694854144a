"""A password rotation's config changes (bizosaas_redis_ops.deploy.rotation): what start
sets and finish removes, and what each refuses, before anything changes."""

from __future__ import annotations

import pytest

from bizosaas_redis.settings import build_settings, instance
from bizosaas_redis_ops.deploy import rotation

OUTPUTS = {"redis_password": "app-Pw-1", "redis_admin_url": "redis://admin:adm%2Fin-Pw@127.0.0.1:6380/0"}


def test_start_keeps_the_current_password_as_the_previous_one_and_sets_a_new_one():
    settings = build_settings({}, "staging")
    step = rotation.start(settings, "app", {}, OUTPUTS)
    assert (step.settings, step.remove) == ({}, ())
    changes = dict(step.secrets)
    assert changes.pop("redis:previousPassword") == "app-Pw-1"
    new = changes.pop("redis:password")
    assert changes == {}
    assert len(new) == rotation.LENGTH and new.isalnum() and new != "app-Pw-1"
    admin = rotation.start(settings, "admin", {}, OUTPUTS)
    assert admin.secrets["redis:previousAdminPassword"] == "adm/in-Pw"  # decoded from the URL


def test_a_durable_instance_rotates_under_its_own_keys():
    durable = instance(build_settings({"layout": "split"}, "production"), "durable")
    assert rotation.keys(durable, "app") == rotation.Keys("redis:durablePassword", "redis:durablePreviousPassword")


def test_start_refuses_a_rotation_in_progress_and_finish_one_that_is_not():
    settings = build_settings({}, "staging")
    with pytest.raises(rotation.RotationError, match="redis:previousPassword is set: a rotation of the app"):
        rotation.start(settings, "app", {"redis:previousPassword": "x"}, OUTPUTS)
    with pytest.raises(rotation.RotationError, match="redis:previousAdminPassword is not set: no rotation"):
        rotation.finish(settings, "admin", {"redis:previousPassword": "x"})
    finished = rotation.finish(settings, "app", {"redis:previousPassword": "x"})
    assert finished == rotation.Step(remove=("redis:previousPassword",))


def test_turning_auth_on_is_a_rotation_from_no_password():
    settings = build_settings({"authEnabled": False}, "dev")
    started = rotation.start(settings, "app", {}, {"redis_admin_url": "redis://admin:a@h:1/0"})
    assert list(started.secrets) == ["redis:password"] and not started.settings and not started.remove
    with pytest.raises(rotation.RotationError, match="redis:password is set while authentication is off"):
        rotation.start(settings, "app", started.secrets, {})
    with pytest.raises(rotation.RotationError, match="authentication is off and redis:password is not set"):
        rotation.finish(settings, "app", {})
    assert rotation.finish(settings, "app", started.secrets) == rotation.Step(settings={"redis:authEnabled": "true"})
    # A split stack's durable instance: its block's key, which the settings read as a bool.
    split = build_settings({"layout": "split", "durable": {"authEnabled": False}}, "staging")
    durable = instance(split, "durable")
    finished = rotation.finish(durable, "app", {"redis:durablePassword": "x"})
    assert finished.settings == {"redis:durable.authEnabled": "true"}
    on = build_settings({"layout": "split", "durable": {"authEnabled": "true"}}, "staging")
    assert instance(on, "durable").auth_enabled is True


def test_start_refuses_what_it_cannot_rotate():
    with pytest.raises(rotation.RotationError, match=r"its outputs hold no application password \(redis_password\)"):
        rotation.start(build_settings({}, "staging"), "app", {}, {"redis_admin_url": "redis://admin:a@h:1/0"})
    sentinel = build_settings(
        {"topology": "sentinel", "dockerHosts": {"a": {"url": "unix:///var/run/docker.sock", "address": "127.0.0.1"}},
         "sentinelPlacement": ["a", "a", "a"]},
        "staging",
    )  # fmt: skip
    with pytest.raises(rotation.RotationError, match="topology sentinel: turning authentication on is not built"):
        rotation.start(sentinel.model_copy(update={"auth_enabled": False}), "app", {}, OUTPUTS)
    # A password rotation on it is the standalone one's (its nodes and Sentinels hold both).
    assert rotation.start(sentinel, "admin", {}, OUTPUTS).secrets["redis:previousAdminPassword"] == "adm/in-Pw"


def _sentinel_stack():
    hosts = {"a": {"url": "unix:///var/run/docker.sock", "address": "127.0.0.1"}}
    return build_settings(
        {"topology": "sentinel", "dockerHosts": hosts, "sentinelPlacement": ["a", "a", "a"]}, "staging"
    )


@pytest.mark.parametrize(("user", "key"), [("replication", "ReplicationPassword"), ("sentinel", "SentinelPassword")])
def test_the_topology_passwords_rotate_in_three_steps(user, key):
    """start: the next one accepted, the clients keep the current one; switch: the clients
    move to it and the current one stays accepted as the previous; finish: removed."""
    settings, outputs = _sentinel_stack(), {**OUTPUTS, f"{user}_password": "running-Pw-1"}
    current, nxt, previous = f"redis:{key[0].lower()}{key[1:]}", f"redis:next{key}", f"redis:previous{key}"
    started = rotation.start(settings, user, {}, outputs)
    assert list(started.secrets) == [nxt] and started.secrets[nxt] != "running-Pw-1" and not started.remove
    config = dict(started.secrets)
    with pytest.raises(rotation.RotationError, match=f"{nxt} is set: a rotation of the {user} password"):
        rotation.start(settings, user, config, outputs)
    with pytest.raises(rotation.RotationError, match=f"{nxt} is set: the clients still use the current"):
        rotation.finish(settings, user, config)
    switched = rotation.switch(settings, user, config, outputs)
    assert switched == rotation.Step(secrets={previous: "running-Pw-1", current: config[nxt]}, remove=(nxt,))
    config = {**switched.secrets}
    with pytest.raises(rotation.RotationError, match=f"{previous} is set: .*`bizosaas-redis rotate finish"):
        rotation.start(settings, user, config, outputs)
    with pytest.raises(rotation.RotationError, match=f"{nxt} is not set: `rotate start --user {user}` comes first"):
        rotation.switch(settings, user, config, outputs)
    assert rotation.finish(settings, user, config) == rotation.Step(remove=(previous,))


def test_the_topology_passwords_are_refused_where_they_do_not_exist():
    with pytest.raises(rotation.RotationError, match="has no replication password: it is topology sentinel's"):
        rotation.start(build_settings({}, "staging"), "replication", {}, OUTPUTS)
    with pytest.raises(rotation.RotationError, match="`rotate switch` is for replication and sentinel"):
        rotation.switch(_sentinel_stack(), "app", {}, OUTPUTS)
    with pytest.raises(rotation.RotationError, match=r"outputs hold no sentinel password \(sentinel_password\)"):
        rotation.switch(_sentinel_stack(), "sentinel", {"redis:nextSentinelPassword": "x"}, OUTPUTS)


def test_the_exporter_password_rotates_as_the_application_password_does():
    settings = build_settings({"exporterEnabled": True}, "staging")
    step = rotation.start(settings, "exporter", {}, {**OUTPUTS, "exporter_password": "exp-Pw-1"})
    assert step.secrets["redis:previousExporterPassword"] == "exp-Pw-1" and "redis:exporterPassword" in step.secrets
    assert rotation.finish(settings, "exporter", step.secrets) == rotation.Step(
        remove=("redis:previousExporterPassword",)
    )
    with pytest.raises(rotation.RotationError, match=r"runs no exporter \(redis:exporterEnabled false\)"):
        rotation.start(build_settings({"exporterEnabled": False}, "staging"), "exporter", {}, OUTPUTS)
