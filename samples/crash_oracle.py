"""Run the ``crash`` utility on a sample vmcore and store its answers: the oracle of our tests.

Every test that checks what the adapter says about a dump compares it with what crash says about
the same dump.  crash is slow to start (it reads all of vmlinux's DWARF), so it runs once per sample
in batch mode, and each command's output is kept next to the sample's manifest::

    <sample dir>/crash/<name>.txt     one file per command (names in ``COMMANDS``, and a scenario's
                                      own in ``SCENARIO_COMMANDS``); a variant of the sample has its
                                      own ``crash+<variant>/``
    <sample dir>/crash/done.json      written last: which crash (build, version, flags, why that one),
                                      the exact command line of each file, the answers crash could
                                      not give or got wrong (and why), the crashed task's PC/SP

Which crash reads which dump, with which flags, is ``crash_choice.CRASH_TABLE`` (crash 8.0.6 for
x86-64 kernels up to 6.x, 9.0.x for 7.x and QEMU dumps, the arm64 build for arm64); the builds are
Debian's own packages (``crash_builds.py``). One crash process answers a sample: a first batch of
``COMMANDS``, then the commands whose arguments come from it (the crash site). The answers are
rebuilt when the chosen build, its flags, its row of the table or this script change.

Tests read the answers as a :class:`CrashAnswers` (a dict with the metadata): a missing answer
raises :class:`MissingCrashAnswer` with the reason, ``distrusted`` names the answers (or their
fields) crash gets wrong on this kind of dump, so a test uses another oracle for them and says so.

Command line: ``python samples/crash_oracle.py <sample>... | --all`` builds the samples and their
answers and prints one answers directory per line.  ``--all`` covers the samples of this test run
(``samples_under_test``); one that crash cannot open is skipped with the table's reason.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

_HERE = Path(__file__).resolve().parent
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))  # ``samples`` importable when run as a script

from samples.crash_builds import CrashError, CrashProgram, ensure_crash  # noqa: E402
from samples.crash_choice import CrashChoice, CrashRow, DumpFacts, choose_crash, dump_facts  # noqa: E402

if TYPE_CHECKING:
    from samples.sample_store import MatrixSample, Sample

__all__ = [
    "ANSWERS_DIR",
    "COMMANDS",
    "CrashAnswers",
    "CrashCommand",
    "CrashNotApplicable",
    "CrashOracleError",
    "MissingCrashAnswer",
    "PANIC_PATH",
    "SCENARIO_COMMANDS",
    "answers_dir",
    "crash_command",
    "ensure_crash_answers",
    "load_crash_answers",
    "main",
]

ANSWERS_DIR = "crash"
_CRASH_TIMEOUT_S = 1800  # an arm64 dump under qemu-aarch64 takes minutes

# First session: commands that need nothing but the dump.  name -> crash command line.
COMMANDS: dict[str, str] = {
    "sys": "sys",
    "ps": "ps",
    "ps-m": "ps -m",
    "bt": "bt",
    "bt-a": "bt -a",
    "bt-l": "bt -l",
    "log": "log",
    "log-T": "log -T",
    "mod": "mod",
    "foreach-bt": "foreach bt",
    "kmem-i": "kmem -i",
}
# Second session: commands whose argument comes from the first session's answers (see
# ``_followup_commands``): dis-l, dis-rl, dis-func, rd, struct-o.
_FOLLOWUPS = ("dis-l", "dis-rl", "dis-func", "rd", "struct-o")


def _list_uaf_commands(expected: dict[str, Any]) -> dict[str, str]:
    """labuaf's structures, at the addresses its guest printed: the request list (crash walks it
    forward, past the half-unlinked request, never checking ``prev``), the rbtree (as crash walks it,
    and in order: ``-l``) and the xarray of the requests, the long list of replies, the freed,
    half-unlinked and a live request's slab objects, the per-CPU counter and the device."""
    device = expected["device"]
    members = "labuaf_req.id,cpu,data,value,tag"
    return {
        "list-reqs": f"list -o labuaf_req.node -s {members} -H {device['reqs']:x}",
        "list-replies": f"list -o labuaf_reply.link -H {device['replies']:x}",
        "tree-by-id": f"tree -t rbtree -o labuaf_req.rb -s labuaf_req.id,cpu {device['by_id']:x}",
        "tree-by-id-l": f"tree -t rbtree -l -o labuaf_req.rb -s labuaf_req.id,cpu {device['by_id']:x}",
        "tree-xa": f"tree -t xarray -s labuaf_req.id,cpu {device['xa']:x}",
        "kmem-s-freed": f"kmem -s {expected['freed_linked']['address']:x}",
        "kmem-s-half": f"kmem -s {expected['half_unlinked']['address']:x}",
        "kmem-s-live": f"kmem -s {expected['requests'][0]['address']:x}",
        "p-hits": "p labuaf_hits:a",
        "sym-dev": "sym labuaf_dev",
    }


