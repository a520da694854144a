"""Absence and refusal are different answers (src/bizosaas_redis/answers.py): each step that
guards data, against real redis-servers that refuse it. Nothing listening may mean nothing
to protect; a wrong password, a timeout or an answer it did not expect stops the step with
one line naming where and what, and changes nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis import handover
from bizosaas_redis.answers import is_absent
from bizosaas_redis.settings import build_settings
from bizosaas_redis_ops.data import layout_move
from bizosaas_redis_ops.deploy import outputs, preflight
from bizosaas_redis_ops.deploy.docker_engine import free_port
from bizosaas_redis_pulumi.components import online
from bizosaas_redis_pulumi.components.online import OnlineSettingsError
from conftest import server_conf

ADMIN, SECRET = "admin", "admin-secret"
USERS = f"user default off\nuser {ADMIN} on >{SECRET} ~* &* +@all\n"


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server, a half-open link)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def closed_port() -> int:
    """Nothing listens here: the answer is absence."""
    return free_port()


def url(port: int, password: str = SECRET, db: int = 0) -> str:
    return f"redis://{ADMIN}:{password}@127.0.0.1:{port}/{db}"


def sentinel_of(start_redis, primary_port: int, name: str = "cache") -> Any:
    conf = USERS + f"sentinel monitor {name} 127.0.0.1 {primary_port} 1\nsentinel auth-user {name} {ADMIN}\n"
    conf += f"sentinel auth-pass {name} {SECRET}\n"
    return start_redis(conf, sentinel=True)


def test_only_nothing_listening_is_absence(start_redis, silent):
    server = start_redis(USERS)
    errors = {}
    once = {"retry": Retry(NoBackoff(), 0)}  # redis-py retries a failed connection by default
    for name, client in {
        "closed": redis.Redis(port=closed_port(), **once),
        "refused": redis.Redis(port=server.port, username=ADMIN, password="wrong", **once),
        "silent": redis.Redis(port=silent, socket_timeout=0.5, socket_connect_timeout=0.5, **once),
        "noperm": redis.Redis(port=server.port, **once),  # the default user is off
    }.items():
        with pytest.raises(redis.RedisError) as raised:
            client.ping()
        errors[name] = raised.value
    assert {name: is_absent(error) for name, error in errors.items()} == {
        "closed": True,
        "refused": False,
        "silent": False,
        "noperm": False,
    }


def test_the_maxmemory_guard_stops_on_a_wrong_admin_password(start_redis):
    server = start_redis(USERS)
    assert preflight.used_memory(url(server.port)) > 0
    assert preflight.used_memory(url(closed_port())) is None, "nothing listening: nothing to protect"
    with pytest.raises(preflight.PreflightError) as raised:
        preflight.used_memory(url(server.port, password="changed-in-the-settings"))
    line = str(raised.value)
    assert line.startswith(f"the running Redis at 127.0.0.1:{server.port} did not answer as expected (")
    assert "AuthenticationError" in line and "nothing was changed" in line and "\n" not in line
    assert "changed-in-the-settings" not in line


@pytest.mark.parametrize("auth_clients", ["no", "yes"])
def test_the_maxmemory_guard_reads_a_tls_server_with_the_files_it_was_deployed_with(
    start_redis, tmp_path, auth_clients
):
    """The running server's own CA (and, when it asks, its certificate as the client's), from
    the deployment's settings output: a TLS stack's update is guarded, not stopped. A client
    without them is refused by the server, and the guard stops."""
    from test_redis_conf_server import _make_certs

    from bizosaas_redis import redis_conf
    from bizosaas_redis.connection import host_tls

    certs = tmp_path / "certs"
    certs.mkdir()
    _make_certs(certs)
    deployed = {"tlsEnabled": True, "tlsCertsDir": str(certs), "tlsAuthClients": auth_clients}
    settings = build_settings(deployed, "x")
    conf = server_conf(settings, "app-secret", SECRET).replace(f"{redis_conf.TLS_DIR}/", f"{certs}/")
    server = start_redis(conf, tls=True)
    admin = f"rediss://{ADMIN}:{SECRET}@127.0.0.1:{server.port}/0"
    assert preflight.used_memory(admin, host_tls(deployed)) > 0
    with pytest.raises(preflight.PreflightError, match=r"did not answer as expected \((SSLError|ConnectionError)"):
        preflight.used_memory(admin)  # the system's CAs do not know the stack's own CA
    assert host_tls({"tlsEnabled": False, "tlsCertsDir": str(certs)}) == {}


def test_the_maxmemory_guard_stops_on_a_server_that_does_not_answer(silent):
    with pytest.raises(preflight.PreflightError, match=r"127\.0\.0\.1:\d+ did not answer as expected \(TimeoutError"):
        preflight.used_memory(url(silent))


def test_which_node_is_the_primary_is_never_guessed(start_redis, silent):
    primary = start_redis(USERS)
    sentinel = sentinel_of(start_redis, primary.port)
    here, there = f"127.0.0.1:{sentinel.port}", f"127.0.0.1:{closed_port()}"
    assert handover.primary_at([there, here], "cache", ADMIN, SECRET) == ("127.0.0.1", primary.port)
    assert handover.primary_at([f"127.0.0.1:{silent}", here], "cache", ADMIN, SECRET) == ("127.0.0.1", primary.port)
    assert handover.primary_at([there], "cache", ADMIN, SECRET) is None, "every Sentinel absent: none deployed"
    refusals = {
        "a Sentinel refuses the credentials": ([here, there], "cache", "other-password", "AuthenticationError"),
        "it knows no such master": ([here], "other-name", SECRET, "monitors no master named other-name"),
        "the only one times out": ([f"127.0.0.1:{silent}", there], "cache", SECRET, "TimeoutError"),
    }
    for case, (endpoints, name, password, expected) in refusals.items():
        with pytest.raises(handover.HandoverError) as raised:
            handover.primary_at(endpoints, name, ADMIN, password)
        assert expected in str(raised.value) and "\n" not in str(raised.value), case


def test_tools_never_fall_back_to_node_0_when_no_sentinel_answers(start_redis):
    primary = start_redis(USERS)
    sentinel = sentinel_of(start_redis, primary.port)
    values = {
        "topology": "sentinel",
        "sentinels": [f"127.0.0.1:{closed_port()}"],
        "master_name": "cache",
        "nodes": [f"127.0.0.1:{primary.port}"],
        "node_containers": ["node-0"],
        "redis_admin_url": url(primary.port),
        "redis_url": url(primary.port, db=1),
    }
    with pytest.raises(outputs.OutputsError, match=r"^no Sentinel of the stack answers \(127\.0\.0\.1:\d+: "):
        outputs.follow_primary(values)
    assert outputs.follow_primary(values, required=False) == values, "the preflight may read any node"
    values["sentinels"] = [f"127.0.0.1:{sentinel.port}"]
    assert outputs.follow_primary(values)["port"] == primary.port
    with pytest.raises(handover.HandoverError, match="AuthenticationError"):
        outputs.follow_primary({**values, "redis_admin_url": url(primary.port, password="wrong")})
    values["nodes"] = ["127.0.0.1:1"]
    with pytest.raises(outputs.OutputsError, match=rf"name 127\.0\.0\.1:{primary.port} the primary, which is none"):
        outputs.follow_primary(values)


def test_a_replica_priority_that_cannot_be_restored_is_reported(start_redis):
    first, second = start_redis(USERS), start_redis(USERS)
    clients = [handover.client_at(("127.0.0.1", s.port), ADMIN, SECRET) for s in (first, second)]
    for client in clients:
        client.config_set("replica-priority", 0)
    # The second node's admin password changed meanwhile: its priority cannot be put back.
    clients[1].acl_setuser(ADMIN, enabled=True, reset_passwords=True, passwords=["+another"])
    clients[1].connection_pool.disconnect()  # a connection made before the change stays authenticated
    with pytest.raises(handover.HandoverError) as raised:
        handover._restore_priorities([(clients[0], "100"), (clients[1], "100")])
    assert str(raised.value) == (
        f"node 127.0.0.1:{second.port} did not answer as expected (AuthenticationError: invalid username-password "
        "pair or user is disabled.); its replica-priority stays 0: CONFIG SET replica-priority 100"
    )
    assert clients[0].config_get("replica-priority") == {"replica-priority": "100"}, "the others are restored"


def test_layout_move_never_reads_an_unreadable_cache_as_empty(start_redis):
    server = start_redis(USERS)
    settings = build_settings({"layout": "split"}, "dev")
    assert layout_move.pending_count(url(closed_port()), settings) == 0
    with pytest.raises(layout_move.LayoutMoveError, match=rf"cache instance at 127\.0\.0\.1:{server.port} did not"):
        layout_move.pending_count(url(server.port, password="wrong"), settings)


def test_a_docker_engine_that_refuses_is_not_a_missing_one(tmp_path, monkeypatch):
    from bizosaas_redis_ops.deploy import docker_engine

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'absent.sock'}")
    assert docker_engine._client() is None, "no engine listens: one may be started"
    path = tmp_path / "hangs-up.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen(8)
        hang_up = threading.Thread(target=lambda: [listener.accept()[0].close() for _ in range(8)], daemon=True)
        hang_up.start()
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        with pytest.raises(docker_engine.EngineError, match=rf"^the Docker engine at unix://{path} did not answer"):
            docker_engine._client()


def sentinel_settings(**changes: Any) -> Any:
    from bizosaas_redis.settings import read_stack_config, stack_file
    from conftest import ROOT

    values = {**read_stack_config(stack_file("staging", ROOT)), "topology": "sentinel", "advertisedHost": "127.0.0.1"}
    return build_settings({**values, "adminUsername": ADMIN, **changes}, "staging")


def test_a_sentinel_stacks_credentials_and_names_are_checked_against_the_running_servers(start_redis, silent):
    from bizosaas_redis.sentinel_conf import REPLICATION_USER
    from bizosaas_redis.topology import master_name, sentinels

    users = USERS + f"user {REPLICATION_USER} on >running-replication +psync +replconf +ping\n"
    primary = start_redis(users + "user no-ping on >its-password -@all\n")
    settings = sentinel_settings()
    running = {
        "topology": "sentinel",
        "master_name": master_name(settings),
        "sentinels": [s.endpoint for s in sentinels(settings)],  # nothing listens there: absent
        "host": "127.0.0.1",
        "port": primary.port,
        "redis_admin_url": url(primary.port),
    }
    # A user whose rules forbid PING was still accepted (NOPERM comes after AUTH).
    preflight._accepted("a setting", [f"127.0.0.1:{primary.port}"], "no-ping", "its-password")
    check = preflight.sentinel_as_deployed
    check(settings, running, {})
    check(settings, running, {"replicationPassword": "running-replication", "adminPassword": SECRET})
    # An admin rotation's start: the handover uses the previous password, which the servers hold.
    check(settings, running, {"adminPassword": "new-admin", "previousAdminPassword": SECRET})
    refused = {
        "replicationPassword": ({"replicationPassword": "new-replication"}, "redis:replicationPassword: "),
        "adminPassword": ({"adminPassword": "new-admin"}, "redis:adminUsername / redis:adminPassword: "),
        "previousAdminPassword": (
            {"adminPassword": SECRET, "previousAdminPassword": "new-not-running"},
            "redis:adminUsername / redis:adminPassword: ",
        ),
    }
    for case, (given, start) in refused.items():
        with pytest.raises(preflight.PreflightError) as raised:
            check(settings, running, given)
        line = str(raised.value)
        assert line.startswith(f"{start}127.0.0.1:{primary.port} refuses the new value; "), case
        assert line.endswith("keep the running value; nothing was changed") and "new-" not in line, case
    with pytest.raises(preflight.PreflightError, match=r"^redis:adminUsername / .* refuses the new value"):
        check(sentinel_settings(adminUsername="someone-else"), running, {})
    with pytest.raises(preflight.PreflightError, match=r"^the settings name master renamed with Sentinels "):
        check(sentinel_settings(containerName="renamed"), running, {})
    with pytest.raises(preflight.PreflightError, match=rf"^127\.0\.0\.1:{silent} did not answer as expected"):
        check(settings, {**running, "port": silent}, {})


def _online(port: int, password: str = SECRET) -> dict[str, Any]:
    """RedisOnlineSettings' inputs for one server on this host."""
    return {
        "endpoints": [f"127.0.0.1:{port}"],
        "directives": {"maxclients": "321", "timeout": "17"},
        "username": ADMIN,
        "password": password,
    }


