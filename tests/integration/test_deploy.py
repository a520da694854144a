"""Deploy dev, staging and production with `bizosaas-redis up` and the real Pulumi engine,
verify them with the testinfra suite, and prove the deployment's promises: no drift after
`up`, data kept across replacement and destroy/up, secrets kept out of sight, bad input
refused before anything changes.

The stacks run under the tests' own names (conftest.own_names) from the tests' own Pulumi
project folder and backend (sandbox.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis.constants import REDIS_GID, REDIS_UID
from bizosaas_redis_ops.deploy import pulumi_stack
from bizosaas_redis_ops.deploy.sandbox import Sandbox
from conftest import (
    CLI,
    STACKS,
    TEST_EXTERNAL_NETWORK,
    TEST_PREFIX,
    app_client,
    cli,
    free_port,
    outputs,
    own_names,
    stand_in_overrides,
)


@pytest.mark.parametrize(("stack", "instance"), [*((stack, "cache") for stack in STACKS), ("production", "durable")])
def test_verify_passes_on_each_deployed_stack(deployed, stack, instance):
    result = cli("verify", "--stack", stack, "--instance", instance, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines()[2:-1] if line.strip()]
    assert len(rows) >= 16 and all("  PASS  " in f"{row}  " for row in rows), result.stdout
    assert result.stdout.splitlines()[-1] == f"{len(rows)} passed, 0 failed"


def test_verify_fails_when_the_deployment_drifts(deployed, engine):
    """The suite can fail: a container changed behind the program's back is caught (a
    setting that needs a restart, so that only the check of every setting reads it; an
    online one fails the online settings' check too)."""
    admin = redis.Redis.from_url(outputs("staging")["redis_admin_url"])
    admin.config_set("shutdown-on-sigterm", "default")
    try:
        _verify_fails_on_one_check("config get matches every setting")
    finally:
        admin.config_set("shutdown-on-sigterm", "nosave")


def _verify_fails_on_one_check(check: str) -> None:
    result = cli("verify", "--stack", "staging", check=False)
    assert result.returncode == 1
    failing = [line for line in result.stdout.splitlines() if "  FAIL  " in line]
    assert len(failing) == 1 and failing[0].startswith(check), result.stdout


def test_verify_fails_when_the_exporter_is_down(deployed, engine):
    exporter = engine.containers.get(f"{TEST_PREFIX}-staging-exporter")
    exporter.stop(timeout=5)
    try:
        _verify_fails_on_one_check("exporter is as declared")
    finally:
        exporter.start()


def test_the_three_stacks_run_side_by_side(deployed, engine):
    for stack, sandbox in deployed.items():
        container = engine.containers.get(f"{TEST_PREFIX}-{stack}")
        assert container.status == "running" and container.attrs["State"]["Health"]["Status"] == "healthy"
        assert container.attrs["HostConfig"]["PortBindings"]["6379/tcp"][0]["HostPort"] == str(sandbox.port)
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert container.attrs["Config"]["User"] == f"{REDIS_UID}:{REDIS_GID}"
        files = engine.containers.get(f"{TEST_PREFIX}-{stack}-files")
        assert files.status == "created", "the files container never runs"
        assert app_client(stack).ping()


@pytest.mark.parametrize("stack", STACKS)
def test_no_drift_after_up(deployed, engine, stack):
    """`preview --expect-no-changes` passes, a second `up` changes nothing, `refresh` finds nothing."""
    sandbox = deployed[stack]
    before = engine.containers.get(f"{TEST_PREFIX}-{stack}").id
    result = sandbox.run("preview", "--stack", stack, "--expect-no-changes", check=False)
    assert result.returncode == 0, sandbox.last_output[-3000:]
    output = sandbox.up()
    assert "created" not in output and "replaced" not in output and "updated" not in output, output[-3000:]
    sandbox.workspace_stack().refresh(expect_no_changes=True)
    assert engine.containers.get(f"{TEST_PREFIX}-{stack}").id == before


