"""The docs run as written: every code block of README.md and docs/*.md is executed (or explicitly
not, with a reason the test report shows), and every `romdask` command line in them names a real
subcommand and real options.

Each page is one scenario: its blocks run in order in one temporary folder,

* ```bash / ```sh / ```console blocks in bash with `set -e -o pipefail`; the working directory a
  block ends in is where the next block starts (a `cd my-part` holds for the rest of the page);
* ```python blocks in ONE interpreter per page (tests/docs/kernel.py), sharing their variables,
  in the folder the last shell block ended in; a block holding `if __name__ == "__main__":` is a
  script (it starts a LocalCluster, whose worker processes re-import it) and runs on its own as
  `python block.py`, as a user runs a script;
* other tags (```text, ```yaml, output) are not run; a fence without a tag is an error.

Directives are HTML comments right before a block (invisible on GitHub, visible in the source):

    <!-- docs-test: replace "OLD" "NEW" -->   run the block with OLD replaced (OLD must occur):
                                             smaller sizes than a user's, nothing else
    <!-- docs-test: setup "COMMAND" -->      a shell command run first, e.g. to make the files a
                                             block names ($REPO is the repository)
    <!-- docs-test: skip "REASON" -->        not run: reported as a skipped test with REASON
    <!-- docs-test: synopsis -->             a usage synopsis ([options], a|b): not run, its
                                             options checked against the CLI's parser
    <!-- docs-test: xfail "BUG" -->          known failure (a romdask bug, named): the page stops
                                             there as xfail; passing is an error (strict)
    <!-- docs-test: requires ccx|slurm -->   before any block: the whole page needs ccx / a SLURM
                                             answering sinfo; skipped (with the reason) without it

ROMDASK_DOCS_RERUN=1 runs every page twice in the same folder, setups once: what a user rerunning
it gets (an output that exists must be replaced, e.g. `--overwrite`, not refused).

Sizes: the pages show a user's sizes; `replace` directives shrink them for the test (plate n=8,
1,105 nodes -> n=4, 189 nodes), and tests/docs/make_store.py writes the small stores that pages
starting from a store name.

Why a runner of our own (~200 lines) rather than Sybil or pytest-markdown-docs: a page here is
a session mixing shell and Python (files written by one block read by the next, a `cd` that
holds), some blocks are scripts that must run as `__main__` in a fresh process (a LocalCluster
spawns workers), and the Python must not run inside the pytest process (numba, dask clusters).
pytest-markdown-docs runs Python blocks only, each in the pytest process; Sybil shares a
namespace per document but evaluates in the pytest process under a namespace whose `__name__`
is not `__main__` (a guarded script would silently do nothing), and shell blocks, a working
directory that follows `cd` and per-block setup would all be custom evaluators anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from romdask.cli.main import parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->", re.S)
SHELL, PYTHON, NOT_RUN = ("bash", "sh", "console"), ("python",), ("text", "yaml", "toml", "json", "ini")
KERNEL = Path(__file__).with_name("docs") / "kernel.py"
BLOCK_TIMEOUT = 900  # seconds

# pages too heavy for the default suite (CI runs them with -m slow). Measured 2026-12-07, 2 cores
# shared with other jobs (load 2-4): slow: own-decks.md 81 s (the deck session, also
# tests/test_own_decks_cli.py), thermomechanics.md 77 s (the thermal deck session, also
# tests/test_thermal_cli.py, + two flights by the built-in solver), README.md 64 s (three ccx runs
# and the same deck session); default, 159 s in all: user-guide.md 56 s, calculix.md 27 s,
# cluster.md 23 s, online.md 23 s, offline.md 15 s, builtin-solver.md 7 s, store.md 7 s.
SLOW = {"README.md", "own-decks.md", "thermomechanics.md"}


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    tag: str
    code: str
    directives: list[list[str]] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"

    def get(self, verb: str) -> list[list[str]]:
        return [d[1:] for d in self.directives if d[0] == verb]

    @property
    def kind(self) -> str:
        if self.get("skip"):
            return "skip"
        if self.get("synopsis"):
            return "synopsis"
        if self.tag in SHELL:
            return "shell"
        if self.tag in PYTHON:
            return "script" if re.search(r"^if __name__ == .__main__.:", self.code, re.M) else "python"
        return "text"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    out, previous_end = [], 0
    for m in FENCE.finditer(text):
        between = text[previous_end:m.start()]
        directives = [shlex.split(d) for d in DIRECTIVE.findall(between)]
        out.append(Block(page, text[: m.start()].count("\n") + 1, m.group(1), m.group(2), directives))
        previous_end = m.end()
    return out


ALL = [b for page in DOCS for b in blocks(page)]
RUN_PAGES = [p for p in DOCS if any(b.kind in ("shell", "python", "script") for b in blocks(p))]


def test_every_block_is_tagged_and_every_directive_known():
    bad = [f"{b.where}: fence without a language tag (```text for output)" for b in ALL if not b.tag]
    bad += [f"{b.where}: unknown tag {b.tag!r}" for b in ALL
            if b.tag and b.tag not in SHELL + PYTHON + NOT_RUN]
    verbs = {"replace": 2, "setup": 1, "skip": 1, "synopsis": 0, "xfail": 1, "requires": 1}
    bad += [f"{b.where}: directive {d}" for b in ALL for d in b.directives
            if d[0] not in verbs or len(d) - 1 != verbs[d[0]]]
    bad += [f"{b.where}: 'requires {r[0]}'" for b in ALL for r in b.get("requires") if r[0] not in REQUIRES]
    assert not bad, "\n".join(bad)


def test_snippets_starting_a_local_cluster_show_the_main_guard():
    """A script that starts a LocalCluster without `if __name__ == "__main__":` dies ("Nanny failed
    to start"): its worker processes re-import it."""
    starts = re.compile(r"LocalCluster\(|cluster_client\(\s*[\"']local|--cluster local")
    bad = [b.where for b in ALL if b.tag in PYTHON and starts.search(b.code) and b.kind != "script"]
    assert not bad, bad


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "skip"], ids=lambda b: b.where)
def test_block_not_run(block):
    """Blocks the docs say cannot run here: each one a reported skip, never a silent one."""
    pytest.skip(f"{block.where}: {block.get('skip')[0][0]}")


