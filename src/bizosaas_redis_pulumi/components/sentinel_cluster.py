"""SentinelCluster: one instance's sentinel topology, its nodes (RedisServer) and its
Sentinels (RedisSentinel), each on its Docker host."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from bizosaas_redis import handover, startup, topology
from bizosaas_redis.settings import Settings
from bizosaas_redis_pulumi.components.redis_server import NodeOf, Passwords, RedisServer
from bizosaas_redis_pulumi.components.sentinel import RedisSentinel

COMPONENT_TYPE = "bizosaas:redis:SentinelCluster"


def handover_hook(
    settings: Settings, node: topology.Placed, resource: str, admin_password: pulumi.Input[str]
) -> pulumi.ResourceHook:
    """The node container's before-delete hook: a node goes only once the others replicate
    (handover.wait_for_the_others), and the primary first moves its role to a replica
    (handover.move_primary_away), one already replaced when one can take it."""
    known: dict[str, str] = {}
    pulumi.Output.from_input(admin_password).apply(lambda password: known.setdefault("admin", password))

    # The nodes `pulumi up` replaces before this one (see SentinelCluster): handed to one of
    # them, the role does not move again in the same update.
    replaced_before = [n for n in topology.nodes(settings) if n.index > node.index]

    def before_delete(args: pulumi.ResourceHookArgs) -> None:
        if "admin" not in known:  # a guard that cannot see never passes
            raise handover.HandoverError(
                f"{node.container_name}: the admin password is not known yet, so no Sentinel can be asked whether "
                "it is the primary; the node was not replaced"
            )
        if not handover.wait_for_the_others(settings, node, known["admin"]):
            # Replaced now, the primary could be left with too few replicas (writes refused,
            # NOREPLICAS), or the role could go to a replica that misses writes.
            raise handover.HandoverError(
                f"{node.container_name}: the other nodes do not all replicate from the primary after "
                f"{handover.HANDOVER_TIMEOUT:.0f} s; not replacing it (a replica that cannot link: did "
                "redis:replicationPassword change? INFO replication on each node says which)"
            )
        moved = handover.move_primary_away(settings, node, known["admin"], prefer=replaced_before)
        if moved is not None:
            # In `pulumi up`'s output: operators see that a planned change moved the primary
            # (and why writes paused longer, when an attempt was aborted).
            pulumi.log.info(f"{node.container_name} handed the primary role to {moved}")

    return pulumi.ResourceHook(f"{resource}-handover", before_delete)


class SentinelCluster(pulumi.ComponentResource):
    """Nodes and Sentinels, each on its Docker host (a provider per host). `primary` is
    node 0 (the first primary): it keeps the standalone container's resource name, name,
    volume and port.

    Order, for changes that replace every node: the replicas first (node 0 depends on them),
    then node 0, whose hook hands the primary role over before it goes; Sentinels last, one
    after the other. `others`: during a rotation of the replication or Sentinel password,
    the one accepted beside each (sentinel_conf.Accepted)."""

    primary: RedisServer

    def __init__(
        self,
        name: str,
        settings: Settings,
        passwords: Passwords,
        replication_password: pulumi.Input[str],
        sentinel_password: pulumi.Input[str],
        after: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        others: tuple[pulumi.Input[str] | None, pulumi.Input[str] | None] = (None, None),
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name, self._settings = name, settings
        providers = {
            host_name: docker.Provider(f"{name}-docker-{host_name}", host=host.url, opts=self._child())
            if host.url
            else None
            for host_name, host in settings.hosts.items()
        }
        master = topology.master_name(settings)
        sentinel_endpoints = [s.address for s in topology.sentinels(settings)]
        nodes: list[RedisServer] = []
        for node in reversed(topology.nodes(settings)):
            resource = name if node.index == 0 else f"{name}-node-{node.index}"
            node_of = NodeOf(
                node,
                replication_password,
                sentinel_password,
                startup.Discovery(master, sentinel_endpoints, node.address),
                # During an admin rotation the previous password: the running servers hold
                # it, the replaced ones both (bizosaas_redis_ops.deploy.preflight checks it).
                handover_hook(settings, node, resource, passwords.running_admin),
                replication_other=others[0],
                sentinel_other=others[1],
            )
            depends = [*(after or []), *(n.container for n in nodes)]
            server_opts = self._child(providers[node.host_name])
            nodes.append(RedisServer(resource, settings, passwords, None, depends or None, node_of, server_opts))
        placed: list[docker.Container] = []
        for sentinel in topology.sentinels(settings):
            peers = [s for s in sentinel_endpoints if s != sentinel.address]
            # One after the other, each healthy before the next goes: a Sentinel starting
            # learns the primary from its peers, and with every peer replaced at once none
            # answers, so it would monitor node 0 from its file, a replica after a handover.
            placed.append(
                RedisSentinel(
                    f"{name}-sentinel-{sentinel.index}",
                    settings,
                    sentinel,
                    passwords,
                    sentinel_password,
                    startup.Discovery(master, peers),
                    after=[*(n.container for n in nodes), *placed],
                    opts=self._child(providers[sentinel.host_name]),
                    sentinel_other=others[1],
                ).container
            )
        self.primary = nodes[-1]
        self.register_outputs({"primary": self.primary.container.name})

    def _child(self, provider: docker.Provider | None = None) -> pulumi.ResourceOptions:
        """A child on `provider`'s host. Nodes, Sentinels and providers were children of
        the stack before this component existed: the alias keeps their URNs, so that an
        update does not replace them."""
        return pulumi.ResourceOptions(
            parent=self,
            providers=[provider] if provider is not None else None,
            aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)],
        )
