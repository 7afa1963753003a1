"""ops/image_check.py (`make image-check`) stays in step with ops/Dockerfile.

The check itself downloads every dependency into a fresh virtualenv (about half a minute),
so `make test` does not run it. These tests make sure it would replay exactly what the
Dockerfile's builder stage runs: it reads the commands from the Dockerfile, so they cannot
drift, but a Dockerfile change it cannot follow (``RUN --mount``, ``ADD``, installs moved to
another stage) must fail here rather than be silently skipped there.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.docker import DOCKERFILE, dockerfile_stages

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "ops/image_check.py"
_ABSOLUTE = re.compile(r"(?<![\w.:/-])/[\w.-][^\s'\";&|()<>]*")


@pytest.fixture(scope="module")
def image_check() -> ModuleType:
    """ops/image_check.py as a module (ops/ is not a package)."""
    spec = importlib.util.spec_from_file_location("image_check", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class TestImageCheck:
    def test_it_replays_every_run_of_the_builder_stage(self, image_check: ModuleType) -> None:
        """The plan's RUN commands are the builder's, in order, pip installs included."""
        plan = image_check.plan(DOCKERFILE.read_text())
        builder_runs = [args for keyword, args in dockerfile_stages()[0] if keyword == "RUN"]
        assert plan.runs == builder_runs
        commands = " ".join(plan.runs)
        assert "pip install -r /tmp/requirements.txt" in commands, "dependencies not installed"
        assert "pip install --no-deps ." in commands, "the project itself not installed"
        copies = [step.arguments for step in plan.steps if step.keyword == "COPY"]
        assert any("agentlink" in c for c in copies)
        assert any("consumers" in c for c in copies)

    def test_it_checks_the_venv_and_command_the_final_stage_uses(
        self, image_check: ModuleType
    ) -> None:
        """The venv it tests is the one the final stage copies; the entrypoint is agentlink."""
        plan = image_check.plan(DOCKERFILE.read_text())
        final = dockerfile_stages()[-1]
        copied = [args for keyword, args in final if keyword == "COPY" and "--from=" in args]
        assert copied == [f"--from=builder {plan.venv} {plan.venv}"]
        assert any(f"-m venv {plan.venv}" in run for run in plan.runs)
        assert plan.entrypoint == '["agentlink"]'
        assert plan.python_version == "3.11"
        assert {"libpango-1.0-0", "fonts-dejavu-core"} <= set(plan.final_packages)

    def test_image_paths_are_moved_into_the_scratch_folder(
        self, image_check: ModuleType, tmp_path: Path
    ) -> None:
        """No replayed command touches /opt, /src or /tmp of this machine; URLs stay."""
        replay = image_check.Replay(tmp_path, Path(sys.executable), dry_run=True)
        for run in image_check.plan(DOCKERFILE.read_text()).runs:
            mapped = replay.mapped(run)
            for path in _ABSOLUTE.findall(mapped):
                assert path.startswith((str(tmp_path), "/dev/")), f"{path} in {mapped}"
        url = "pip install https://example.org/simple/x.whl"
        assert replay.mapped(url) == url
        assert replay.mapped("> /tmp/r.txt") == f"> {tmp_path}/tmp/r.txt"

    @pytest.mark.parametrize(
        "step",
        [
            "RUN --mount=type=cache,target=/root/.cache pip install -r /tmp/r.txt",
            "ADD https://example.org/x.tar.gz /src/",
            'RUN ["pip", "install", "."]',
            'SHELL ["/bin/bash", "-c"]',
        ],
    )
    def test_a_step_it_cannot_replay_stops_it(self, image_check: ModuleType, step: str) -> None:
        """A builder instruction it does not understand is an error, not a silent skip."""
        dockerfile = DOCKERFILE.read_text().replace("WORKDIR /src\n", f"WORKDIR /src\n{step}\n", 1)
        assert step in dockerfile
        with pytest.raises(image_check.UnsupportedError, match="not replayed"):
            image_check.plan(dockerfile)

    def test_dry_run_lists_the_steps(self) -> None:
        """`image_check.py --dry-run` plans the replay without running anything."""
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--dry-run"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        lines = [line for line in done.stdout.splitlines() if line.startswith("image-check: RUN")]
        assert len(lines) == len([k for k, _ in dockerfile_stages()[0] if k == "RUN"])
        assert "/opt/venv/bin/pip install --no-deps ." in done.stdout
