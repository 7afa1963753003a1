"""Build ops/Dockerfile's Python environment without Docker, and check it (`make image-check`).

There is no Docker engine where the tests run, yet a dependency missing from pyproject.toml,
a data file left out of the package, or an install step that no longer works would only
show when the image is built on the server. This script replays the Dockerfile's builder
stage on this machine instead, reading the commands from the Dockerfile itself, so the two
cannot drift apart:

1. The builder stage's ``ENV``, ``WORKDIR``, ``COPY`` (from the repository, which is the build
   context) and ``RUN`` (through ``/bin/sh -c``, like Docker) run in a fresh temporary
   folder that stands for the image's file system: every absolute path in them (``/opt/venv``,
   ``/src``, ``/tmp/…``) is moved into that folder, and ``python`` is a CPython of the
   version the Dockerfile's base image has. pip sees no pip configuration of this machine
   (like in the image), only its certificate and proxy variables. An instruction it cannot
   replay faithfully stops the run with a message.
2. The virtualenv is then used as the final stage uses it (isolated mode, outside the
   repository): every module of ``agentlink`` and ``consumers`` imports, ``pip check`` finds
   no broken requirement, the console scripts answer ``--help``, and one report renders to
   a PDF with the installed package data (WeasyPrint uses this machine's Pango, the library
   the final stage installs with apt-get). The final stage's apt packages must exist in this
   machine's Debian release when it is the image's one.

Usage: ``python ops/image_check.py [--dry-run] [--keep] [--python PATH]``. It takes about a
minute and downloads every dependency from PyPI; ``make test`` does not run it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "ops/Dockerfile"

# Variables of this machine that only say how to reach PyPI; everything else pip reads
# (pip.conf, PIP_FIND_LINKS, PIP_INDEX_URL, …) would make the check differ from the build.
NETWORK_VARIABLES = (
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
# An absolute path in a RUN/ENV/COPY/WORKDIR value: moved into the stand-in file system,
# except device files, which the image and this machine share.
_ABSOLUTE_PATH = re.compile(r"""(?<![\w.$}:/-])/(?!dev/)[A-Za-z0-9_][^\s'";&|()<>]*""")
_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
_WHICH_PYTHON = (
    "import sys; print('%d.%d' % sys.version_info[:2], "
    "getattr(sys, '_base_executable', sys.executable))"
)
_PYTHON_IMAGE = re.compile(r"^python:(?P<version>3\.\d+)[.\w-]*$")

SMOKE_TEST = ROOT / "ops/image_smoke.py"
"""Run by the virtualenv's python: every module imports, and one report renders."""


class UnsupportedError(Exception):
    """The Dockerfile does something this script cannot replay faithfully."""


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: keyword, arguments, and the line it starts on."""

    keyword: str
    arguments: str
    line: int


@dataclass
class Plan:
    """What replaying the builder stage does, with image paths still unmapped."""

    base_image: str
    python_version: str
    steps: list[Instruction] = field(default_factory=list)
    venv: str = ""  # the image path of the virtualenv the final stage copies
    final_packages: list[str] = field(default_factory=list)
    entrypoint: str = ""

    @property
    def runs(self) -> list[str]:
        """The builder's RUN commands, in order."""
        return [step.arguments for step in self.steps if step.keyword == "RUN"]


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions: continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") or (not pending and not stripped):
            continue  # comments, parser directives, blank lines
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = ""
    if pending:
        raise UnsupportedError("the Dockerfile ends inside a continued instruction")
    return found


def substitute(value: str, variables: Mapping[str, str]) -> str:
    """``${NAME}`` and ``$NAME`` from ``variables`` (build arguments and ENV so far)."""

    def one(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        return variables.get(name, match[0])

    return _VARIABLE.sub(one, value)


def stages(text: str) -> tuple[dict[str, str], list[list[Instruction]]]:
    """The build arguments declared before the first FROM, and the stages."""
    args: dict[str, str] = {}
    found: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "ARG" and not found:
            name, _, default = instruction.arguments.partition("=")
            args[name.strip()] = default.strip()
        elif instruction.keyword == "FROM":
            found.append([instruction])
        elif found:
            found[-1].append(instruction)
    if len(found) < 2:
        raise UnsupportedError("expected a builder stage and a final stage")
    return args, found


def replayable(step: Instruction) -> bool:
    """Whether the builder's ``step`` is replayed (True) or has no effect here (False)."""
    if step.keyword in {"ARG", "LABEL", "EXPOSE"}:
        return False
    if step.keyword not in {"ENV", "WORKDIR", "COPY", "RUN"}:
        raise UnsupportedError(
            f"line {step.line}: {step.keyword} is not replayed; teach ops/image_check.py"
        )
    if step.keyword in {"RUN", "COPY"} and step.arguments.startswith(("--", "[")):
        raise UnsupportedError(
            f"line {step.line}: {step.keyword} {step.arguments.split()[0]} is not replayed; "
            "teach ops/image_check.py"
        )
    return True


def plan(text: str) -> Plan:
    """Read the builder stage (the first) and what the final stage takes from it."""
    args, found = stages(text)
    builder, final = found[0], found[-1]
    head = builder[0].arguments.split()
    if len(head) != 3 or head[1].upper() != "AS":
        raise UnsupportedError(f"line {builder[0].line}: the builder stage is not named")
    base = substitute(head[0], args)
    version = _PYTHON_IMAGE.match(base)
    if not version:
        raise UnsupportedError(f"line {builder[0].line}: base image {base} is not python:3.x")
    result = Plan(base_image=base, python_version=version["version"])
    result.steps = [step for step in builder[1:] if replayable(step)]
    for step in final:
        if step.keyword == "COPY" and f"--from={head[2]}" in step.arguments:
            source, target = step.arguments.split()[1:3]
            if source != target:
                raise UnsupportedError(f"line {step.line}: the venv must keep its path")
            result.venv = source
        elif step.keyword == "RUN" and "apt-get install" in step.arguments:
            words = step.arguments.split("apt-get install", 1)[1].split("&&")[0].split()
            result.final_packages += [w for w in words if not w.startswith("-")]
        elif step.keyword == "ENTRYPOINT":
            result.entrypoint = step.arguments
    if not result.venv:
        raise UnsupportedError("the final stage copies no virtualenv from the builder")
    return result


def env_pairs(arguments: str) -> list[tuple[str, str]]:
    """``ENV A=1 B="x y"`` as pairs (the legacy ``ENV A 1`` form too)."""
    words = shlex.split(arguments)
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [(name, value) for name, _, value in (word.partition("=") for word in words)]


class Replay:
    """The builder stage, replayed in ``root`` (the stand-in for the image's file system)."""

    def __init__(self, root: Path, python: Path, *, dry_run: bool = False) -> None:
        self.root = root
        self.dry_run = dry_run
        self.workdir = "/"
        bin_dir = root / ".image-check-bin"
        # `python` in a RUN line is the base image's interpreter
        if not dry_run:
            bin_dir.mkdir(parents=True)
            (bin_dir / "python").symlink_to(python)
            for folder in ("tmp", "root"):  # what every base image has
                (root / folder).mkdir()
        self.env = {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(root / "root"),
            "LANG": "C.UTF-8",
            "PIP_CONFIG_FILE": os.devnull,
        }
        self.env.update({k: os.environ[k] for k in NETWORK_VARIABLES if k in os.environ})

    def path(self, image_path: str) -> Path:
        """Where an absolute image path lives in ``root``."""
        return self.root / image_path.lstrip("/")

    def mapped(self, text: str) -> str:
        """``text`` with every absolute image path moved into ``root``."""
        return _ABSOLUTE_PATH.sub(lambda m: str(self.path(m[0])), text)

    def cwd(self) -> Path:
        return self.path(self.workdir)

    def run(self, step: Instruction) -> None:
        """Replay one instruction."""
        if step.keyword == "ENV":
            for name, value in env_pairs(step.arguments):
                self.env[name] = self.mapped(substitute(value, self.env))
        elif step.keyword == "WORKDIR":
            target = substitute(step.arguments, self.env)
            self.workdir = target if target.startswith("/") else f"{self.workdir}/{target}"
            if not self.dry_run:
                self.cwd().mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            self.copy(shlex.split(step.arguments), step)
        else:
            command = self.mapped(substitute(step.arguments, self.env))
            say(f"RUN {command}")
            if not self.dry_run:
                subprocess.run(["/bin/sh", "-c", command], cwd=self.cwd(), env=self.env, check=True)

    def copy(self, words: Sequence[str], step: Instruction) -> None:
        """COPY from the build context (the repository), with Docker's rules: a folder's
        contents go into the target; files go into it when it ends in ``/``."""
        *sources, target = words
        destination = self.path(target) if target.startswith("/") else self.cwd() / target
        say(f"COPY {' '.join(sources)} -> {destination}")
        for source in sources:
            origin = ROOT / source
            if not origin.exists():
                raise UnsupportedError(f"line {step.line}: COPY source {source} does not exist")
            if self.dry_run:
                continue
            if origin.is_dir():
                # what .dockerignore keeps out of the context: bytecode, build leftovers
                ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")
                shutil.copytree(origin, destination, ignore=ignore, dirs_exist_ok=True)
            else:
                into = destination / origin.name if target.endswith("/") else destination
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)


def say(message: str) -> None:
    sys.stdout.write(f"image-check: {message}\n")
    sys.stdout.flush()


def find_python(version: str, given: str | None) -> Path:
    """The real interpreter (not a pyenv shim or a venv) of ``version``, the base image's."""
    for candidate in [given] if given else [f"python{version}", "python3", sys.executable]:
        found = shutil.which(candidate) if candidate else None
        if not found:
            continue
        reported = subprocess.run(
            [found, "-c", _WHICH_PYTHON], capture_output=True, text=True, check=True
        ).stdout.split()
        if reported[0] == version:
            return Path(reported[1])
        if given:
            raise UnsupportedError(f"{given} is Python {reported[0]}; the image has {version}")
    raise UnsupportedError(f"no Python {version} (the image's) found; pass --python")


def check_venv(venv: Path, entrypoint: str, scratch: Path) -> None:
    """Use the virtualenv as the final stage does, from outside the repository."""
    env = {
        "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
    }
    python = str(venv / "bin/python")
    script = entrypoint.strip('[]" ').split('"')[0] or "agentlink"
    for label, command in (
        ("pip check", [python, "-m", "pip", "check"]),
        (f"{script} --help", [str(venv / "bin" / script), "--help"]),
        ("python -m consumers --help", [python, "-I", "-m", "consumers", "--help"]),
        ("imports and a report", [python, "-I", str(SMOKE_TEST)]),
    ):
        say(label)
        done = subprocess.run(
            command, cwd=scratch, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"image-check: FAILED at {label}:\n{done.stdout}{done.stderr}")
        if label.startswith("imports"):
            say(done.stdout.strip())


def check_apt_packages(packages: Sequence[str], base_image: str) -> None:
    """The final stage's apt packages exist in this machine's Debian, if it is the image's."""
    release = base_image.rsplit("-", 1)[-1]
    os_release = Path("/etc/os-release")
    here = os_release.read_text() if os_release.exists() else ""
    if f"VERSION_CODENAME={release}" not in here or not shutil.which("apt-cache"):
        say(f"apt packages not checked (this machine is not Debian {release} with apt)")
        return
    missing = [
        name
        for name in packages
        if subprocess.run(["apt-cache", "show", name], capture_output=True, check=False).returncode
        != 0
    ]
    if missing:
        raise SystemExit(
            f"image-check: FAILED: Debian {release} has no {', '.join(missing)} "
            "(or run apt-get update)"
        )
    say(f"apt packages exist in Debian {release}: {' '.join(packages)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--python", help="the interpreter standing in for the image's python")
    parser.add_argument(
        "--dockerfile", type=Path, default=DOCKERFILE, help="another Dockerfile (same context)"
    )
    options = parser.parse_args(argv)
    started = time.monotonic()
    try:
        steps = plan(options.dockerfile.read_text())
        python = (
            Path(f"python{steps.python_version}")
            if options.dry_run
            else find_python(steps.python_version, options.python)
        )
    except UnsupportedError as exc:
        say(f"cannot replay {options.dockerfile}: {exc}")
        return 2
    root = Path(tempfile.mkdtemp(prefix="agentlink-image-check-"))
    say(f"replaying the builder stage of {steps.base_image} in {root} with {python}")
    try:
        replay = Replay(root, python, dry_run=options.dry_run)
        for step in steps.steps:
            replay.run(step)
        if options.dry_run:
            return 0
        check_venv(replay.path(steps.venv), steps.entrypoint, root)
        check_apt_packages(steps.final_packages, steps.base_image)
    except subprocess.CalledProcessError as exc:
        say(f"FAILED: a RUN step exited {exc.returncode}")
        return 1
    except UnsupportedError as exc:
        say(f"cannot replay {options.dockerfile}: {exc}")
        return 2
    finally:
        if options.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    say(f"OK in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