# --- the pages, run ------------------------------------------------------------------------

def _slurm_answers() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


REQUIRES = {
    "ccx": (lambda: shutil.which(os.environ.get("ROMDASK_CCX", "ccx")) is not None,
            "ccx (apt package calculix-ccx) not installed"),
    "slurm": (_slurm_answers, "no SLURM answers sinfo: scripts/ci/slurm-up.sh starts the test SLURM"),
}


class Session:
    """A page's shell and Python state: the folder, the working directory, the interpreter."""

    def __init__(self, folder: Path):
        self.folder, self.cwd = folder, folder / "work"
        self.cwd.mkdir(parents=True)
        self.log = folder / "page.log"
        (folder / "home").mkdir()  # a page may write into ~ (cluster.md: ~/.dask/tls)
        self.env = {**os.environ, "REPO": str(ROOT), "MPLBACKEND": "Agg", "HOME": str(folder / "home"),
                    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.kernel = None

    def _output(self, start: int) -> str:
        text = self.log.read_text(errors="replace")[start:]
        lines = text.splitlines()
        return "\n".join(lines[-60:])

    def shell(self, code: str) -> bool:
        pwd = self.folder / "pwd"
        script = f"set -e -o pipefail\ncd {shlex.quote(str(self.cwd))}\n{code}\npwd > {shlex.quote(str(pwd))}\n"
        with self.log.open("a") as log:
            proc = subprocess.run(["bash", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                  env=self.env, timeout=BLOCK_TIMEOUT, stdin=subprocess.DEVNULL)
        if proc.returncode == 0:
            self.cwd = Path(pwd.read_text().strip())
        return proc.returncode == 0

    def script(self, code: str, name: str) -> bool:
        path = self.folder / f"{name.replace(':', '_')}.py"
        path.write_text(code)
        with self.log.open("a") as log:
            proc = subprocess.run([sys.executable, str(path)], cwd=self.cwd, stdout=log,
                                  stderr=subprocess.STDOUT, env=self.env, timeout=BLOCK_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        return proc.returncode == 0

    def python(self, code: str, name: str) -> bool:
        if self.kernel is None:
            read, write = os.pipe()
            log = self.log.open("a")
            self.kernel = subprocess.Popen([sys.executable, "-u", str(KERNEL), str(write)], stdin=subprocess.PIPE,
                                           stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                           pass_fds=(write,), text=True)
            os.close(write)
            self.replies = os.fdopen(read)
        self.kernel.stdin.write(json.dumps({"code": code, "name": name, "cwd": str(self.cwd)}) + "\n")
        self.kernel.stdin.flush()
        reply = self.replies.readline()  # empty: the interpreter died
        return bool(reply) and json.loads(reply)["ok"]

    def close(self):
        if self.kernel is not None:
            self.kernel.stdin.close()
            try:
                self.kernel.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kernel.kill()
            self.replies.close()


def _prepared(block: Block) -> str:
    code = block.code
    for old, new in block.get("replace"):
        assert old in code, f"{block.where}: directive replace {old!r}: not in the block"
        code = code.replace(old, new)
    return code


def _marks(page: Path):
    return [pytest.mark.slow] if page.name in SLOW else []


@pytest.mark.parametrize("page", [pytest.param(p, marks=_marks(p), id=p.name) for p in RUN_PAGES])
def test_page_runs_as_written(page, tmp_path):
    page_blocks = blocks(page)
    for block in page_blocks:
        for (need,) in block.get("requires"):
            available, reason = REQUIRES[need]
            if not available():
                pytest.skip(f"{page.name}: {reason}")
    session = Session(tmp_path)
    timings = []
    rounds = 2 if os.environ.get("ROMDASK_DOCS_RERUN") == "1" else 1  # a user rerunning the page
    try:
        for round_, block in [(r, b) for r in range(rounds) for b in page_blocks]:
            if block is page_blocks[0]:
                session.cwd = tmp_path / "work"  # each round starts where the user starts
            if block.kind not in ("shell", "python", "script"):
                continue
            start_log = session.log.stat().st_size if session.log.exists() else 0
            started = time.perf_counter()
            # setups make the user's files: once (a user rerunning the page has them already)
            for (command,) in block.get("setup") if round_ == 0 else ():
                assert session.shell(command), (f"{block.where}: setup {command!r} failed:\n"
                                                + session._output(start_log))
            code = _prepared(block)
            if block.kind == "shell":
                ok = session.shell(code)
            elif block.kind == "script":
                ok = session.script(code, block.where)
            else:
                # padded so that tracebacks name the page's own file and line
                ok = session.python("\n" * block.line + code, str(block.page))
            timings.append(f"{block.where} {time.perf_counter() - started:.1f} s")
            xfail = block.get("xfail")
            if xfail:
                if ok:
                    pytest.fail(f"{block.where} passes but is marked xfail ({xfail[0][0]}): remove the directive")
                pytest.xfail(f"{block.where}: {xfail[0][0]}")
            assert ok, (f"{block.where} ({block.kind} block) failed; run in {session.cwd}\n"
                        f"--- block as run ---\n{code}--- output (last lines) ---\n{session._output(start_log)}")
    finally:
        session.close()
        print("\n".join(timings))


# --- command lines in every shell block, run or not ----------------------------------------

def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _commands(page: Path):
    for block in blocks(page):
        if block.tag not in SHELL:
            continue
        text = re.sub(r"\\\n\s*", " ", block.code)  # continuation lines
        for command in re.findall(r"(?:^|&&|;)\s*(romdask\s[^\n#;&|>]*)", text, re.M):
            yield block.line, command.strip()


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_documented_command_lines_use_real_options(page):
    commands = _subparsers()
    bad = []
    for line, command in _commands(page):
        words = command.split()
        name = words[1]
        if name == "-v":
            name = words[2]
        if name not in commands:
            bad.append(f"line {line}: unknown command {name!r} in {command!r}")
            continue
        known = {o for a in commands[name]._actions for o in a.option_strings}
        for option in (w.split("=")[0].strip("[]") for w in words[2:] if w.lstrip("[").startswith("--")):
            if option not in known:
                bad.append(f"line {line}: {name} has no option {option} ({command!r})")
    assert not bad, f"{page.name}:\n" + "\n".join(bad)