def test_preview_with_drift_fails_expect_no_changes(deployed, engine):
    """The drift check can fail: a container removed behind Pulumi's back is a change."""
    sandbox = deployed["dev"]
    client = app_client("dev")
    client.set("kept:across-drift", "yes")
    engine.containers.get(f"{TEST_PREFIX}-dev").stop(timeout=30)  # writes its snapshot first
    engine.containers.get(f"{TEST_PREFIX}-dev").remove()
    try:
        sandbox.workspace_stack().refresh()
        result = sandbox.run("preview", "--stack", "dev", "--expect-no-changes", check=False)
        assert result.returncode == 1 and "redis-container" in sandbox.last_output
    finally:
        sandbox.up()
    assert app_client("dev").get("kept:across-drift") == "yes"


def test_replacement_keeps_the_data(deployed, engine):
    client = app_client("production")
    client.set("kept:across-replacement", "yes")
    client.hset("kept:hash", mapping={"a": "1"})
    before = engine.containers.get("bizosaas-test-production").id
    output = deployed["production"].up(f"hostPort={free_port()}")
    assert "redis-container replaced" in output
    assert engine.containers.get("bizosaas-test-production").id != before
    client = app_client("production")
    assert client.get("kept:across-replacement") == "yes" and client.hgetall("kept:hash") == {"a": "1"}


def test_destroy_keeps_the_data_volumes_and_up_brings_the_data_back(deployed, engine):
    sandbox = deployed["production"]
    app_client("production").set("kept:across-destroy", "yes")
    sandbox.destroy()
    assert not engine.containers.list(all=True, filters={"name": f"^/{TEST_PREFIX}-production"})
    volumes = {v.name for v in engine.volumes.list()}
    assert {own_names("production")["volumeName"], own_names("production")["volumeName"] + "_durable"} <= volumes
    sandbox.up()
    assert app_client("production").get("kept:across-destroy") == "yes"


def test_dev_destroy_removes_the_network_it_created(deployed, engine):
    sandbox = deployed["dev"]
    sandbox.destroy()
    assert not engine.networks.list(names=[own_names("dev")["networkName"]])
    assert engine.volumes.get(own_names("dev")["volumeName"]), "retainDataOnDestroy keeps the volume"
    sandbox.up()
    assert app_client("dev").ping()


def test_outputs_mask_secrets_unless_asked(deployed):
    port = deployed["staging"].port
    masked = cli("outputs", "--stack", "staging").stdout
    clear = json.loads(cli("outputs", "--stack", "staging", "--show-secrets").stdout)
    password = clear["redis_password"]
    assert password not in masked and "[secret]" in masked
    assert clear["redis_url"] == f"redis://default:{password}@127.0.0.1:{port}/0"
    assert clear["port"] == port


def _passwords() -> list[str]:
    found = []
    for stack in STACKS:
        values = outputs(stack)
        for key, value in values.items():
            if key.endswith("redis_password"):
                found.append(value)
            if key.endswith("redis_admin_url"):
                found.append(value.rsplit("@", 1)[0].rsplit(":", 1)[1])
    return found


