"""The rendered redis.conf is accepted by a real redis-server and means what it says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis

from bizosaas_redis import redis_conf
from bizosaas_redis.settings import available_stacks, build_settings, load_stack_file
from conftest import server_conf

APP, ADMIN = "app-Pw-0123456789", "admin-Pw-0123456789"
# The command line moves these to the test's own port and folder; all else is the file's.
OVERRIDDEN = {"port", "bind", "dir"}


@pytest.mark.parametrize("stack", available_stacks())
def test_config_get_matches_the_settings(stack, start_redis):
    settings = load_stack_file(stack)
    server = start_redis(server_conf(settings, APP if settings.auth_enabled else None, ADMIN))
    admin = server.client(username="admin", password=ADMIN)
    for key, value in redis_conf.expected_config(settings).items():
        if key in OVERRIDDEN:
            continue
        assert admin.config_get(key) == {key: value}, key


def test_acl_users_behave_as_declared(start_redis):
    settings = load_stack_file("production")
    server = start_redis(server_conf(settings, APP, ADMIN))

    anonymous = server.client(protocol=2)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.AuthenticationError):
        server.client(password="wrong", protocol=2).ping()

    app = server.client(password=APP)  # password-only clients are the default user
    assert app.set("k", "v") and app.get("k") == "v"
    for command in ("FLUSHALL", "FLUSHDB", "KEYS *", "CONFIG GET maxmemory", "SHUTDOWN", "ACL LIST"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command.split())
    with pytest.raises(redis.ResponseError, match="DEBUG command not allowed"):
        app.execute_command("DEBUG", "SLEEP", "0")  # enable-debug-command no: refused for all
    assert app.eval("return 1", 0) == 1  # Lua stays available for the rate limiter

    health = server.client(username="healthcheck", password=redis_conf.HEALTHCHECK_PASSWORD)
    assert health.ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        health.get("k")

    admin = server.client(username="admin", password=ADMIN)
    assert admin.config_get("maxclients") == {"maxclients": "1000"}


def test_healthcheck_command_reports_pong_only_when_serving(start_redis):
    settings = load_stack_file("staging")
    server = start_redis(server_conf(settings, APP, ADMIN))
    command = redis_conf.healthcheck_command(settings)[1].replace("redis-cli", f"redis-cli -p {server.port}")
    assert subprocess.run(["sh", "-c", command]).returncode == 0
    server.stop()
    assert subprocess.run(["sh", "-c", command], stderr=subprocess.DEVNULL).returncode != 0


def test_dev_without_auth_serves_password_less_clients(start_redis):
    settings = load_stack_file("dev")
    server = start_redis(server_conf(settings, None, ADMIN))
    client = server.client()
    assert client.ping() and client.flushall()  # dev allows flushing


def _make_certs(folder: Path, dns_names: tuple[str, ...] = ()) -> None:
    """A CA and a server certificate it signed (CN localhost, plus `dns_names` as
    subjectAltNames: clients that check the name, such as the exporter, need them). A CA
    already in `folder` (ca.crt, ca.key) signs a new certificate: a renewal."""
    san = ("-addext", "subjectAltName=" + ",".join(f"DNS:{name}" for name in dns_names)) if dns_names else ()
    copy = ("-copy_extensions", "copy") if dns_names else ()

    def run(*args: str) -> None:
        subprocess.run(args, cwd=folder, check=True, capture_output=True)

    if not (folder / "ca.key").exists():
        ca = ("-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca")
        run("openssl", "req", *ca, "-keyout", "ca.key", "-out", "ca.crt")
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        *san,
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
    )
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        *copy,
        "-days",
        "1",
        "-out",
        "tls.crt",
    )


@pytest.mark.parametrize("server_name", ["redis-7.0", "redis-8.0", "valkey-8.1"])
def test_tls_config_serves_tls(start_redis, tmp_path, server_name):
    certs = tmp_path / "certs"
    certs.mkdir()
    _make_certs(certs)
    settings = build_settings({"tlsEnabled": True, "tlsCertsDir": str(certs), "tlsAuthClients": "no"}, "x")
    # In the container the folder is mounted at /tls; here it is the test's.
    conf = server_conf(settings, APP, ADMIN).replace(f"{redis_conf.TLS_DIR}/", f"{certs}/")
    server = start_redis(conf, tls=True, server_name=server_name)
    client = server.client(ssl=True, ssl_ca_certs=str(certs / "ca.crt"), ssl_check_hostname=False, password=APP)
    assert client.ping()
    assert server.client(
        username="admin",
        password=ADMIN,
        ssl=True,
        ssl_ca_certs=str(certs / "ca.crt"),
        ssl_check_hostname=False,
    ).config_get("tls-auth-clients") == {"tls-auth-clients": "no"}
    with pytest.raises(redis.ConnectionError):
        server.client(password=APP, socket_timeout=2).ping()
