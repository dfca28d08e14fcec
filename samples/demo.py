#!/usr/bin/env python3
"""Show a sample crash the way a debugger would: panic summary, crashed task, stack, locals.

    .venv/bin/python samples/demo.py [oops-null|sysrq-c]

Builds the sample first if the cache lacks it. Reads the dump with drgn directly
(the project's DAP adapter will take this over); every value printed comes from
the dump and its debug info, not from the manifest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import drgn
from drgn.helpers.linux.printk import get_dmesg
from drgn.helpers.linux.sched import task_cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sample_store import Sample, SampleError, ensure_sample  # noqa: E402

_LOG_MARKERS = ("BUG:", "Oops:", "RIP: 0010", "Kernel panic", "sysrq: Trigger", "CPU: ")
_MAX_VALUE = 70


def _open(sample: Sample) -> drgn.Program:
    prog = drgn.Program()
    prog.set_core_dump(str(sample.vmcore))
    prog.load_debug_info([str(sample.vmlinux), *map(str, sample.debug_info)], default=False)
    return prog


def _panic_summary(prog: drgn.Program) -> list[str]:
    """The oops/panic lines of the dump's own kernel log, in order."""
    log = get_dmesg(prog).decode(errors="replace").splitlines()
    start = next((i for i, line in enumerate(log) if "BUG:" in line or "sysrq: Trigger" in line), 0)
    return [line for line in log[start:] if any(m in line for m in _LOG_MARKERS)][:6]


def _source_line(path: str, line: int, roots: list[Path]) -> str | None:
    candidates = [Path(path)] + [root / path for root in roots]
    for candidate in candidates:
        if candidate.is_file():
            lines = candidate.read_text(errors="replace").splitlines()
            if 0 < line <= len(lines):
                return lines[line - 1].strip()
    return None


def _value(obj: drgn.Object) -> str:
    try:
        text = obj.format_(dereference=False, symbolize=True, type_name=False)
    except drgn.FaultError as e:
        return f"<error: cannot read {e.address:#x}>"
    except drgn.ObjectAbsentError:
        return "<optimized out>"
    text = " ".join(text.split())
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _print_stack(prog: drgn.Program, sample: Sample) -> None:
    thread = prog.crashed_thread()
    task = thread.object
    print(f'Crashed task: pid {thread.tid} "{task.comm.string_().decode()}" on CPU {task_cpu(task)}')
    roots = [sample.module_source_dir]
    for index, frame in enumerate(thread.stack_trace()):
        name = frame.name or f"{frame.pc:#x}"
        try:
            path, line, _ = frame.source()
        except LookupError:
            print(f"  #{index:<2} {name}  (no line info)")
            continue
        inline = " [inlined]" if frame.is_inline else ""
        print(f"  #{index:<2} {name}{inline}  at {path}:{line}")
        text = _source_line(path, line, roots)
        if text:
            print(f"        {line:>5} | {text}")
        for local in frame.locals():
            try:
                obj = frame[local]
            except (KeyError, LookupError):
                continue
            print(f"              {local} = {_value(obj)}")


def main(argv: list[str]) -> int:
    scenario = argv[0] if argv else "oops-null"
    try:
        sample = ensure_sample(scenario)
    except SampleError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    prog = _open(sample)
    print(f"Sample {scenario}: {sample.dir}")
    print(f"Kernel {sample.kernel_release}, dump {sample.vmcore.name} (kdump-compressed)")
    print("Panic (from the dump's kernel log):")
    for line in _panic_summary(prog):
        print(f"  {line}")
    print()
    _print_stack(prog, sample)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
