"""The docs stay true: every import in the Python blocks of README.md and docs/*.md runs, and every
`romdask` command line in their shell blocks names a real subcommand and real options."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from romdask.cli.main import parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def _blocks(kind: tuple[str, ...]):
    for path in DOCS:
        text = path.read_text()
        for m in BLOCK.finditer(text):
            if m.group(1) in kind:
                yield path, text[: m.start()].count("\n") + 2, m.group(2)


def _imports(code: str) -> list[str]:
    """Top-level import statements of a block (parenthesized continuations joined)."""
    out, lines = [], code.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"(from \S+ )?import ", line):
            statement = line
            while statement.count("(") > statement.count(")") and i + 1 < len(lines):
                i += 1
                statement += "\n" + lines[i]
            out.append(statement)
        i += 1
    return out


def test_every_documented_import_runs():
    statements = [(path, line, s) for path, line, code in _blocks(("python",)) for s in _imports(code)]
    assert len(statements) > 20  # the docs do show code
    # one fresh interpreter runs them all, each on its own (a failure does not hide the next)
    script = "import traceback\n" + "".join(
        f"try:\n    exec({s!r})\nexcept Exception as exc:\n"
        f"    print({f'{path.name} (block at line {line}): {s!r}: '!r} + repr(exc))\n"
        for path, line, s in statements)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", proc.stdout


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _commands():
    for path, line, code in _blocks(("bash", "sh", "")):
        text = re.sub(r"\\\n\s*", " ", code)  # continuation lines
        for command in re.findall(r"(?:^|&&|;)\s*(romdask\s[^\n#;&|]*)", text, re.M):
            yield path, line, command.strip()


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_documented_command_lines_use_real_options(path):
    commands = _subparsers()
    bad = []
    for where, line, command in _commands():
        if where != path:
            continue
        words = command.split()
        name = words[1]
        if name not in commands:
            bad.append(f"line {line}: unknown command {name!r} in {command!r}")
            continue
        known = {o for a in commands[name]._actions for o in a.option_strings}
        for option in (w.split("=")[0].strip("[]") for w in words[2:] if w.lstrip("[").startswith("--")):
            if option not in known:
                bad.append(f"line {line}: {name} has no option {option} ({command!r})")
    assert not bad, f"{path.name}:\n" + "\n".join(bad)
