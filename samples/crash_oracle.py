"""Run the ``crash`` utility on a sample vmcore and store its answers: the oracle of our tests.

Every test that checks what the adapter says about a dump compares it with what crash says about
the same dump.  crash is slow to start (it reads all of vmlinux's DWARF), so it runs once per sample
in batch mode, and each command's output is kept next to the sample's manifest::

    <sample dir>/crash/<name>.txt     one file per command (names in ``COMMANDS``, and a scenario's
                                      own in ``SCENARIO_COMMANDS``)
    <sample dir>/crash/done.json      written last: crash version, this script's hash, the exact
                                      command line of each file, and the crashed task's RIP/RSP

The answers are rebuilt when the crash binary's version or this script changes.  crash itself is
built by ``samples/build-crash`` (crash >= 8.0.4; Debian 12's 8.0.2 cannot list tasks on current 6.1
kernels).

Command line: ``python samples/crash_oracle.py <scenario>... | --all`` builds the samples and their
answers and prints one answers directory per line.  ``--all`` covers every scenario crash can open:
``NO_CRASH_ANSWERS`` names the others and says why (printed when they are skipped).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from samples.sample_store import Sample

__all__ = [
    "ANSWERS_DIR",
    "COMMANDS",
    "CrashOracleError",
    "SCENARIO_COMMANDS",
    "NO_CRASH_ANSWERS",
    "answers_dir",
    "crash_binary",
    "crash_version",
    "ensure_crash_answers",
    "load_crash_answers",
    "main",
]

ANSWERS_DIR = "crash"
_HERE = Path(__file__).resolve().parent
_BUILD_CRASH = _HERE / "build-crash"
_CRASH_TIMEOUT_S = 900

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


#: A scenario's own commands, from its manifest's ``expected`` facts; run in the first session.
SCENARIO_COMMANDS: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {
    "list-uaf": _list_uaf_commands,
}

# The main struct of the sample module, for ``struct -o``; a manifest key "module_struct" (top
# level or in "expected") overrides it.
_DEFAULT_MODULE_STRUCT = {"oops-null": "labbug_device"}


#: Scenarios crash cannot open, and why (``--all`` skips them and prints this; asking for one fails
#: with it).  Tests of these samples check the adapter against the guest's own facts and drgn instead.
NO_CRASH_ANSWERS: dict[str, str] = {
    "no-panic": (
        "crash 8.0.6 cannot open QEMU's dump-guest-memory ELF of a live guest: it stops with "
        "'invalid size request: 0 type: \"stack contents\"' / 'read of stack at fffffe0000014000 "
        "failed' while setting up CPU 0's exception stacks, with or without --no_panic "
        "(samples/README.md, no-panic); its tests use the guest's facts and drgn instead"
    ),
}


class CrashOracleError(RuntimeError):
    """crash could not be built or run on a sample; the message says what to check."""


#: Everything after this line in this file is the command line, which does not change the answers.
_CLI_MARKER = b"# -- command line: not part of the answers' hash --"


def _script_hash() -> str:
    """Hash the part of this file that decides the answers (the command line below the marker
    does not, so editing it does not make every sample's answers stale)."""
    source = Path(__file__).read_bytes()
    return hashlib.sha256(source.split(b"\n" + _CLI_MARKER, 1)[0]).hexdigest()[:12]


def crash_binary() -> Path:
    """Build crash if needed (``samples/build-crash``) and return the binary's path."""
    proc = subprocess.run([str(_BUILD_CRASH)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CrashOracleError(f"samples/build-crash failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    path = Path(proc.stdout.strip().splitlines()[-1])
    if not os.access(path, os.X_OK):
        raise CrashOracleError(f"samples/build-crash printed {path}, which is not an executable")
    return path


def crash_version(binary: Path) -> str:
    """Return crash's version string, e.g. ``8.0.6``."""
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False, timeout=60
    ).stdout
    m = re.search(r"^crash (\S+)", out, re.MULTILINE)
    if m is None:
        raise CrashOracleError(f"{binary} --version printed no version:\n{out[:500]}")
    return m.group(1)


def answers_dir(sample: Sample) -> Path:
    """Where the answers of ``sample`` are (or will be) stored."""
    return Path(sample.dir) / ANSWERS_DIR


def load_crash_answers(directory: Path) -> dict[str, str]:
    """Read stored answers: {name: output text} for every ``<name>.txt`` in ``directory``."""
    return {p.stem: p.read_text(errors="replace") for p in sorted(directory.glob("*.txt"))}


def _module_struct(sample: Sample) -> str | None:
    manifest: dict[str, Any] = sample.manifest or {}
    expected: dict[str, Any] = sample.expected or {}
    return (
        manifest.get("module_struct")
        or expected.get("module_struct")
        or _DEFAULT_MODULE_STRUCT.get(sample.scenario)
    )


def _module_load_commands(sample: Sample) -> list[str]:
    """crash commands that load module symbols and DWARF before anything else runs."""
    cmds: list[str] = []
    tree = Path(sample.debug_info_dir) / "lib" / "modules" / sample.kernel_release
    if tree.is_dir():
        cmds.append(f"mod -S {tree}")
    for ko in sample.debug_info:
        name = Path(ko).name.removesuffix(".ko").replace("-", "_")
        cmds.append(f"mod -s {name} {ko}")
    return cmds


def _run_crash(binary: Path, sample: Sample, commands: dict[str, str], out: Path) -> str:
    """Run one batch session: each command's output goes to ``out/<name>.txt`` (crash's own ``>``)."""
    script = ["set scroll off"]
    script += [f"{c} > {out / 'mod-load.txt'}" for c in _module_load_commands(sample)[:1]]
    script += [f"{c} >> {out / 'mod-load.txt'}" for c in _module_load_commands(sample)[1:]]
    for name, cmd in commands.items():
        script.append(f"{cmd} > {out / (name + '.txt')}")
    script.append("exit")
    argv = [str(binary), "-s", str(sample.vmlinux), str(sample.vmcore)]
    try:
        proc = subprocess.run(
            argv,
            input="\n".join(script) + "\n",
            capture_output=True,
            text=True,
            timeout=_CRASH_TIMEOUT_S,
            check=False,
            env={**os.environ, "PAGER": "cat", "CRASH_MODULE_PATH": str(sample.debug_info_dir)},
        )
    except subprocess.TimeoutExpired as e:
        raise CrashOracleError(f"crash did not finish within {_CRASH_TIMEOUT_S} s on {sample.vmcore}") from e
    missing = [n for n in commands if not (out / f"{n}.txt").is_file()]
    if proc.returncode != 0 or missing:
        raise CrashOracleError(
            f"crash failed on {sample.vmcore} (exit {proc.returncode}; no output for "
            f"{', '.join(missing) or 'none'}); command: {' '.join(argv)}\n"
            f"stderr:\n{proc.stderr.strip()[-2000:]}\nstdout:\n{proc.stdout.strip()[-2000:]}"
        )
    return proc.stdout + proc.stderr


_EXCEPTION = re.compile(
    r"\[exception RIP: (?P<sym>[^\]]+)\]\n\s+RIP: (?P<rip>[0-9a-f]+)\s+RSP: (?P<rsp>[0-9a-f]+)"
)
_FRAME = re.compile(r"^\s*#\d+ \[(?P<sp>[0-9a-f]+)\] (?P<sym>\S+) at (?P<addr>[0-9a-f]+)", re.MULTILINE)
# Frames above the crash site when the kernel called panic() itself (no exception), as SysRq-c does.
_PANIC_PATH = frozenset({"machine_kexec", "__crash_kexec", "crash_kexec", "panic"})


def _crash_site(sample: Sample, bt: str) -> dict[str, Any]:
    """Where the panic task crashed, from crash's ``bt``: the exception RIP, or else the first
    frame below panic() (its return address)."""
    if m := _EXCEPTION.search(bt):
        return {
            "kind": "exception RIP",
            "symbol": m["sym"],
            "address": int(m["rip"], 16),
            "sp": int(m["rsp"], 16),
        }
    for m in _FRAME.finditer(bt):
        if m["sym"] not in _PANIC_PATH:
            return {
                "kind": "return address",
                "symbol": m["sym"],
                "address": int(m["addr"], 16),
                "sp": int(m["sp"], 16),
            }
    raise CrashOracleError(
        f"crash's bt of the panic task on {sample.vmcore} shows neither an exception nor a frame "
        f"below panic():\n{bt[:2000]}"
    )


def _followup_commands(sample: Sample, first: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """Commands whose arguments come from the first session: the crash site, its stack."""
    site = _crash_site(sample, first["bt"])
    addr, sp, func = site["address"], site["sp"], site["symbol"].split("+", 1)[0]
    facts: dict[str, Any] = {
        "crash_site": {**site, "address": f"{addr:#x}", "sp": f"{sp:#x}"},
    }
    cmds = {
        "dis-l": f"dis -l {addr:#x}",
        "dis-rl": f"dis -rl {addr:#x}",
        "dis-func": f"dis -l {func}",
        "rd": f"rd -64 {sp:#x} 8",
    }
    struct = _module_struct(sample)
    if struct:
        cmds["struct-o"] = f"struct -o {struct}"
        facts["module_struct"] = struct
    return cmds, facts


def _scenario_commands(sample: Sample) -> dict[str, str]:
    make = SCENARIO_COMMANDS.get(sample.scenario)
    return make(sample.expected or {}) if make is not None else {}


def _is_current(directory: Path, version: str) -> bool:
    done = directory / "done.json"
    if not done.is_file():
        return False
    try:
        meta = json.loads(done.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("crash_version") == version and meta.get("oracle_hash") == _script_hash()


def ensure_crash_answers(sample: Sample) -> dict[str, str]:
    """Return crash's answers for ``sample`` ({name: output}), running crash once if needed.

    :param sample: a ``samples.sample_store.Sample``.
    :raises CrashOracleError: crash cannot be built, cannot open this scenario's dumps
        (``NO_CRASH_ANSWERS``) or fails on the dump (the message says why).
    """
    if sample.scenario in NO_CRASH_ANSWERS:
        why = NO_CRASH_ANSWERS[sample.scenario]
        raise CrashOracleError(f"no crash answers for '{sample.scenario}': {why}")
    binary = crash_binary()
    version = crash_version(binary)
    target = answers_dir(sample)
    if _is_current(target, version):
        return load_crash_answers(target)

    lock_path = Path(sample.dir) / ".crash-oracle.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be running crash on this sample
        if _is_current(target, version):
            return load_crash_answers(target)
        tmp = Path(tempfile.mkdtemp(prefix=".crash-", dir=sample.dir))
        tmp.chmod(0o755)  # mkdtemp makes it private; the answers are for everyone
        try:
            start = time.monotonic()
            first_commands = {**COMMANDS, **_scenario_commands(sample)}
            _run_crash(binary, sample, first_commands, tmp)
            first = load_crash_answers(tmp)
            followup, facts = _followup_commands(sample, first)
            _run_crash(binary, sample, followup, tmp)
            meta = {
                "crash_version": version,
                "crash_binary": str(binary),
                "oracle_hash": _script_hash(),
                "vmcore": str(sample.vmcore),
                "vmlinux": str(sample.vmlinux),
                "commands": {**first_commands, **followup},
                "module_load": _module_load_commands(sample),
                "facts": facts,
                "seconds": round(time.monotonic() - start, 1),
            }
            (tmp / "done.json.tmp").write_text(json.dumps(meta, indent=2) + "\n")
            os.rename(tmp / "done.json.tmp", tmp / "done.json")
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return load_crash_answers(target)


# -- command line: not part of the answers' hash --


_USAGE = "usage: python samples/crash_oracle.py <scenario>... | --all   (e.g. oops-null sysrq-c)"


def _scenarios_from(args: list[str], known: tuple[str, ...]) -> list[str] | None:
    """The scenarios the command line asks for, in order; ``None`` for a bad command line."""
    if args == ["--all"]:
        for name in known:
            if name in NO_CRASH_ANSWERS:
                print(f"crash_oracle: skipping {name}: {NO_CRASH_ANSWERS[name]}", file=sys.stderr)
        return [name for name in known if name not in NO_CRASH_ANSWERS]
    if not args or any(a.startswith("-") for a in args):
        return None
    return list(dict.fromkeys(args))


def main(argv: list[str] | None = None) -> int:
    """``crash_oracle.py <scenario>... | --all``: build each sample and crash's answers about it,
    print one answers directory per line (in the order asked); exit 1 if any failed."""
    args = sys.argv[1:] if argv is None else argv
    repo_root = str(_HERE.parent)
    if repo_root not in sys.path:
        sys.path.insert(0, repo_root)
    from samples.sample_store import SCENARIOS, SampleError, ensure_sample

    scenarios = _scenarios_from(args, tuple(SCENARIOS))
    if scenarios is None:
        print(_USAGE, file=sys.stderr)
        return 2
    failed = 0
    for scenario in scenarios:
        start = time.monotonic()
        try:
            sample = ensure_sample(scenario)
            answers = ensure_crash_answers(sample)
        except (CrashOracleError, SampleError) as e:
            print(f"crash_oracle: {scenario}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(answers_dir(sample), flush=True)
        print(
            f"crash_oracle: {scenario}: {len(answers)} answers in {time.monotonic() - start:.1f} s: "
            f"{', '.join(sorted(answers))}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
