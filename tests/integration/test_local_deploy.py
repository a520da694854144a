"""Deploy dev, staging and production to a real Docker engine, verify them with the
testinfra suite, and prove the deployer's promises: idempotence, data kept across
replacement and down/up, secrets kept out of sight.

These tests replace and remove containers named bizosaas-redis-<stack> on the engine.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import docker
import pytest
import redis

from bizosaas_redis.constants import REDIS_GID, REDIS_UID
from bizosaas_redis_ops import capture, local_apply
from conftest import STACKS, TEST_PREFIX, app_client, cli, free_port, local_up, own_names


@pytest.mark.parametrize(("stack", "instance"), [*((stack, "cache") for stack in STACKS), ("production", "durable")])
def test_verify_passes_on_each_deployed_stack(deployed, stack, instance):
    result = cli("verify", "--stack", stack, "--instance", instance, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines()[2:-1] if line.strip()]
    assert len(rows) >= 16 and all("  PASS  " in f"{row}  " for row in rows), result.stdout
    assert result.stdout.splitlines()[-1] == f"{len(rows)} passed, 0 failed"


def test_verify_fails_when_the_deployment_drifts(deployed, engine):
    """The suite can fail: a container changed behind the program's back is caught."""
    admin = redis.Redis.from_url(local_apply.outputs("staging", show_secrets=True)["redis_admin_url"])
    admin.config_set("maxmemory-policy", "noeviction")
    try:
        result = cli("verify", "--stack", "staging", check=False)
        assert result.returncode == 1
        failing = [line for line in result.stdout.splitlines() if "  FAIL  " in line]
        assert len(failing) == 1 and failing[0].startswith("config get matches every setting"), result.stdout
    finally:
        admin.config_set("maxmemory-policy", "allkeys-lru")


def test_the_three_stacks_run_side_by_side(deployed, engine):
    for stack, port in deployed.items():
        container = engine.containers.get(f"{TEST_PREFIX}-{stack}")
        assert container.status == "running"
        assert container.attrs["HostConfig"]["PortBindings"]["6379/tcp"][0]["HostPort"] == str(port)
        assert app_client(stack).ping()


def test_up_twice_changes_nothing(deployed, engine, offline_image):
    before = engine.containers.get("bizosaas-test-staging").id
    result = local_up("staging", deployed["staging"], offline_image)
    assert "container unchanged" in result.stdout
    assert engine.containers.get("bizosaas-test-staging").id == before


def test_replacement_keeps_the_data(deployed, engine, offline_image):
    client = app_client("production")
    client.set("kept:across-replacement", "yes")
    client.hset("kept:hash", mapping={"a": "1"})
    before = engine.containers.get("bizosaas-test-production").id
    new_port = free_port()
    result = local_up("production", new_port, offline_image)
    assert "container replaced" in result.stdout
    deployed["production"] = new_port
    assert engine.containers.get("bizosaas-test-production").id != before
    client = app_client("production")
    assert client.get("kept:across-replacement") == "yes" and client.hgetall("kept:hash") == {"a": "1"}


def test_down_then_up_keeps_the_data_and_delete_data_removes_it(deployed, engine, offline_image):
    client = app_client("staging")
    client.set("kept:across-down", "yes")
    result = cli("local", "down", "--stack", "staging")
    assert "data volume kept" in result.stdout
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get("bizosaas-test-staging")
    assert engine.volumes.get(own_names("staging")["volumeName"])
    local_up("staging", deployed["staging"], offline_image)
    assert app_client("staging").get("kept:across-down") == "yes"


def test_dev_down_removes_the_network_it_created(deployed, engine, offline_image):
    cli("local", "down", "--stack", "dev", "--delete-data")
    assert not engine.networks.list(names=[own_names("dev")["networkName"]])
    with pytest.raises(docker.errors.NotFound):
        engine.volumes.get(own_names("dev")["volumeName"])
    local_up("dev", deployed["dev"], offline_image)
    assert app_client("dev").get("anything") is None


def test_outputs_mask_secrets_unless_asked(deployed):
    masked = cli("outputs", "--stack", "staging", "--outputs-source", "local").stdout
    clear = json.loads(cli("outputs", "--stack", "staging", "--outputs-source", "local", "--show-secrets").stdout)
    password = clear["redis_password"]
    assert password not in masked and "[secret]" in masked
    assert clear["redis_url"] == f"redis://default:{password}@127.0.0.1:{deployed['staging']}/0"
    assert clear["port"] == deployed["staging"]


