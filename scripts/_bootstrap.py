"""Make the project's packages importable from the scripts in this folder."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "infra", ROOT / "scripts", ROOT / "policies"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
