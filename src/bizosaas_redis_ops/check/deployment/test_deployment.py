"""Checks of a deployed Redis container. Hold on redis:7-alpine and the offline stand-in:
no `host.process` (Debian's busybox ps rejects its options); /proc, redis-cli and
`docker inspect` instead."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis import redis_conf, sentinel_conf, startup, topology
from bizosaas_redis.constants import LABEL_ROLE, REDIS_UID, REDIS_USER
from bizosaas_redis.settings import minimum_memory_limit


def proc_status(host) -> dict[str, str]:
    """/proc/1/status of the container's main process (redis-server)."""
    lines = host.file("/proc/1/status").content_string.splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_container_is_running_and_healthy(deployment):
    state = deployment.inspect["State"]
    assert state["Running"] and state["Status"] == "running"
    assert state["Health"]["Status"] == "healthy"


def test_name_image_and_restart_policy_are_as_declared(deployment):
    assert deployment.inspect["Name"] == f"/{deployment.declared['name']}"
    declared_image = deployment.docker.images.get(deployment.image_name).id
    assert deployment.inspect["Image"] == declared_image, f"runs {deployment.inspect['Image']}"
    assert deployment.inspect["HostConfig"]["RestartPolicy"]["Name"] == deployment.declared["restart"]


def test_command_is_redis_server_with_the_rendered_config(deployment, host, admin):
    assert deployment.inspect["Config"]["Cmd"] == deployment.declared["command"]
    assert admin.info("server")["config_file"] == redis_conf.CONFIG_PATH
    conf = host.file(redis_conf.CONFIG_PATH)
    assert conf.exists and conf.uid == REDIS_UID and conf.mode == 0o600
    # The users (hashes), which ACL SAVE rewrites with the start script's umask.
    assert admin.config_get("aclfile")["aclfile"] == redis_conf.USERS_PATH
    users = host.file(redis_conf.USERS_PATH)
    assert users.exists and users.uid == REDIS_UID and users.mode == 0o600
    start = host.file(startup.START_SCRIPT_PATH)
    assert start.exists and start.uid == REDIS_UID and start.mode == 0o500


def test_attached_to_the_network_with_its_aliases(deployment):
    if deployment.node is not None:  # topology sentinel: the host's network, no port mapping
        assert deployment.inspect["HostConfig"]["NetworkMode"] == "host"
        return
    networks = deployment.inspect["NetworkSettings"]["Networks"]
    declared = deployment.declared["networksAdvanced"][0]
    assert declared["name"] in networks, f"attached to {list(networks)}"
    aliases = networks[declared["name"]]["Aliases"] or []
    for alias in declared.get("aliases", []):
        assert alias in aliases


def test_port_published_only_on_the_declared_address_and_listening(deployment, host):
    if deployment.node is not None:  # listens on its host's address and its own port
        assert not deployment.inspect["HostConfig"]["PortBindings"]
        assert host.socket(f"tcp://{deployment.node.endpoint}").is_listening
        with socket.create_connection(deployment.node.address, timeout=5):
            pass
        return
    declared = deployment.declared["ports"][0]
    bindings = deployment.inspect["HostConfig"]["PortBindings"]
    assert bindings == {"6379/tcp": [{"HostIp": declared["ip"], "HostPort": str(int(declared["external"]))}]}
    assert host.socket("tcp://0.0.0.0:6379").is_listening
    address = "127.0.0.1" if declared["ip"] in ("0.0.0.0", "::") else declared["ip"]
    with socket.create_connection((address, int(declared["external"])), timeout=5):
        pass


def test_data_is_the_named_volume_and_writable(deployment, host):
    mounts = [m for m in deployment.inspect["Mounts"] if m["Destination"] == "/data"]
    assert len(mounts) == 1
    assert mounts[0]["Type"] == "volume" and mounts[0]["Name"] == deployment.volume_name
    assert mounts[0]["RW"]
    probe = "/data/.verify-write-probe"
    assert host.run(f"touch {probe} && rm {probe}").rc == 0


def test_root_filesystem_is_read_only(deployment, host):
    assert deployment.inspect["HostConfig"]["ReadonlyRootfs"] is True
    result = host.run("touch /verify-probe")
    assert result.rc != 0 and "Read-only file system" in result.stderr
    assert deployment.inspect["HostConfig"]["Tmpfs"] == deployment.declared["tmpfs"]


