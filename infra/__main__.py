"""Pulumi entry point (Pulumi.yaml `main: infra/`): the program lives in bizosaas_redis."""

import sys
from pathlib import Path

# Pulumi runs this file by path; make the package beside it importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bizosaas_redis.program import main

main()