def test_no_password_in_state_inspect_process_list_or_logs(deployed, engine, project):
    passwords = _passwords()
    assert len(passwords) == 7  # staging 2, production 2 + 2 (durable), dev 1 (admin)
    cmdlines = []
    for pid in Path("/proc").iterdir():
        if pid.name.isdigit():
            try:
                cmdlines.append((pid / "cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                continue
    containers = engine.containers.list(all=True, filters={"name": f"^/{TEST_PREFIX}-"})
    assert len(containers) >= 8  # 4 Redis containers, each with its files container
    inspected = json.dumps([engine.api.inspect_container(c.id) for c in containers])
    logs = "".join(c.logs().decode(errors="replace") for c in containers)
    # `pulumi stack export` as an operator runs it (the Automation API's export shows secrets).
    exported = "".join(
        subprocess.run(
            [pulumi_stack.require_cli(), "stack", "export", "--stack", stack],
            capture_output=True,
            text=True,
            check=True,
            cwd=project.folder,
            env={**os.environ, **sandbox.env()},
        ).stdout
        for stack, sandbox in deployed.items()
    )
    backend = "".join(
        path.read_text(errors="replace")
        for path in (project.folder / pulumi_stack.STATE_DIR_NAME).rglob("*")
        if path.is_file()
    )
    assert '"ciphertext"' in exported and '"ciphertext"' in backend, "secrets are encrypted in the state"
    for password in passwords:
        assert not [c for c in cmdlines if password in c]
        for place, text in (("inspect", inspected), ("logs", logs), ("export", exported), ("backend", backend)):
            assert password not in text, f"a password in clear in {place}"


def test_without_a_passphrase_nothing_is_deployed(engine, offline_image):
    """The state holds the generated passwords, encrypted: no passphrase, no container."""
    own = f"{TEST_PREFIX}-nopass"
    sandbox = Sandbox("dev", {"containerName": own, "networkName": own, "volumeName": f"{own}-data"})
    sandbox.overrides |= {"image": offline_image, "hostPort": free_port()}
    sandbox.write()
    env = {k: v for k, v in {**os.environ, **sandbox.env()}.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    try:
        result = subprocess.run(
            [str(CLI), "up", "--stack", "dev", "--no-verify"], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            "bizosaas-redis up: the local file backend encrypts secrets with a passphrase: set "
            "PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE), or log in to Pulumi Cloud (pulumi login)"
        ]
        assert not engine.containers.list(all=True, filters={"name": own})
        assert not engine.networks.list(names=[own]) and not engine.volumes.list(filters={"name": own})
    finally:
        sandbox.project.remove()


def test_a_missing_external_network_is_one_line_before_anything_changes(engine, offline_image):
    own = f"{TEST_PREFIX}-nonet"
    names = {"containerName": own, "networkName": f"{own}-missing", "volumeName": f"{own}-data"}
    sandbox = Sandbox("staging", stand_in_overrides("staging", offline_image, names))
    try:
        result = sandbox.attempt()
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"bizosaas-redis up: redis:networkName = {own}-missing: the network is external "
            "(redis:networkExternal: true) and does not exist on the Docker host; create it "
            f"(docker network create {own}-missing) or set redis:networkExternal to false; nothing was changed"
        )
        assert not engine.containers.list(all=True, filters={"name": own})
    finally:
        sandbox.project.remove()


def test_a_resource_the_engine_fails_is_named_with_the_engines_own_error(engine, offline_image):
    """`up` prints what the engine said (the resource and its error), never an empty `stderr:`."""
    own = f"{TEST_PREFIX}-noimage"
    names = {"containerName": own, "networkName": TEST_EXTERNAL_NETWORK, "volumeName": f"{own}-data"}
    missing = f"localhost/redis-{own}:1"  # neither here nor in any registry
    sandbox = Sandbox("staging", {**stand_in_overrides("staging", offline_image, names), "image": missing})
    try:
        result = sandbox.attempt()
        assert result.returncode == 1, sandbox.last_output[-3000:]
        [line] = result.stderr.strip().splitlines()[-1:]
        assert line.startswith("bizosaas-redis up: pulumi failed: docker:index:RemoteImage (redis-image): "), line
        assert missing in line and not line.endswith("stderr:"), line
    finally:
        sandbox.run("destroy", "--stack", "staging", "--yes", check=False)
        sandbox.project.remove()
    assert not engine.containers.list(all=True, filters={"name": own})


def test_a_tls_stack_is_healthy_and_serves_only_tls(deployed, engine, tmp_path):
    """TLS on the dev stack, with certificates Redis can read."""
    from test_redis_conf_server import _make_certs

    from bizosaas_redis_ops.deploy import doctor

    certs = tmp_path / "certs"
    certs.mkdir(mode=0o755)
    _make_certs(certs)
    assert doctor.tls_files_check(certs).status == "FAIL"  # root-owned key: Redis could not read it
    for name in ("tls.crt", "tls.key", "ca.crt"):
        os.chown(certs / name, REDIS_UID, REDIS_GID)
    (certs / "tls.key").chmod(0o600)
    assert doctor.tls_files_check(certs).status == "OK"

    sandbox = deployed["dev"]
    port = free_port()
    output = sandbox.up("tlsEnabled=true", f"tlsCertsDir={certs}", "tlsAuthClients=no", f"hostPort={port}")
    assert "redis-container replaced" in output  # created healthy: the healthcheck speaks TLS
    try:
        url = outputs("dev")["redis_url"]
        assert url.startswith("rediss://127.0.0.1:")
        secure = redis.Redis.from_url(url, ssl_ca_certs=str(certs / "ca.crt"), ssl_check_hostname=False)
        assert secure.ping()
        with pytest.raises(redis.ConnectionError):
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=3).ping()
        mounts = engine.containers.get("bizosaas-test-dev").attrs["Mounts"]
        assert {"Type": "bind", "Destination": "/tls", "RW": False} in [
            {k: m[k] for k in ("Type", "Destination", "RW")} for m in mounts
        ]
        _renewed_certificates_load_without_a_restart(sandbox, engine, certs, url)
    finally:
        for key in ("tlsEnabled", "tlsCertsDir", "tlsAuthClients"):
            sandbox.overrides.pop(key, None)
        sandbox.up()
    assert app_client("dev").ping()


def _renewed_certificates_load_without_a_restart(sandbox: Sandbox, engine, certs: Path, url: str) -> None:
    """A new certificate in tlsCertsDir (a renewal by the same CA): the next `up` updates
    the online settings only; the running server presents it, and a connected client keeps
    its session."""
    from test_redis_conf_server import _make_certs

    container = engine.containers.get("bizosaas-test-dev").id
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    presented = ssl.get_server_certificate(("127.0.0.1", port))
    held = redis.Redis.from_url(
        url, ssl_ca_certs=str(certs / "ca.crt"), ssl_check_hostname=False, single_connection_client=True
    )
    assert held.set("tls:held", "before")
    # A ca.crt of another CA only: up cannot verify the running server, and stops first.
    same_ca = (certs / "ca.crt").read_bytes()
    other = certs.parent / "other-ca"
    other.mkdir()
    _make_certs(other)
    (certs / "ca.crt").write_bytes((other / "ca.crt").read_bytes())
    refused = sandbox.attempt()
    (certs / "ca.crt").write_bytes(same_ca)
    line = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 1 and "certificate verify failed" in line and line.endswith("nothing was changed")
    _make_certs(certs)  # the CA in the folder signs a new certificate, written in place
    output = sandbox.up()
    assert re.search(r"redis-online +updated", output) and "replaced" not in output, output[-3000:]
    assert engine.containers.get("bizosaas-test-dev").id == container, "the renewal restarted Redis"
    assert held.get("tls:held") == b"before", "the connected client lost its session"
    renewed = ssl.get_server_certificate(("127.0.0.1", port))
    assert renewed != presented and _der(renewed) == _der((certs / "tls.crt").read_text())
    fresh = redis.Redis.from_url(url, ssl_ca_certs=str(certs / "ca.crt"), ssl_check_hostname=False)
    assert fresh.ping()
    sandbox.run("preview", "--stack", "dev", "--expect-no-changes")
    _client_certificates_required_without_a_restart(sandbox, engine, certs, url)


def _client_certificates_required_without_a_restart(sandbox: Sandbox, engine, certs: Path, url: str) -> None:
    """tlsAuthClients yes, then back to no: set on the running server (the same container),
    a client without a certificate refused in between, one with it served throughout."""
    container = engine.containers.get("bizosaas-test-dev").id
    trusted = {"ssl_ca_certs": str(certs / "ca.crt"), "ssl_check_hostname": False, "retry": Retry(NoBackoff(), 0)}
    certified = redis.Redis.from_url(
        url, ssl_certfile=str(certs / "tls.crt"), ssl_keyfile=str(certs / "tls.key"), **trusted
    )
    for value, refused in (("yes", True), ("no", False)):
        output = sandbox.up(f"tlsAuthClients={value}")
        # online.conf's files container is replaced; the server's is not.
        assert re.search(r"redis-online +updated", output), output[-3000:]
        assert not re.search(r"Container redis-container (replac|updat|creat|delet)", output), output[-3000:]
        assert engine.containers.get("bizosaas-test-dev").id == container, f"tlsAuthClients {value} restarted Redis"
        anonymous = redis.Redis.from_url(url, socket_timeout=3, **trusted)
        if refused:
            with pytest.raises(redis.ConnectionError):
                anonymous.ping()
        else:
            assert anonymous.ping()
        assert certified.ping()


def _der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


def test_the_exporter_reads_a_tls_only_redis_over_tls(deployed, engine, tmp_path):
    """Staging with TLS on: the exporter verifies Redis with the CA (readable through Redis's
    group only) against the certificate's name for the container, and reads it."""
    from test_redis_conf_server import _make_certs

    certs = tmp_path / "certs"
    certs.mkdir(mode=0o755)
    _make_certs(certs, dns_names=(f"{TEST_PREFIX}-staging",))
    for name in ("tls.crt", "tls.key", "ca.crt"):
        os.chown(certs / name, REDIS_UID, REDIS_GID)
    (certs / "tls.key").chmod(0o600)
    (certs / "ca.crt").chmod(0o640)
    sandbox = deployed["staging"]
    sandbox.up("tlsEnabled=true", f"tlsCertsDir={certs}")
    try:
        env = engine.containers.get(f"{TEST_PREFIX}-staging-exporter").attrs["Config"]["Env"]
        assert f"REDIS_ADDR=rediss://{TEST_PREFIX}-staging:6379" in env
        url = outputs("staging")["exporter_url"]

        def read() -> list[str]:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode().splitlines()

        deadline = time.monotonic() + 30
        while "redis_up 1" not in read():
            assert time.monotonic() < deadline, "the exporter did not read Redis over TLS"
            time.sleep(0.5)
        assert any(line.startswith("redis_connected_clients ") for line in read())
    finally:
        for key in ("tlsEnabled", "tlsCertsDir"):
            sandbox.overrides.pop(key, None)
        sandbox.up()
    assert app_client("staging").ping()


def test_bad_values_are_refused_before_deploying(deployed, engine):
    before = engine.containers.get("bizosaas-test-dev").id
    result = deployed["dev"].attempt("maxmemoryPolicy=lru", "maxclients=0")
    assert result.returncode == 1
    assert "Pulumi.dev.yaml: 2 invalid setting(s)" in result.stderr
    assert "redis:maxmemoryPolicy" in result.stderr and "redis:maxclients" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert engine.containers.get("bizosaas-test-dev").id == before


def test_verify_of_a_missing_container_is_one_line(engine):
    result = cli("verify", "--container", "bizosaas-test-no-such-container", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "bizosaas-redis verify: no container named bizosaas-test-no-such-container"


def test_a_taken_port_is_refused_before_the_running_container_is_touched(deployed, engine):
    before = engine.containers.get(f"{TEST_PREFIX}-dev")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = deployed["dev"].attempt(f"hostPort={taken}")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"bizosaas-redis up: redis:hostPort = {taken}: 127.0.0.1:{taken} is taken (Address already in use); "
        "choose a free port or stop what holds it; nothing was changed"
    )
    after = engine.containers.get(f"{TEST_PREFIX}-dev")
    assert after.id == before.id and after.status == "running"


def test_the_unix_socket_serves_consumers_with_the_group_and_no_one_else(deployed, engine, offline_image):
    """unixSocket: consumer containers that mount the volume with group 1000 connect; others cannot."""
    from bizosaas_redis import redis_conf
    from bizosaas_redis_ops.deploy.docker_engine import run_to_completion

    sandbox = deployed["staging"]
    output = sandbox.up("unixSocket=true")
    assert "redis-container replaced" in output
    volume = f"{TEST_PREFIX}-staging-socket"
    try:
        env = outputs("staging")["consumer_env"]
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
        over_tcp = redis.Redis.from_url(outputs("staging")["redis_url"], decode_responses=True)
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
        sandbox.overrides.pop("unixSocket")
        sandbox.up()
        assert volume not in [v.name for v in engine.volumes.list()], "the socket volume outlives the setting"
    assert app_client("staging").ping()


def test_the_policy_pack_runs_through_the_engine(engine, offline_image):
    """`preview` loads the pack from the project venv: the unsafe fixture stack is refused
    with exactly its mandatory violations; dev's findings are advisory and only warn."""
    from conftest import ROOT

    own = f"{TEST_PREFIX}-unsafe"
    names = {"containerName": own, "volumeName": f"{own}-data", "networkName": TEST_EXTERNAL_NETWORK}
    unsafe = Sandbox("unsafe", names, source=ROOT / "tests" / "fixtures" / "Pulumi.unsafe.yaml")
    try:
        refused = unsafe.run("preview", "--stack", "unsafe", check=False)
        assert refused.returncode == 1, unsafe.last_output[-3000:]
        mandatory = set(re.findall(r"\[mandatory\]\s+(redis-[a-z-]+)", unsafe.last_output))
        assert mandatory == {
            "redis-dangerous-commands-denied",
            "redis-durable-data-not-evicted",
            "redis-image-pinned",
            "redis-persistence-configured",
            "redis-port-not-public",
            "redis-restart-policy-set",
        }, unsafe.last_output[-3000:]
        assert not engine.containers.list(all=True, filters={"name": own})
    finally:
        unsafe.project.remove()
    dev = Sandbox("dev", {**own_names("dev"), "containerName": f"{own}-dev", "image": offline_image})
    try:
        warned = dev.run("preview", "--stack", "dev", check=False)
        assert warned.returncode == 0, dev.last_output[-3000:]
        assert "[advisory]  redis-auth-required" in dev.last_output and "[mandatory]" not in dev.last_output
    finally:
        dev.project.remove()


def test_a_production_sentinel_on_one_host_is_refused_by_the_pack(engine, offline_image):
    """The stack policy sees each container's Docker host through its provider, under the
    engine: a production sentinel topology on one host cannot survive that host."""
    own = f"{TEST_PREFIX}-onehost"
    names = {"containerName": own, "volumeName": f"{own}-data", "networkName": TEST_EXTERNAL_NETWORK}
    settings = {"topology": "sentinel", "advertisedHost": "127.0.0.1", "hostPort": free_port()}
    sandbox = Sandbox("production", {**stand_in_overrides("production", offline_image, names), **settings})
    try:
        refused = sandbox.run("preview", "--stack", "production", check=False)
        assert refused.returncode == 1, sandbox.last_output[-3000:]
        assert re.search(r"\[mandatory\]\s+redis-sentinel-survives-a-host", sandbox.last_output), sandbox.last_output
        assert re.search(r"with Docker host .+ down, 0 of 3 Sentinels and 0 of 3 nodes remain", sandbox.last_output)
        assert not engine.containers.list(all=True, filters={"name": own})
    finally:
        sandbox.project.remove()