def test_online_settings_are_applied_persisted_and_never_recorded_when_refused(start_redis, silent):
    server = start_redis(USERS)
    for props in (_online(server.port, "wrong"), _online(closed_port()), _online(silent)):
        with pytest.raises(OnlineSettingsError) as refused:
            online.apply(props)
        line = str(refused.value)
        assert "\n" not in line and props["endpoints"][0] in line and SECRET not in line and "wrong" not in line
    admin = server.client(username=ADMIN, password=SECRET)
    assert admin.config_get("maxclients") != {"maxclients": "321"}, "a refused apply changed nothing"

    online.apply(_online(server.port))
    assert admin.config_get("maxclients") == {"maxclients": "321"} and admin.config_get("timeout") == {"timeout": "17"}
    # CONFIG REWRITE: a restart of this server keeps them.
    assert "maxclients 321" in server.conf.read_text().splitlines()


def test_maxmemory_is_lowered_first_only_where_it_is_higher(start_redis, silent):
    """The container's before-update hook, when its memory limit goes down: maxmemory
    first, on a server whose maxmemory is higher; a raise is RedisOnlineSettings' (after
    the limit). A server it cannot ask stops the update before the limit changes."""
    mb = 1024**2
    server = start_redis(USERS + "maxmemory 64mb\n")
    for props in (_online(server.port, "wrong"), _online(closed_port()), _online(silent)):
        with pytest.raises(OnlineSettingsError) as refused:
            online.lower_maxmemory(props, 32 * mb)
        line = str(refused.value)
        assert "\n" not in line and props["endpoints"][0] in line and SECRET not in line and "wrong" not in line
    admin = server.client(username=ADMIN, password=SECRET)
    assert online.lower_maxmemory(_online(server.port), 128 * mb) == []
    assert admin.config_get("maxmemory") == {"maxmemory": str(64 * mb)}
    assert online.lower_maxmemory(_online(server.port), 32 * mb) == [f"127.0.0.1:{server.port}"]
    assert admin.config_get("maxmemory") == {"maxmemory": str(32 * mb)}
    # CONFIG REWRITE: a restart in the middle of the `up` keeps the lower value.
    assert "maxmemory 32mb" in server.conf.read_text().splitlines()


def test_sentinel_online_settings_are_set_on_the_master_named_and_persisted(start_redis):
    primary = start_redis(USERS)
    sentinel = sentinel_of(start_redis, primary.port)
    wanted = {"down-after-milliseconds": "7000", "failover-timeout": "20000"}
    props = {**_online(sentinel.port), "directives": wanted, "master": "cache"}
    for refused_props in ({**props, "password": "wrong"}, {**props, "master": "not-monitored"}):
        with pytest.raises(OnlineSettingsError) as refused:
            online.apply(refused_props)
        line = str(refused.value)
        assert "\n" not in line and line.startswith(f"Sentinel at {props['endpoints'][0]}") and SECRET not in line

    online.apply(props)
    found = sentinel.client(username=ADMIN, password=SECRET).sentinel_master("cache")
    assert {key: str(found[key]) for key in wanted} == wanted
    # Sentinel rewrote its file: a restart keeps them.
    assert "sentinel down-after-milliseconds cache 7000" in sentinel.conf.read_text().splitlines()