def test_no_password_in_process_list_or_logs(deployed, engine):
    passwords = []
    for stack in STACKS:
        values = local_apply.outputs(stack, show_secrets=True)
        passwords += [v for k, v in values.items() if k == "redis_password"]
        passwords.append(values["redis_admin_url"].rsplit("@", 1)[0].rsplit(":", 1)[1])
    assert len(passwords) == 5
    cmdlines = []
    for pid in Path("/proc").iterdir():
        if pid.name.isdigit():
            try:
                cmdlines.append((pid / "cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                continue
    logs = "".join(engine.containers.get(f"{TEST_PREFIX}-{s}").logs().decode(errors="replace") for s in STACKS)
    for password in passwords:
        assert not [c for c in cmdlines if password in c]
        assert password not in logs


def test_state_file_is_private_and_its_passwords_encrypted(deployed, monkeypatch):
    state = local_apply.State.load("staging")
    assert state.path.stat().st_mode & 0o777 == 0o600
    text = state.path.read_text()
    assert len(state.passwords) == 2
    for password in state.passwords.values():
        assert password not in text
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not-the-passphrase")
    with pytest.raises(local_apply.LocalApplyError, match="cannot decrypt: wrong PULUMI_CONFIG_PASSPHRASE"):
        local_apply.State.load("staging")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    result = cli("outputs", "--stack", "staging", "--outputs-source", "local", check=False)
    assert result.returncode == 1 and "set PULUMI_CONFIG_PASSPHRASE" in result.stderr


def test_without_a_passphrase_nothing_is_deployed(engine, offline_image, tmp_path):
    """The state holds the generated passwords, encrypted: no passphrase, no container."""
    own = f"{TEST_PREFIX}-nopass"
    names = {"containerName": own, "networkName": own, "volumeName": f"{own}-data"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    env["BIZOSAAS_LOCAL_STATE"] = str(tmp_path)
    result = local_up("dev", free_port(), offline_image, names=names, env=env, check=False)
    assert result.returncode == 1 and "set PULUMI_CONFIG_PASSPHRASE" in result.stderr
    assert not engine.containers.list(all=True, filters={"name": own})
    assert not engine.networks.list(names=[own]) and not engine.volumes.list(filters={"name": own})


def test_external_network_missing_is_a_clear_error(engine):
    cap = capture.Capture(stack="x", invokes=[("docker:index/getNetwork:getNetwork", {"name": "no-such-net"})])
    with pytest.raises(local_apply.LocalApplyError, match="network no-such-net is external"):
        local_apply._ensure_network(engine, cap, local_apply.State(stack="x"))


def test_image_that_cannot_be_found_or_pulled_is_a_clear_error(engine):
    with pytest.raises(local_apply.LocalApplyError, match="bizosaas-redis offline-image"):
        local_apply._ensure_image(engine, "localhost/no-such-image:1")


def test_a_tls_stack_is_healthy_and_serves_only_tls(deployed, engine, offline_image, tmp_path):
    """--set overrides a setting for a local run; here TLS, with certificates Redis can read."""
    from test_redis_conf_server import _make_certs

    from bizosaas_redis_ops import doctor

    certs = tmp_path / "certs"
    certs.mkdir(mode=0o755)
    _make_certs(certs)
    assert doctor.tls_files_check(certs).status == "FAIL"  # root-owned key: Redis could not read it
    for name in ("tls.crt", "tls.key", "ca.crt"):
        os.chown(certs / name, REDIS_UID, REDIS_GID)
    (certs / "tls.key").chmod(0o600)
    assert doctor.tls_files_check(certs).status == "OK"

    port = free_port()
    result = local_up("dev", port, offline_image, "tlsEnabled=true", f"tlsCertsDir={certs}", "tlsAuthClients=no")
    assert "container replaced" in result.stdout and "healthy" in result.stdout  # the healthcheck speaks TLS
    try:
        url = local_apply.outputs("dev", show_secrets=True)["redis_url"]
        assert url.startswith("rediss://127.0.0.1:")
        secure = redis.Redis.from_url(url, ssl_ca_certs=str(certs / "ca.crt"), ssl_check_hostname=False)
        assert secure.ping()
        with pytest.raises(redis.ConnectionError):
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=3).ping()
        mounts = engine.containers.get("bizosaas-test-dev").attrs["Mounts"]
        assert {"Type": "bind", "Destination": "/tls", "RW": False} in [
            {k: m[k] for k in ("Type", "Destination", "RW")} for m in mounts
        ]
    finally:
        local_up("dev", deployed["dev"], offline_image)
    assert app_client("dev").ping()


def test_set_rejects_bad_values_before_deploying(deployed, engine, offline_image):
    before = engine.containers.get("bizosaas-test-dev").id
    result = local_up("dev", deployed["dev"], offline_image, "maxmemoryPolicy=lru", "maxclients=0", check=False)
    assert result.returncode == 1
    assert "Pulumi.dev.yaml with local overrides: 2 invalid setting(s)" in result.stderr
    assert "redis:maxmemoryPolicy" in result.stderr and "redis:maxclients" in result.stderr
    assert engine.containers.get("bizosaas-test-dev").id == before


def test_verify_of_a_missing_container_is_one_line(engine):
    result = cli("verify", "--container", "bizosaas-test-no-such-container", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "bizosaas-redis verify: no container named bizosaas-test-no-such-container"


def test_a_taken_port_is_refused_before_the_running_container_is_touched(deployed, engine, offline_image):
    before = engine.containers.get(f"{TEST_PREFIX}-dev")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = local_up("dev", taken, offline_image, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"bizosaas-redis local up: redis:hostPort = {taken}: 127.0.0.1:{taken} is taken (Address already in use); "
        "choose a free port (--port) or stop what holds it; nothing was changed"
    )
    after = engine.containers.get(f"{TEST_PREFIX}-dev")
    assert after.id == before.id and after.status == "running"
    assert not [c for c in engine.containers.list(all=True, filters={"status": "created"})]


def test_the_unix_socket_serves_consumers_with_the_group_and_no_one_else(deployed, engine, offline_image):
    """unixSocket: consumer containers that mount the volume with group 1000 connect; others cannot."""
    from bizosaas_redis import redis_conf
    from bizosaas_redis_ops.docker_engine import run_to_completion

    result = local_up("staging", deployed["staging"], offline_image, "unixSocket=true")
    assert "container replaced" in result.stdout and "healthy" in result.stdout
    volume = f"{TEST_PREFIX}-staging-socket"
    try:
        env = local_apply.outputs("staging")["consumer_env"]
        assert (env["REDIS_SOCKET_VOLUME"], env["REDIS_SOCKET_PATH"]) == (volume, redis_conf.SOCKET_PATH)

        def consumer(user: str) -> str:
            # The healthcheck user's password is public (it may only PING).
            command = ["redis-cli", "-s", redis_conf.SOCKET_PATH, "--user", redis_conf.HEALTHCHECK_USER]
            command += ["--pass", redis_conf.HEALTHCHECK_PASSWORD, "--no-auth-warning", "ping"]
            _code, out = run_to_completion(
                engine,
                offline_image,
                command,
                user=user,
                volumes={volume: {"bind": redis_conf.SOCKET_DIR, "mode": "rw"}},
                network_mode="none",
            )
            return out.strip()

        assert consumer(f"{REDIS_UID + 1000}:{REDIS_GID}") == "PONG"  # another user, Redis's group
        assert "Permission denied" in consumer("4242:4242")
        # Host-side tools reach it through the volume's mount point.
        mountpoint = Path(engine.volumes.get(volume).attrs["Mountpoint"])
        url = local_apply.outputs("staging", show_secrets=True)["redis_url"]
        over_tcp = redis.Redis.from_url(url, decode_responses=True)
        over_socket = redis.Redis(
            unix_socket_path=str(mountpoint / "redis.sock"),
            username=over_tcp.connection_pool.connection_kwargs["username"],
            password=over_tcp.connection_pool.connection_kwargs["password"],
            decode_responses=True,
        )
        over_socket.set("socket:written", "yes")
        assert over_tcp.get("socket:written") == "yes"
        assert over_tcp.config_get("unixsocket*") == {"unixsocket": redis_conf.SOCKET_PATH, "unixsocketperm": "770"}
    finally:
        local_apply.down("staging")
        assert volume not in [v.name for v in engine.volumes.list()], "the socket volume outlives the stack"
        local_up("staging", deployed["staging"], offline_image)
    assert app_client("staging").ping()