def test_redis_runs_as_a_non_root_user(deployment, host):
    status = proc_status(host)
    uid = status["Uid"].split()
    assert status["Name"].startswith(f"{deployment.settings.flavour}-server")
    assert uid[0] == uid[1] == str(REDIS_UID), status["Uid"]
    assert deployment.inspect["Config"]["User"] == REDIS_USER


def test_capabilities_dropped_and_no_new_privileges(deployment, host):
    assert deployment.inspect["HostConfig"]["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in deployment.inspect["HostConfig"]["SecurityOpt"]
    status = proc_status(host)
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    assert not deployment.inspect["HostConfig"]["Privileged"]


def test_memory_limit_is_set_above_maxmemory(deployment):
    limit = deployment.inspect["HostConfig"]["Memory"]
    assert limit == deployment.declared["memory"] * 1024**2
    assert limit >= minimum_memory_limit(deployment.settings.maxmemory)


def test_logs_rotate(deployment):
    log = deployment.inspect["HostConfig"]["LogConfig"]
    assert log["Type"] == "json-file" and log["Config"] == deployment.declared["logOpts"]


def test_healthcheck_is_as_declared(deployment):
    check = deployment.inspect["Config"]["Healthcheck"]
    assert check["Test"] == deployment.declared["healthcheck"]["tests"]
    assert check["Retries"] == deployment.settings.healthcheck_retries
    assert check["Interval"] == deployment.settings.healthcheck_interval * 10**9
    assert check["Timeout"] == deployment.settings.healthcheck_timeout * 10**9


def test_config_get_matches_every_setting(deployment, admin):
    for key, value in redis_conf.expected_config(deployment.settings, deployment.node).items():
        assert admin.config_get(key) == {key: value}, key


def test_every_node_runs_the_online_settings_and_follows_the_primary(deployment, admin):
    """Every server of the stack, not only the one checked above: the settings applied
    without a restart (a node an online change missed differs), and with topology sentinel
    each other node replicating from the primary, its link up."""
    if deployment.node is None:
        expected = redis_conf.online_config(deployment.settings)
        assert admin.config_get(*expected) == expected
        return
    primary = deployment.node
    for node in topology.nodes(deployment.settings):
        client = deployment.admin_at(node.endpoint)
        expected = redis_conf.online_config(deployment.settings, node)
        assert client.config_get(*expected) == expected, node.endpoint
        if node.endpoint != primary.endpoint:
            found = client.info("replication")
            assert found["role"] == "slave", f"{node.endpoint} is a {found['role']}"
            assert f"{found['master_host']}:{found['master_port']}" == primary.endpoint, node.endpoint
            assert found["master_link_status"] == "up", f"{node.endpoint}: link {found['master_link_status']}"


def test_every_sentinel_monitors_the_primary_as_declared(deployment):
    """With topology sentinel, every Sentinel: the primary, the quorum, the settings it
    applies while it runs, and the other Sentinels and the replicas it knows."""
    settings = deployment.settings
    if deployment.node is None:
        return  # no Sentinel
    expected = sentinel_conf.sentinel_online_config(settings)
    for sentinel in topology.sentinels(settings):
        state = deployment.admin_at(sentinel.endpoint).sentinel_master(topology.master_name(settings))
        assert f"{state['ip']}:{state['port']}" == deployment.node.endpoint, sentinel.endpoint
        assert state["quorum"] == settings.sentinel_quorum, sentinel.endpoint
        assert {key: str(state[key]) for key in expected} == expected, sentinel.endpoint
        assert state["num-other-sentinels"] == settings.sentinels - 1, sentinel.endpoint
        assert state["num-slaves"] == settings.replicas, sentinel.endpoint


def test_every_node_and_sentinel_accepts_the_same_passwords(deployment, admin):
    """The service's users (application, admin, exporter) hold the same password hashes on
    every node and Sentinel as on the server checked: one, or two while a rotation runs (a
    server a rotation missed would refuse a client the others take). With topology
    sentinel, so do the topology's own: `sentinel` (Sentinels authenticate to each other
    and to the nodes with it) and, on every node, `replication` (a replica links with it to
    whichever node is primary, after a failover too)."""
    settings = deployment.settings
    users = [settings.app_username, settings.admin_username]
    if settings.exporter_enabled:
        users.append(redis_conf.EXPORTER_USER)
    node_users = users
    if deployment.node is not None:
        users = [*users, sentinel_conf.SENTINEL_USER]  # on every node and Sentinel
        node_users = [*users, sentinel_conf.REPLICATION_USER]  # on every node
    expected = {user: sorted(admin.acl_getuser(user)["passwords"]) for user in node_users}
    assert all(len(hashes) <= 2 for hashes in expected.values()), expected.keys()
    if deployment.node is None:
        return
    problems = []
    for other, checked in [
        *((node, node_users) for node in topology.nodes(settings)),
        *((sentinel, users) for sentinel in topology.sentinels(settings)),
    ]:
        client = deployment.admin_at(other.endpoint)
        differ = [u for u in checked if sorted((client.acl_getuser(u) or {}).get("passwords", [])) != expected[u]]
        if differ:
            problems.append(f"{other.endpoint}: other passwords for {', '.join(differ)}")
    assert not problems, "; ".join(problems)


def test_role_label_and_eviction_policy_fit_what_the_instance_holds(deployment, admin):
    """A split stack's durable instance never evicts; its cache does (shared: as the stack says)."""
    assert deployment.inspect["Config"]["Labels"][LABEL_ROLE] == deployment.settings.role
    policy = admin.config_get("maxmemory-policy")["maxmemory-policy"]
    if deployment.settings.role == "durable":
        assert policy == "noeviction"
    elif deployment.settings.role == "cache":
        assert policy != "noeviction"


def test_unauthenticated_commands_are_refused_where_auth_is_on(deployment):
    port = deployment.outputs["port"]
    anonymous = redis.Redis(
        host=deployment.outputs["host"], port=port, protocol=2, socket_timeout=5, retry=Retry(NoBackoff(), 0)
    )
    if deployment.settings.auth_enabled:
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("verify:anything")
    else:
        assert anonymous.ping()


def test_dangerous_commands_are_refused_for_the_application_user(deployment, app):
    assert app.ping()
    for command in deployment.settings.denied_commands:
        # Arity-correct but harmless arguments; ACL refuses before the command runs.
        args = {
            "KEYS": ["verify:none:*"],
            "CONFIG": ["GET", "maxmemory"],
            "DEBUG": ["SLEEP", "0"],
            "SHUTDOWN": ["NOSAVE"],
            "ACL": ["WHOAMI"],
            "MIGRATE": ["127.0.0.1", "1", "k", "0", "1"],
            "REPLICAOF": ["NO", "ONE"],
            "SLAVEOF": ["NO", "ONE"],
            "SWAPDB": ["0", "0"],
            "MODULE": ["LIST"],
            "PSYNC": ["?", "-1"],
        }.get(command.split("|")[0], [])
        with pytest.raises(redis.ResponseError) as refused:
            app.execute_command(*command.split("|"), *args)
        assert "permission" in str(refused.value).lower() or "not allowed" in str(refused.value), command


def test_no_password_in_docker_inspect(deployment):
    config = deployment.inspect["Config"]
    exposed = json.dumps(
        [
            config.get("Cmd"),
            config.get("Entrypoint"),
            config.get("Env"),
            config.get("Healthcheck"),
            config.get("Labels"),
        ]
    )
    everything = json.dumps(deployment.inspect)
    for password in deployment.passwords:
        assert password not in exposed
        assert password not in everything


def test_exporter_is_as_declared_hardened_and_reading_redis(deployment):
    """With exporterEnabled: its container beside Redis, hardened like it, its password in a
    file (not the environment), and its /metrics reading this Redis; without, none."""
    name = f"{deployment.name}-exporter"
    if not deployment.settings.exporter_enabled:
        assert not deployment.docker.containers.list(all=True, filters={"name": f"^/{name}$"})
        return
    inspect = deployment.docker.api.inspect_container(name)
    assert inspect["State"]["Running"]
    host_config = inspect["HostConfig"]
    assert host_config["ReadonlyRootfs"] and host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host_config["SecurityOpt"]
    assert inspect["Config"]["User"] not in ("", "0", "root")
    env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
    assert "REDIS_PASSWORD" not in env and env["REDIS_PASSWORD_FILE"]
    urls = deployment.outputs.get("exporter_urls") or [deployment.outputs["exporter_url"]]
    url = urls[deployment.node.index if deployment.node else 0]
    with urllib.request.urlopen(url, timeout=10) as response:
        samples = response.read().decode().splitlines()
    assert "redis_up 1" in samples, f"{url}: Redis not read"
    everything = json.dumps(inspect)
    for password in deployment.passwords:
        assert password not in everything
