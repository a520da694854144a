"""redis.conf rendering: every setting lands in the file, deterministically, no secrets."""

from __future__ import annotations

import pytest

from bizosaas_redis import redis_conf
from bizosaas_redis.settings import available_stacks, build_settings, load_stack_file

APP, ADMIN = "app-secret-Pw1", "admin-secret-Pw2"


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("stack", available_stacks())
def test_every_expected_setting_is_in_the_file(stack):
    settings = load_stack_file(stack)
    found = directives(redis_conf.render_config(settings))
    expected = redis_conf.expected_config(settings)
    assert found["maxmemory"] == [redis_conf.format_size(settings.maxmemory)]
    for key, value in expected.items():
        if key in ("save", "maxmemory"):
            continue
        assert found[key] == [value], key
    assert [f"save {v}" for v in found.get("save", [])] == ([f"save {r}" for r in settings.save] or ['save ""'])


def test_rendering_is_deterministic():
    settings = load_stack_file("staging")
    assert redis_conf.render(settings, APP, ADMIN) == redis_conf.render(load_stack_file("staging"), APP, ADMIN)


def test_users_carry_hashes_never_passwords():
    settings = load_stack_file("production")
    text = redis_conf.render(settings, APP, ADMIN)
    assert APP not in text and ADMIN not in text
    assert f"#{redis_conf.password_hash(APP)}" in text
    assert f"user admin reset on #{redis_conf.password_hash(ADMIN)} ~* &* +@all" in text
    assert "user healthcheck reset on" in text and "-@all +ping" in text
    app_line = next(line for line in text.splitlines() if line.startswith("user default "))
    for command in settings.denied_commands:
        assert f" -{command.lower()}" in app_line


def test_render_config_holds_no_user():
    lines = redis_conf.render_config(load_stack_file("production")).splitlines()
    assert not [line for line in lines if line.startswith("user ")]


def test_auth_off_means_nopass_and_protected_mode_off():
    settings = load_stack_file("dev")
    text = redis_conf.render(settings, None, ADMIN)
    assert "user default reset on nopass" in text
    assert "protected-mode no" in text
    assert "protected-mode yes" in redis_conf.render_config(load_stack_file("staging"))


def test_a_named_app_user_switches_the_default_user_off():
    settings = build_settings({"appUsername": "bizosaas"}, "x")
    text = redis_conf.render(settings, APP, ADMIN)
    assert "user bizosaas reset on #" in text and "user default reset off" in text


def test_persistence_off_renders_empty_save_and_no_aof():
    text = redis_conf.render_config(build_settings({"save": [], "appendonly": False}, "x"))
    assert 'save ""' in text and "appendonly no" in text


def test_tls_replaces_the_plain_port():
    settings = build_settings({"tlsEnabled": True, "tlsCertsDir": "/etc/redis-tls", "tlsAuthClients": "yes"}, "x")
    found = directives(redis_conf.render_config(settings))
    assert found["port"] == ["0"] and found["tls-port"] == ["6379"]
    assert found["tls-cert-file"] == ["/tls/tls.crt"] and found["tls-auth-clients"] == ["yes"]
    command = redis_conf.healthcheck_command(settings)[1]
    assert "--tls --cacert /tls/ca.crt --cert /tls/tls.crt --key /tls/tls.key" in command


@pytest.mark.parametrize("stack", available_stacks())
def test_healthcheck_tests_for_pong_and_carries_no_password(stack):
    test = redis_conf.healthcheck_command(load_stack_file(stack))
    assert test[0] == "CMD-SHELL"
    assert test[1].endswith("ping | grep -q PONG")
    assert APP not in test[1] and "--user healthcheck" in test[1]