#: A scenario's own commands, from its manifest's ``expected`` facts; run in the first batch.
SCENARIO_COMMANDS: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {
    "list-uaf": _list_uaf_commands,
}

# The main struct of the sample module, for ``struct -o``; a manifest key "module_struct" (top
# level or in "expected") overrides it.
_DEFAULT_MODULE_STRUCT = {"oops-null": "labbug_device"}


class CrashOracleError(RuntimeError):
    """crash could not be fetched or run on a sample; the message says what to check."""


class CrashNotApplicable(CrashOracleError):
    """The table says crash cannot open this kind of dump (the message says why); the sample's
    tests use the guest's own facts and drgn instead."""


class MissingCrashAnswer(KeyError):
    """crash gives no such answer on this sample; the message says why (from the oracle's metadata)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CrashAnswers(dict[str, str]):
    """crash's answers about one sample, ``{name: output}``, with what the oracle knows of them.

    ``answers["mod"]`` of an answer crash could not give raises :class:`MissingCrashAnswer` naming
    the reason; ``distrusted`` lists answers (``"sys"``) or fields of answers (``"sys:DATE"``) that
    crash got wrong on this kind of dump, so a test uses another oracle for them and says so.
    """

    def __init__(self, answers: dict[str, str], meta: dict[str, Any]) -> None:
        super().__init__(answers)
        self.meta = meta

    @property
    def crash(self) -> str:
        """Which crash answered: ``crash 9.0.2 (Debian sid amd64 9.0.2+~16.3-1) --no_modules``."""
        return str(self.meta["crash"]["describe"])

    @property
    def missing(self) -> dict[str, str]:
        return dict(self.meta.get("missing", {}))

    @property
    def distrusted(self) -> dict[str, str]:
        return dict(self.meta.get("distrusted", {}))

    def trusts(self, name: str, detail: str | None = None) -> bool:
        """Whether answer ``name`` (or its field ``detail``) can be compared with."""
        distrusted = self.distrusted
        return name not in self.missing and name not in distrusted and f"{name}:{detail}" not in distrusted

    def __missing__(self, name: str) -> str:
        why = self.missing.get(name)
        if why is None:
            raise MissingCrashAnswer(
                f"the crash oracle has no answer named '{name}' (names: {', '.join(self)})"
            )
        raise MissingCrashAnswer(f"{self.crash} gives no '{name}' on this dump: {why}")


#: Everything after this line in this file is the command line, which does not change the answers.
_CLI_MARKER = b"# -- command line: not part of the answers' hash --"


def _script_hash() -> str:
    """Hash the part of this file that decides the answers (the command line below the marker
    does not, so editing it does not make every sample's answers stale)."""
    source = Path(__file__).read_bytes()
    return hashlib.sha256(source.split(b"\n" + _CLI_MARKER, 1)[0]).hexdigest()[:12]


def answers_dir(sample: Sample) -> Path:
    """Where the answers of ``sample`` are (or will be) stored: ``crash/`` beside the manifest, or
    ``crash+<variant>/`` for a variant that shares the directory (``lossy-d31``'s ``vmcore-d31``)."""
    return Path(sample.dir) / (ANSWERS_DIR + (f"+{sample.variant}" if sample.variant else ""))


def load_crash_answers(directory: Path, row: CrashRow | None = None) -> CrashAnswers:
    """Read stored answers: {name: output text} for every ``<name>.txt``, and ``done.json``.

    :param row: the table's row for this dump today: what it says of crash's answers (why this
        crash, missing and distrusted answers) replaces what it said when crash ran, so a row's
        text can be corrected without running crash again.
    """
    meta = json.loads((directory / "done.json").read_text())
    if row is not None:
        meta["why_this_crash"] = row.why
        meta["missing"] = {**meta.get("missing", {}), **row.missing}
        meta["distrusted"] = dict(row.distrusted)
    answers = {p.stem: p.read_text(errors="replace") for p in sorted(directory.glob("*.txt"))}
    answers.pop("mod-load", None)
    return CrashAnswers(answers, meta)


def _choice(sample: Sample) -> tuple[DumpFacts, CrashChoice]:
    facts = dump_facts(sample)
    try:
        return facts, choose_crash(facts)
    except LookupError as e:
        raise CrashOracleError(f"no crash for sample {sample.dir.name}: {e}") from None


def _program(sample: Sample, choice: CrashChoice) -> CrashProgram:
    if not choice.row.opens:
        raise CrashNotApplicable(f"no crash answers for '{sample.dir.name}': {choice.row.why}")
    try:
        return ensure_crash(choice.build)
    except CrashError as e:
        raise CrashOracleError(f"crash build {choice.build} is not usable: {e}") from None


@dataclass(frozen=True)
class CrashCommand:
    """How to run the right crash on one sample: ``[*argv, "-s", vmlinux, vmcore]``, then
    ``module_loads`` (the sample's own ``.ko`` files) first in the session."""

    argv: tuple[str, ...]
    module_loads: tuple[str, ...]
    describe: str


def crash_command(sample: Sample) -> CrashCommand:
    """The crash (build and table flags) that reads ``sample``, for other batch runs of crash
    (tests' extra questions, benchmarks).

    :raises CrashNotApplicable: crash cannot open this kind of dump.
    """
    _facts, choice = _choice(sample)
    program = _program(sample, choice)
    return CrashCommand(
        argv=(*program.argv, *choice.flags),
        module_loads=tuple(_module_load_commands(sample, choice, whole_tree=False)),
        describe=_describe(program, choice),
    )


def _describe(program: CrashProgram, choice: CrashChoice) -> str:
    """``crash 9.0.2 (Debian sid amd64 9.0.2+~16.3-1) --no_modules``: for messages and reports."""
    return " ".join([program.describe(), *choice.flags])


def _module_struct(sample: Sample) -> str | None:
    manifest: dict[str, Any] = sample.manifest or {}
    expected: dict[str, Any] = sample.expected or {}
    return (
        manifest.get("module_struct")
        or expected.get("module_struct")
        or _DEFAULT_MODULE_STRUCT.get(sample.scenario)
    )


def _module_load_commands(sample: Sample, choice: CrashChoice, *, whole_tree: bool = True) -> list[str]:
    """crash commands that load module symbols and DWARF before anything else runs: the kernel's
    module tree (``whole_tree``) and the sample's own ``.ko`` files; none when the table makes
    crash skip the module list (``--no_modules``)."""
    if "--no_modules" in choice.flags:
        return []
    cmds: list[str] = []
    tree = Path(sample.debug_info_dir) / "lib" / "modules" / sample.kernel_release
    if whole_tree and tree.is_dir():
        cmds.append(f"mod -S {tree}")
    for ko in sample.debug_info:
        name = Path(ko).name.removesuffix(".ko").replace("-", "_")
        cmds.append(f"mod -s {name} {ko}")
    return cmds


class _CrashSession:
    """One crash process answering batches of commands, so that the second batch (whose arguments
    come from the first one's answers) costs no second start-up — minutes for an arm64 dump under
    qemu-aarch64. Each command's output goes to ``out/<name>.txt`` (crash's own ``>``); after a batch
    crash prints a number (``p <n>``) that says the batch is done."""

    _MAGIC = 2718281828000

    def __init__(self, argv: list[str], sample: Sample, choice: CrashChoice, out: Path) -> None:
        self.argv = [*argv, "-s", str(sample.vmlinux), str(sample.vmcore)]
        self.out = out
        self.vmcore = sample.vmcore
        self.deadline = time.monotonic() + _CRASH_TIMEOUT_S
        self.output = ""  # crash's stdout and stderr: its messages, not the answers
        self.batches = 0
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PAGER": "cat", "CRASH_MODULE_PATH": str(sample.debug_info_dir)},
        )
        loads = _module_load_commands(sample, choice)
        self._send(["set scroll off"] + [f"{c} >> {out / 'mod-load.txt'}" for c in loads])

    def _send(self, lines: list[str]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # crash has exited: the batch's wait says so, with its output

    def run(self, commands: dict[str, str]) -> None:
        """Run ``commands`` ({name: command line}) and wait until crash has answered all of them."""
        self.batches += 1
        marker = self._MAGIC + self.batches
        self._send(
            [f"{cmd} > {self.out / (name + '.txt')}" for name, cmd in commands.items()] + [f"p {marker}"]
        )
        assert self.proc.stdout is not None
        done = re.compile(rf"^\$\d+ = {marker}$", re.MULTILINE)
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while not done.search(self.output):
                if not sel.select(timeout=max(self.deadline - time.monotonic(), 0)):
                    self.close()
                    self._fail(f"did not finish within {_CRASH_TIMEOUT_S} s", commands)
                chunk = os.read(fd, 65536)  # unbuffered: select() must see all that is pending
                if not chunk:
                    self.proc.wait()
                    self._fail(f"exit {self.proc.returncode}", commands)
                self.output += chunk.decode(errors="replace")
        missing = [n for n in commands if not (self.out / f"{n}.txt").is_file()]
        if missing:
            self._fail(f"no output for {', '.join(missing)}", commands)

    def _fail(self, what: str, commands: dict[str, str]) -> NoReturn:
        raise CrashOracleError(
            f"crash failed on {self.vmcore} ({what}, running: {', '.join(commands.values())}); "
            f"command: {' '.join(self.argv)}\noutput:\n{self.output[-3000:]}\n"
            "(if this kind of dump is new, add a row to samples/crash_choice.CRASH_TABLE)"
        )

    def close(self) -> None:
        """End crash (``exit``, or killed if it does not go)."""
        if self.proc.returncode is not None:
            return
        self._send(["exit"])
        try:
            self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


_EXCEPTION = re.compile(
    r"\[exception RIP: (?P<sym>[^\]]+)\]\n\s+RIP: (?P<rip>[0-9a-f]+)\s+RSP: (?P<rsp>[0-9a-f]+)"
)
_FRAME = re.compile(r"^\s*#\d+ \[(?P<sp>[0-9a-f]+)\] (?P<sym>\S+) at (?P<addr>[0-9a-f]+)", re.MULTILINE)
#: Frames above the crash site when the kernel called panic() itself (no exception), as SysRq-c
#: does. panic() calls vpanic() on 6.12 and 7.2 (not on 6.1), which crash lists above it.
PANIC_PATH = frozenset({"machine_kexec", "__crash_kexec", "crash_kexec", "vpanic", "panic"})
_SYS_PANIC = re.compile(r"^\s*PANIC: (?P<text>.*)$", re.MULTILINE)
# What crash's bt says for an exception RIP it has no symbol for.
_NO_SYMBOL = "no symbolic reference"


def _crash_site(sample: Sample, bt: str, row: CrashRow) -> dict[str, Any] | None:
    """Where the panic task crashed, from crash's ``bt``: the exception's PC (x86-64's ``[exception
    RIP: …]`` block, or the frame after one of the row's ``exception_entries``), or else the first
    frame below panic() (its return address); None when the bt lists no frame at all. The row's
    ``pc_bias`` turns the address crash prints for a frame into the PC or return address."""
    if m := _EXCEPTION.search(bt):
        rip = int(m["rip"], 16)
        return {
            "kind": "exception RIP",
            "symbol": m["sym"],
            "address": rip,
            "printed": rip,
            "sp": int(m["rsp"], 16),
        }
    frames = list(_FRAME.finditer(bt))
    if not frames:
        return None
    after = [frames[i + 1] for i, m in enumerate(frames[:-1]) if m["sym"] in row.exception_entries]
    kind, site = ("exception PC", after[0]) if after else ("return address", None)
    site = site or next((m for m in frames if m["sym"] not in PANIC_PATH), None)
    if site is None:
        raise CrashOracleError(
            f"crash's bt of the panic task on {sample.vmcore} shows neither an exception nor a frame "
            f"below panic():\n{bt[:2000]}"
        )
    printed = int(site["addr"], 16)
    return {
        "kind": kind,
        "symbol": site["sym"],
        "address": printed + row.pc_bias,
        "printed": printed,
        "sp": int(site["sp"], 16),
    }


def _panicked(sys_answer: str) -> bool:
    """Whether crash's ``sys`` names a panic (a dump of a running guest has ``PANIC: ""``)."""
    m = _SYS_PANIC.search(sys_answer)
    return m is not None and m["text"].strip() not in ("", '""')


def _followup_commands(
    sample: Sample, first: dict[str, str], choice: CrashChoice
) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """Commands whose arguments come from the first session (the crash site, its stack), the facts
    they were derived from, and those crash cannot answer here (name -> why)."""
    site = _crash_site(sample, first["bt"], choice.row)
    facts: dict[str, Any] = {}
    cmds: dict[str, str] = {}
    missing: dict[str, str] = {}
    if site is None:
        why = "crash's bt of the panic task lists no frame (crash has no registers of its CPU in this dump)"
        missing.update({name: why for name in ("dis-l", "dis-rl", "dis-func", "rd")})
    else:
        addr, sp, func = site["address"], site["sp"], site["symbol"].split("+", 1)[0]
        facts["crash_site"] = {
            **site,
            "address": f"{addr:#x}",
            "printed": f"{site['printed']:#x}",
            "sp": f"{sp:#x}",
        }
        cmds["rd"] = f"rd -64 {sp:#x} 8"
        if func == _NO_SYMBOL:
            why = (
                f"crash names no symbol at the crash site {addr:#x} (a module's code, whose symbols "
                f"{' '.join(choice.flags) or 'this crash'} does not load)"
            )
            missing.update({name: why for name in ("dis-l", "dis-rl", "dis-func")})
        else:
            cmds |= {
                "dis-l": f"dis -l {addr:#x}",
                "dis-rl": f"dis -rl {addr:#x}",
                "dis-func": f"dis -l {func}",
            }
    struct = _module_struct(sample)
    if struct:
        cmds["struct-o"] = f"struct -o {struct}"
        facts["module_struct"] = struct
    return cmds, facts, missing


def _crash_identity(program: CrashProgram, choice: CrashChoice) -> dict[str, Any]:
    """What decides the answers besides this script: the build (by content), its flags, and what
    of the table's row shapes the commands (those it leaves out, how it finds the crash site)."""
    return {
        "build": program.build.id,
        "pin_hash": program.build.pin_hash(),
        "version": program.version,
        "debian_version": program.build.crash_package.version,
        "flags": list(choice.flags),
        "left_out": sorted(choice.row.missing),
        "site_rule": [sorted(choice.row.exception_entries), choice.row.pc_bias],
        "describe": _describe(program, choice),
    }


def _is_current(directory: Path, identity: dict[str, Any]) -> bool:
    done = directory / "done.json"
    if not done.is_file():
        return False
    try:
        meta = json.loads(done.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("oracle_hash") == _script_hash() and all(
        meta.get("crash", {}).get(k) == v for k, v in identity.items() if k != "describe"
    )


def _write_answers(
    sample: Sample, program: CrashProgram, facts: DumpFacts, choice: CrashChoice, tmp: Path
) -> None:
    """Run crash on ``sample`` into ``tmp`` (both batches) and write ``done.json`` there."""
    start = time.monotonic()
    argv = [*program.argv, *choice.flags]
    missing = dict(choice.row.missing)
    first = {name: cmd for name, cmd in COMMANDS.items() if name not in missing}
    make_scenario_commands = SCENARIO_COMMANDS.get(sample.scenario)
    if make_scenario_commands is not None:
        first |= make_scenario_commands(sample.expected or {})
    session = _CrashSession(argv, sample, choice, tmp)
    try:
        session.run(first)
        first_seconds = time.monotonic() - start
        answers = {p.stem: p.read_text(errors="replace") for p in tmp.glob("*.txt")}
        oracle_facts: dict[str, Any] = {}
        followup: dict[str, str] = {}
        if _panicked(answers["sys"]):
            followup, oracle_facts, cannot = _followup_commands(sample, answers, choice)
            missing.update(cannot)
            followup = {name: cmd for name, cmd in followup.items() if name not in missing}
            session.run(followup)
        else:
            why = "a dump of a running system (crash's sys: no PANIC) has no crash site to disassemble"
            missing.update({name: why for name in _FOLLOWUPS if name not in missing})
    finally:
        session.close()
    meta = {
        "oracle_hash": _script_hash(),
        "crash": {**_crash_identity(program, choice), "argv": argv},
        "why_this_crash": choice.row.why,
        "dump": {"arch": facts.arch, "release": facts.release, "origin": facts.origin},
        "vmcore": str(sample.vmcore),
        "vmlinux": str(sample.vmlinux),
        "commands": {**first, **followup},
        "module_load": _module_load_commands(sample, choice),
        "missing": missing,
        "distrusted": dict(choice.row.distrusted),
        "facts": oracle_facts,
        "seconds": round(time.monotonic() - start, 1),
        "first_batch_seconds": round(first_seconds, 1),
    }
    (tmp / "done.json.tmp").write_text(json.dumps(meta, indent=2) + "\n")
    os.rename(tmp / "done.json.tmp", tmp / "done.json")


def ensure_crash_answers(sample: Sample) -> CrashAnswers:
    """Return crash's answers for ``sample`` ({name: output}), running crash once if needed.

    :param sample: a ``samples.sample_store.Sample``.
    :raises CrashNotApplicable: the table says crash cannot open this kind of dump (why).
    :raises CrashOracleError: crash cannot be fetched or fails on the dump (the message says why).
    """
    facts, choice = _choice(sample)
    program = _program(sample, choice)
    identity = _crash_identity(program, choice)
    target = answers_dir(sample)
    if _is_current(target, identity):
        return load_crash_answers(target, choice.row)

    lock_path = Path(sample.dir) / ".crash-oracle.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be running crash on this sample
        if _is_current(target, identity):
            return load_crash_answers(target, choice.row)
        tmp = Path(tempfile.mkdtemp(prefix=".crash-", dir=sample.dir))
        tmp.chmod(0o755)  # mkdtemp makes it private; the answers are for everyone
        try:
            _write_answers(sample, program, facts, choice, tmp)
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return load_crash_answers(target, choice.row)


# -- command line: not part of the answers' hash --


_USAGE = (
    "usage: python samples/crash_oracle.py <sample>... | --all\n"
    "  <sample>: a scenario of the default kernel (oops-null) or a matrix label "
    "(sysrq-c@sid-7-amd64, sysrq-c@sid-7-amd64+lossy-d31)\n"
    "  --all: the samples this test run covers (make test's; every sample with VMCORE_DAP_MATRIX=1)"
)


def _samples_from(
    args: list[str], known: tuple[MatrixSample, ...], default_kernel: str
) -> list[MatrixSample] | None:
    """The samples the command line asks for, in order (a bare scenario is the default kernel's);
    ``None`` for a bad command line."""
    if args == ["--all"]:
        return list(known)
    if not args or any(a.startswith("-") for a in args):
        return None
    by_label = {spec.label: spec for spec in known}
    chosen = []
    for arg in dict.fromkeys(args):
        spec = by_label.get(arg) or by_label.get(f"{arg}@{default_kernel}")
        if spec is None:
            return None
        chosen.append(spec)
    return chosen


def main(argv: list[str] | None = None) -> int:
    """``crash_oracle.py <sample>... | --all``: build each sample and crash's answers about it,
    print one answers directory per line (in the order asked); exit 1 if any failed. A sample
    crash cannot open (the table says why) is skipped by ``--all`` and fails when named."""
    args = sys.argv[1:] if argv is None else argv
    from samples.sample_store import (
        DEFAULT_KERNEL,
        SampleError,
        ensure_sample,
        matrix_samples,
        samples_under_test,
    )

    known = samples_under_test() if args == ["--all"] else matrix_samples()
    specs = _samples_from(args, known, DEFAULT_KERNEL)
    if specs is None:
        print(_USAGE, file=sys.stderr)
        return 2
    failed = 0
    for spec in specs:
        start = time.monotonic()
        try:
            sample = ensure_sample(spec.scenario, spec.kernel, spec.variant)
            answers = ensure_crash_answers(sample)
        except CrashNotApplicable as e:
            print(
                f"crash_oracle: {'skipping ' if args == ['--all'] else ''}{spec.label}: {e}", file=sys.stderr
            )
            failed += args != ["--all"]
            continue
        except (CrashOracleError, SampleError) as e:
            print(f"crash_oracle: {spec.label}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(answers_dir(sample), flush=True)
        print(
            f"crash_oracle: {spec.label}: {answers.crash}: {len(answers)} answers in "
            f"{time.monotonic() - start:.1f} s: {', '.join(sorted(answers))}"
            + (f"; missing: {', '.join(answers.missing)}" if answers.missing else ""),
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
