"""CrossGuard policy pack: `pulumi preview --policy-pack policies`.

Building PolicyPack starts the analyzer server, so only this file does it; the rules
live in redis_policies/rules.py, importable and tested without the engine. The engine
runs this folder as a script directory (runpy puts it first on sys.path), so the rules
import from here without an install.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from redis_policies.rules import policies

PolicyPack(
    name="bizosaas-redis",
    # Every rule is mandatory unless the pack config (policies/config/<stack>.json) lowers it.
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
)
