"""Run the scripts in this folder with the project's venv and packages importable.

`scripts/<name>` works from any shell: when the interpreter is not the project's venv
(created by scripts/setup), the script re-executes itself with venv/bin/python.
"""

import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "venv"

if (VENV / "bin" / "python").exists() and Path(sys.prefix).resolve() != VENV.resolve():
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), *sys.argv])

# `scripts/x | head` ends quietly, as command-line tools do.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)

for path in (ROOT / "infra", ROOT / "scripts", ROOT / "policies"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

try:
    import pulumi  # noqa: F401
except ImportError:
    sys.exit(f"{Path(sys.argv[0]).name}: the project's Python packages are missing: run scripts/setup first")
