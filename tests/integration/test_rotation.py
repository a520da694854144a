"""A password rotation with the real engine: `bizosaas-redis rotate start`, then `finish`,
on the staging stack file under the test's own names, while clients connect again and
again with the old password and with the new one.

Asserted: from start to finish no client is refused (WRONGPASS) on either password; the
passwords are set on the running server (ACL SETUSER), so the container and the Redis
process (`run_id`) stay and no knock goes unanswered; after finish the old password is
refused to a new connection and the new one works, while a connection opened on the old
one before start is still served (Redis changes a user in place); the consumers' secrets
carry the new one; no password appears in the commands' output; the stack shows no
change afterwards. Turning authentication on is the same at start; its finish restarts
Redis (protected-mode is redis.conf's)."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis_ops.deploy.sandbox import Sandbox
from conftest import TEST_PREFIX, sandbox_of
from harness import FAST, Knocker

STACK = "staging"
WITHOUT_AUTH = "dev"
NAMES = {
    "containerName": f"{TEST_PREFIX}-rotate",
    "volumeName": f"{TEST_PREFIX}-rotate-data",
    "networkName": f"{TEST_PREFIX}-rotate",
    "networkExternal": False,
}


def run_id(port: int, username: str | None, password: str | None) -> str:
    """The running Redis process's id: a restart changes it."""
    return str(redis.Redis(port=port, username=username, password=password).info("server")["run_id"])


def knocker_at(port: int, username: str | None, password: str | None) -> Knocker:
    """Knocks on the published port with one password (None: no AUTH at all)."""
    return Knocker(
        # No retries (redis-py retries a failed connection three times by default): each
        # knock is one answer of the server.
        lambda: redis.Redis(
            port=port, username=username, password=password, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )
    )


@pytest.fixture
def sandbox(engine, offline_image) -> Iterator[Sandbox]:
    yield from _deployed(engine, offline_image)


@pytest.fixture
def sandbox_without_auth(engine, offline_image) -> Iterator[Sandbox]:
    """The dev stack, which runs without a password (authEnabled false)."""
    yield from _deployed(engine, offline_image, stack=WITHOUT_AUTH)


def _deployed(engine, offline_image: str, stack: str = STACK) -> Iterator[Sandbox]:
    made = sandbox_of(stack, offline_image, *FAST, names=NAMES)
    made.up()
    yield made
    made.close(engine)
    made.project.remove()


def _outputs(sandbox: Sandbox) -> dict:
    sandbox._outputs = None  # read again after the commands' updates
    return sandbox.outputs()


def _rotate(sandbox: Sandbox, step: str, user: str, *passwords: str) -> None:
    sandbox.run("rotate", step, "--stack", STACK, "--user", user, "--no-verify")
    for password in passwords:
        assert password not in sandbox.last_output, f"rotate {step} printed a password"


def test_an_application_password_rotation_refuses_no_client(sandbox: Sandbox, engine) -> None:
    container = engine.containers.get(NAMES["containerName"]).id
    before = _outputs(sandbox)
    user, old = before["app_username"], before["redis_password"]
    process = run_id(sandbox.port, user, old)
    held = redis.Redis(port=sandbox.port, username=user, password=old, single_connection_client=True)
    held.ping()  # opened on the old password before start, kept through finish
    with knocker_at(sandbox.port, user, old) as on_old:
        _rotate(sandbox, "start", "app", old)
        assert on_old.knock(), "the previous password is still accepted after start"
        new = _outputs(sandbox)["redis_password"]
        assert new != old and new in _outputs(sandbox)["consumer_secrets"]["REDIS_URL"]
        with knocker_at(sandbox.port, user, new) as on_new:
            time.sleep(1)  # both knock on the rotated server
    assert on_old.refused == 0 and on_new.refused == 0, (on_old, on_new)
    assert on_old.accepted > 0 and on_new.accepted > 0
    print(f"\nrotate start: old password {on_old}, new password {on_new}")
    # Set on the running server: no restart, so no knock went unanswered.
    assert on_old.unreachable == 0 and on_new.unreachable == 0, (on_old, on_new)
    assert engine.containers.get(NAMES["containerName"]).id == container
    with knocker_at(sandbox.port, user, new) as on_new:
        _rotate(sandbox, "finish", "app", old, new)
    assert on_new.refused == 0 and on_new.unreachable == 0 and on_new.accepted > 0, on_new
    with pytest.raises(redis.AuthenticationError):
        knocker_at(sandbox.port, user, old).knock()
    assert knocker_at(sandbox.port, user, new).knock()
    assert held.ping(), "a connection authenticated before the rotation is still served"
    held.close()
    assert run_id(sandbox.port, user, new) == process, "Redis was restarted"
    assert engine.containers.get(NAMES["containerName"]).id == container
    sandbox.run("preview", "--stack", STACK, "--expect-no-changes")


