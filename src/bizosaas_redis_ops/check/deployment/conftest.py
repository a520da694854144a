"""testinfra suite of a deployed stack: `bizosaas-redis verify --stack NAME` (or --container NAME).

Expectations come from the stack's Pulumi state (the container's inputs as the program
declared them, its `settings` output) and the settings model; facts come from the running
container through testinfra's docker backend, `docker inspect` from the host, and Redis
itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import docker
import pytest
import redis
import testinfra
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis import topology
from bizosaas_redis.constants import CONTAINER, LABEL_ROLE, LABEL_STACK, REMOTE_IMAGE
from bizosaas_redis.settings import NoDurableInstance, Settings
from bizosaas_redis_ops.deploy import outputs, pulumi_stack


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bizosaas-redis")
    group.addoption("--stack", help="stack whose deployment to verify")
    group.addoption("--container", help="container to verify (its stack and instance come from its labels)")
    group.addoption("--instance", default="cache", choices=["cache", "durable"], help="with layout split")


@dataclass
class Deployment:
    stack: str
    settings: Settings
    declared: dict[str, Any]  # the container's inputs as the program declared them (Pulumi state)
    image_name: str
    outputs: dict[str, Any]  # secrets included: never print
    inspect: dict[str, Any]
    docker: docker.DockerClient
    name: str  # the container checked: with topology sentinel, the primary's
    node: topology.Placed | None = None  # that node, with topology sentinel

    @property
    def volume_name(self) -> str:
        return self.node.volume_name if self.node else self.settings.volume_name

    def client(self, url_key: str = "redis_url", **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        return redis.Redis.from_url(self.outputs[url_key], decode_responses=True, socket_timeout=5, **kwargs)

    def admin_at(self, endpoint: str) -> redis.Redis:
        """The admin user at another node or a Sentinel of the topology (`host:port`): the
        same user and password everywhere."""
        parts = urlsplit(self.outputs["redis_admin_url"])
        credentials, _, _ = parts.netloc.rpartition("@")
        return redis.Redis.from_url(
            f"redis://{credentials + '@' if credentials else ''}{endpoint}/0",
            decode_responses=True,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    @property
    def passwords(self) -> list[str]:
        return [
            self.outputs[k].rsplit("@", 1)[0].rsplit(":", 1)[1]
            for k in ("redis_url", "redis_admin_url")
            if "@" in self.outputs[k]
        ]


@pytest.fixture(scope="session")
def deployment(request: pytest.FixtureRequest) -> Deployment:
    client = docker.from_env()
    stack = request.config.getoption("--stack")
    container_name = request.config.getoption("--container")
    instance = request.config.getoption("--instance")
    if container_name and not stack:
        try:
            found = client.containers.get(container_name).labels
        except docker.errors.NotFound:
            pytest.exit(f"no container named {container_name}", 2)
        stack = found.get(LABEL_STACK)
        instance = "durable" if found.get(LABEL_ROLE) == "durable" else "cache"
        if not stack:
            pytest.exit(f"container {container_name} has no {LABEL_STACK} label: pass --stack", 2)
    if not stack:
        pytest.exit("pass --stack NAME or --container NAME", 2)
    try:
        found_outputs = outputs.load(stack, instance)
        settings = outputs.settings(stack, instance, found_outputs)
    except NoDurableInstance as exc:
        pytest.exit(str(exc), 2)
    node = None
    if settings.topology == "sentinel":
        # The primary Sentinel reports (outputs.load follows it), on its host's engine.
        node = next(n for n in topology.nodes(settings) if n.container_name == found_outputs["container_name"])
        if node.host.url:
            client = docker.DockerClient(base_url=node.host.url)
            os.environ["DOCKER_HOST"] = node.host.url  # testinfra's docker backend runs the docker CLI
    name = container_name or (node.container_name if node else settings.name)
    try:
        inspect = client.api.inspect_container(name)
    except docker.errors.NotFound:
        pytest.exit(f"container {name} of stack {stack} does not exist: deploy the stack first", 2)
    resources = pulumi_stack.stack_resources(stack)
    declared = next((r for r in resources if r["type"] == CONTAINER and r.get("outputs", {}).get("name") == name), None)
    if declared is None:
        pytest.exit(f"stack {stack} declares no container {name}", 2)
    image = next(r for r in resources if r["type"] == REMOTE_IMAGE and r.get("parent") == declared.get("parent"))
    return Deployment(
        stack=stack,
        settings=settings,
        declared=declared["inputs"],
        image_name=image["inputs"]["name"],
        outputs=found_outputs,
        inspect=inspect,
        docker=client,
        name=name,
        node=node,
    )


@pytest.fixture(scope="session")
def host(deployment: Deployment) -> testinfra.host.Host:
    """Inside the container (docker exec, as the container's user)."""
    return testinfra.get_host(f"docker://{deployment.name}")


@pytest.fixture(scope="session")
def docker_host() -> testinfra.host.Host:
    """The Docker host itself."""
    return testinfra.get_host("local://")


@pytest.fixture(scope="session")
def admin(deployment: Deployment) -> redis.Redis:
    return deployment.client("redis_admin_url")


@pytest.fixture(scope="session")
def app(deployment: Deployment) -> redis.Redis:
    return deployment.client("redis_url")
