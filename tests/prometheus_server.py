"""A real Prometheus server (Debian's package) on loopback, with a data folder of its own,
scraping the exporters of a test deployment and evaluating the project's rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bizosaas_redis_ops.deploy.docker_engine import free_port

# Fast enough that an alert fires within seconds of its condition.
INTERVAL = "1s"


class Prometheus:
    def __init__(self, folder: Path, scrape_configs: list[dict[str, Any]], rules: Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise FileNotFoundError("prometheus is not installed (apt-get install prometheus)")
        self.port = free_port()
        config = {
            "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": INTERVAL},
            "rule_files": [str(rules)],
            "scrape_configs": scrape_configs,
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = folder / "prometheus.log"
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}{query}", timeout=10) as response:
            return json.loads(response.read()) if path.startswith("/api/") else response.read().decode()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                self._get("/-/ready")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def reload(self) -> None:
        """Read the rule files again (after the test rewrote them)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/-/reload", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = self._get("/api/v1/query", query=expr)
        if answer["status"] != "success":
            raise RuntimeError(f"{expr}: {answer}")
        return list(answer["data"]["result"])

    def targets_up(self) -> dict[str, str]:
        """job -> health of its target."""
        active = self._get("/api/v1/targets")["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in active}

    def firing(self) -> set[tuple[str, str]]:
        """(alertname, job) of every firing alert."""
        alerts = self._get("/api/v1/alerts")["data"]["alerts"]
        return {(a["labels"]["alertname"], a["labels"].get("job", "")) for a in alerts if a["state"] == "firing"}

    def rules_loaded(self) -> list[dict[str, Any]]:
        groups = self._get("/api/v1/rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