def test_an_admin_password_rotation_keeps_the_tools_working(sandbox: Sandbox) -> None:
    old = redis.Redis.from_url(_outputs(sandbox)["redis_admin_url"]).connection_pool.connection_kwargs["password"]
    admin = _outputs(sandbox)["admin_username"]
    process = run_id(sandbox.port, admin, old)
    # Applied as the admin with the password the server holds: the previous one at start.
    _rotate(sandbox, "start", "admin", old)
    assert knocker_at(sandbox.port, admin, old).knock(), "the previous admin password is still accepted"
    sandbox.run("rotate", "finish", "--stack", STACK, "--user", "admin")  # verify and smoke with the new one
    with pytest.raises(redis.AuthenticationError):
        knocker_at(sandbox.port, admin, old).knock()
    new = redis.Redis.from_url(_outputs(sandbox)["redis_admin_url"]).connection_pool.connection_kwargs["password"]
    assert run_id(sandbox.port, admin, new) == process, "Redis was restarted"
    # Starting twice, or finishing what was not started, is refused in one line.
    refused = sandbox.run("rotate", "finish", "--stack", STACK, "--user", "admin", check=False)
    assert refused.returncode != 0 and "no rotation of the admin password is in progress" in sandbox.last_output


def _scrape(url: str) -> bool | None:
    """One scrape of the exporter: whether it read Redis (`redis_up`), None if it did not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return "redis_up 1" in response.read().decode().splitlines()
    except OSError:
        return None


def test_the_exporter_password_rotates_with_no_scrape_refused(sandbox: Sandbox) -> None:
    """`rotate start --user exporter`: the server takes both passwords before the exporter
    (replaced with the new one) uses it, so every scrape it answers read Redis; `finish`
    removes the old one. Redis is not restarted."""
    before = _outputs(sandbox)
    url, old, admin = before["exporter_url"], before["exporter_password"], before["admin_username"]
    admin_password = redis.Redis.from_url(before["redis_admin_url"]).connection_pool.connection_kwargs["password"]
    process = run_id(sandbox.port, admin, admin_password)
    scrapes: list[bool | None] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            scrapes.append(_scrape(url))
            time.sleep(0.2)

    poller = threading.Thread(target=scrape)
    poller.start()
    try:
        _rotate(sandbox, "start", "exporter", old)
        new = _outputs(sandbox)["exporter_password"]
        assert new != old and knocker_at(sandbox.port, "exporter", old).knock()
        assert knocker_at(sandbox.port, "exporter", new).knock()
        _rotate(sandbox, "finish", "exporter", old, new)
    finally:
        done.set()
        poller.join()
    print(f"\nexporter rotation: {scrapes.count(True)} scrapes read Redis, {scrapes.count(None)} unanswered")
    assert False not in scrapes, f"{scrapes.count(False)} scrapes answered without reading Redis"
    assert scrapes.count(True) > 0 and _scrape(url) is True
    with pytest.raises(redis.AuthenticationError):
        knocker_at(sandbox.port, "exporter", old).knock()
    assert run_id(sandbox.port, admin, admin_password) == process, "Redis was restarted"


def test_turning_authentication_on_refuses_no_client_until_finish(sandbox_without_auth: Sandbox, engine) -> None:
    sandbox = sandbox_without_auth
    container = engine.containers.get(NAMES["containerName"]).id
    assert "redis_password" not in _outputs(sandbox)
    with knocker_at(sandbox.port, None, None) as anonymous:
        sandbox.run("rotate", "start", "--stack", WITHOUT_AUTH, "--user", "app", "--no-verify")
        new = _outputs(sandbox)["redis_password"]
        assert new in _outputs(sandbox)["consumer_secrets"]["REDIS_URL"] and new not in sandbox.last_output
        with knocker_at(sandbox.port, "default", new) as on_new:
            time.sleep(1)
    print(f"\nrotate start from no password: anonymous {anonymous}, new password {on_new}")
    # The server itself does not change at start (its user stays nopass; the auth label is
    # its online settings'): the same container, every knock answered.
    assert engine.containers.get(NAMES["containerName"]).id == container
    assert anonymous.unreachable == 0 and on_new.unreachable == 0, (anonymous, on_new)
    assert anonymous.refused == 0 and on_new.refused == 0, (anonymous, on_new)
    assert anonymous.accepted > 0 and on_new.accepted > 0
    with knocker_at(sandbox.port, "default", new) as on_new:
        sandbox.run("rotate", "finish", "--stack", WITHOUT_AUTH, "--user", "app")  # verify and smoke, with auth on
    assert on_new.refused == 0 and on_new.accepted > 0, on_new
    assert new not in sandbox.last_output
    with pytest.raises(redis.AuthenticationError):
        knocker_at(sandbox.port, None, None).knock()
    # finish wrote the setting into the stack file, as `pulumi config set` does.
    written = yaml.safe_load((sandbox.project.folder / f"Pulumi.{WITHOUT_AUTH}.yaml").read_text())["config"]
    assert str(written["redis:authEnabled"]).lower() == "true", written
    sandbox.overrides["authEnabled"] = True
    sandbox.run("preview", "--stack", WITHOUT_AUTH, "--expect-no-changes")
