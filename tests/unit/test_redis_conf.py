"""redis.conf rendering: every setting lands in the file, deterministically, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bizosaas_redis import redis_conf
from bizosaas_redis.settings import (
    available_stacks,
    build_settings,
    instances,
    load_stack_file,
    read_stack_config,
    stack_file,
)

APP, ADMIN = "app-secret-Pw1", "admin-secret-Pw2"


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("stack", available_stacks())
def test_every_expected_setting_is_in_the_files(stack):
    settings = load_stack_file(stack)
    found = directives(redis_conf.render_config(settings) + redis_conf.render_online(settings))
    for key, value in redis_conf.expected_config(settings).items():
        assert found[key] == [value or '""'], key  # `save ""`: RDB off


@pytest.mark.parametrize("stack", available_stacks())
def test_the_online_settings_are_in_online_conf_alone(stack):
    """redis.conf, whose every byte replaces the container, holds none of the settings
    applied while Redis runs; it includes online.conf, which holds exactly those."""
    settings = load_stack_file(stack)
    main, online = directives(redis_conf.render_config(settings)), directives(redis_conf.render_online(settings))
    assert set(online) == {
        "maxmemory",
        "maxmemory-policy",
        "maxmemory-samples",
        "maxclients",
        "timeout",
        "tcp-keepalive",
        "save",
        "appendfsync",
        "loglevel",
    }
    assert not set(online) & set(main)
    assert main["include"] == [redis_conf.ONLINE_CONFIG_PATH]
    update = {"maxclients": 77, "timeout": 9, "loglevel": "warning", "maxmemory_policy": "volatile-ttl", "save": []}
    changed = settings.model_copy(update=update)
    assert redis_conf.render_config(changed) == redis_conf.render_config(settings)
    assert directives(redis_conf.render_online(changed))["maxclients"] == ["77"]


RENDER = (
    "from bizosaas_redis import redis_conf; from bizosaas_redis.settings import load_stack_file;"
    "s = load_stack_file('staging'); print(redis_conf.render_config(s) + redis_conf.render_users(s, 'a', 'b'))"
)


def test_rendering_is_the_same_in_every_process():
    """The config digest drives replacement: a hash seed must not change the file."""
    outputs = {
        subprocess.run(
            [sys.executable, "-c", RENDER], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True
        ).stdout
        for seed in ("0", "1", "12345")
    }
    assert len(outputs) == 1 and "\ndatabases 16\n" in outputs.pop()


def test_staging_is_the_running_service():
    """The numbers of the service as it runs today, written out."""
    staging = load_stack_file("staging")
    found = directives(redis_conf.render_config(staging) + redis_conf.render_online(staging))
    assert found["maxmemory"] == [str(2 * 1024**3)]
    assert found["maxmemory-policy"] == ["allkeys-lru"]
    assert found["save"] == ["900 1 300 10 60 10000"]
    assert found["appendonly"] == ["yes"] and found["appendfsync"] == ["everysec"]
    assert found["maxclients"] == ["1000"]
    assert found["port"] == ["6379"] and found["dir"] == ["/data"]


def test_users_carry_hashes_never_passwords():
    settings = load_stack_file("production")
    text = redis_conf.render_users(settings, APP, ADMIN)
    assert APP not in text and ADMIN not in text
    # SHA-256 of the passwords, written out: the renderer's own function is no oracle.
    assert "#9ea85e9de429fe21d515e27eeebda4aab0ba93ee94ad86e798fe04d114c1843a" in text
    assert "user admin reset on #0404fd0304395555d6c47e34e6039cb71781023a3eb8753457a32565d6d69382 ~* &* +@all" in text
    assert "user healthcheck reset on" in text and "-@all +ping" in text
    app_line = next(line for line in text.splitlines() if line.startswith("user default "))
    for command in settings.denied_commands:
        assert f" -{command.lower()}" in app_line


def test_render_config_holds_no_user_and_names_the_users_file():
    lines = redis_conf.render_config(load_stack_file("production")).splitlines()
    assert not [line for line in lines if line.startswith("user ")]
    assert "aclfile /data/users.acl" in lines


def test_the_users_file_is_user_lines_alone():
    """Redis refuses an ACL file with a comment or any line but `user …` (checked on 7.0.15)."""
    for stack in ("dev", "production"):
        lines = redis_conf.render_users(load_stack_file(stack), APP, ADMIN, "exporter-pw").splitlines()
        assert lines and all(line.startswith("user ") for line in lines)


def test_auth_off_means_nopass_and_protected_mode_off():
    settings = load_stack_file("dev")
    assert "user default reset on nopass" in redis_conf.render_users(settings, None, ADMIN)
    assert "protected-mode no" in redis_conf.render_config(settings)
    assert "protected-mode yes" in redis_conf.render_config(load_stack_file("staging"))


def test_a_named_app_user_switches_the_default_user_off():
    settings = build_settings({"appUsername": "bizosaas"}, "x")
    text = redis_conf.render_users(settings, APP, ADMIN)
    assert "user bizosaas reset on #" in text and "user default reset off" in text


def test_persistence_off_renders_empty_save_and_no_aof():
    settings = build_settings({"save": [], "appendonly": False}, "x")
    assert "\nappendonly no\n" in redis_conf.render_config(settings)
    assert '\nsave ""\n' in redis_conf.render_online(settings)


@pytest.mark.parametrize("auth_clients", ["yes", "no"])
def test_tls_replaces_the_plain_port(auth_clients):
    settings = build_settings(
        {"tlsEnabled": True, "tlsCertsDir": "/etc/redis-tls", "tlsAuthClients": auth_clients}, "x"
    )
    found = directives(redis_conf.render_config(settings))
    assert found["port"] == ["0"] and found["tls-port"] == ["6379"]
    assert found["tls-cert-file"] == ["/tls/tls.crt"]
    # Set while Redis runs: in online.conf, not in redis.conf.
    assert "tls-auth-clients" not in found
    assert directives(redis_conf.render_online(settings))["tls-auth-clients"] == [auth_clients]
    # The healthcheck presents the certificate whatever the setting is: it never changes with it.
    command = redis_conf.healthcheck_command(settings)[1]
    assert "--tls --cacert /tls/ca.crt --cert /tls/tls.crt --key /tls/tls.key" in command


@pytest.mark.parametrize("stack", available_stacks())
def test_healthcheck_tests_for_pong_and_carries_no_password(stack):
    test = redis_conf.healthcheck_command(load_stack_file(stack))
    assert test[0] == "CMD-SHELL"
    assert test[1].endswith("ping | grep -q PONG")
    assert APP not in test[1] and "--user healthcheck" in test[1]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"appendonly": True}, "nosave"),  # the AOF is flushed at the stop and holds everything
        ({"appendonly": True, "saveOnShutdown": False}, "nosave"),
        ({"appendonly": False}, "save"),  # the snapshot is the only copy of what was in memory
        ({"appendonly": False, "saveOnShutdown": False}, "default"),
    ],
)
def test_a_stop_writes_a_snapshot_only_where_it_is_the_only_copy(values, expected):
    settings = build_settings({**read_stack_config(stack_file("staging")), **values}, "staging")
    assert f"\nshutdown-on-sigterm {expected}\n" in redis_conf.render_config(settings)
    assert redis_conf.expected_config(settings)["shutdown-on-sigterm"] == expected


def test_the_durable_instance_says_why_it_never_evicts():
    cache, durable = instances(build_settings({"layout": "split"}, "x"))
    assert "refuse writes when full, never evict" in redis_conf.render_config(durable)
    assert "\nmaxmemory-policy noeviction\n" in redis_conf.render_online(durable)
    assert "evict rather than refuse writes" in redis_conf.render_config(cache)
    assert "\nmaxmemory-policy allkeys-lru\n" in redis_conf.render_online(cache)


def test_a_rotation_gives_a_user_both_password_hashes_and_never_one_twice():
    settings = load_stack_file("staging")
    both = redis_conf.render_users(settings, "new", "adm", previous=redis_conf.Previous(app="old", admin="adm"))
    assert f"on #{redis_conf.password_hash('new')} #{redis_conf.password_hash('old')} " in both
    assert f"user admin reset on #{redis_conf.password_hash('adm')} ~* " in both  # the same password once
    assert redis_conf.render_users(settings, "new", "adm") == redis_conf.render_users(
        settings, "new", "adm", previous=redis_conf.Previous()
    )
