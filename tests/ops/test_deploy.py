"""deploy/compose.yaml, checked without a container runtime: every Segue command in it is a
real command with real options, every file it names exists, every setting is one Segue reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from segue.settings import Settings

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _services() -> dict[str, dict]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def _segue_commands() -> dict[str, list[str]]:
    return {name: svc["command"] for name, svc in _services().items()
            if isinstance(svc.get("command"), list) and svc["command"][:1] == ["segue"]}


def test_the_deployment_has_its_parts() -> None:
    services = _services()
    assert {"postgres", "minio", "migrate", "api", "proxy", "worker", "worker-gpu"} <= set(services)
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    for name in ("api", "worker", "worker-gpu"):  # nothing starts before the schema is there
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"
    assert "server api:8000;" in (DEPLOY / "nginx.conf").read_text()


@pytest.mark.parametrize("service", sorted(_segue_commands()))
def test_each_command_is_accepted_by_the_real_cli(service: str) -> None:
    command = _segue_commands()[service]
    path = [token for token in command[1:] if not token.startswith("-")][:1]
    options = {token.split("=")[0] for token in command[1:] if token.startswith("--")}
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    # the options as written, then --help: an unknown option fails before help is shown
    ran = subprocess.run([sys.executable, "-m", "segue", *command[1:], "--help"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, (command, ran.stdout[-1500:], ran.stderr[-1500:])
    shown = subprocess.run([sys.executable, "-m", "segue", *path, "--help"], env=env,
                           capture_output=True, text=True, timeout=120).stdout
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", shown), (option, shown)


def test_files_and_settings_named_exist() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "segue").rglob("*.py"))
    for name, svc in _services().items():
        for env_file in svc.get("env_file", []):
            assert (DEPLOY / env_file).is_file(), (name, env_file)
        for volume in svc.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (DEPLOY / host).exists(), (name, volume)
        build = svc.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for env_file in DEPLOY.glob("*.env"):
        for line in env_file.read_text().splitlines():
            match = re.match(r"#?\s*(SEGUE_\w+)=", line)
            if match:
                variable = match.group(1)
                known = variable.removeprefix("SEGUE_").lower() in Settings.model_fields
                assert known or f'"{variable}"' in source, f"{env_file.name}: {variable}"
