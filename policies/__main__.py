"""CrossGuard policy pack: `pulumi preview --policy-pack policies`.

Building PolicyPack starts the analyzer server, so only this file does it; the rules
live in redis_policies/rules.py, importable and tested without the engine.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from redis_policies.rules import policies

PolicyPack(
    name="bizosaas-redis",
    # Every rule is mandatory unless the pack config (policies/config/<stack>.json) lowers it.
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
)
