#!/usr/bin/env python3
"""Show a sample crash through a headless DAP session of the adapter, as VS Code would get it.

    .venv/bin/python samples/demo.py [oops-null|sysrq-c|many-tasks|no-panic]

Builds the sample first if the cache lacks it, starts ``vmcore-dap`` over stdio and asks what a
debugger's first screen asks: the stop, the exception, the crashed task's stack with its source
lines, the faulting frame's arguments and locals, and the console's ``sys``. Everything printed is
the adapter's answer about the dump; nothing comes from the sample's manifest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from samples.sample_store import Sample, SampleError, ensure_sample, launch_configuration  # noqa: E402
from tests.helpers.dap_client import DapClient, DapError  # noqa: E402

_MAX_VALUE = 72
_FRAMES_WITH_VARIABLES = 2


def _short(text: str) -> str:
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _source_line(frame: dict[str, Any]) -> str | None:
    path = (frame.get("source") or {}).get("path")
    line = frame.get("line") or 0
    if not path or not Path(path).is_file() or line < 1:
        return None
    lines = Path(path).read_text(errors="replace").splitlines()
    return lines[line - 1].strip() if line <= len(lines) else None


def _where(frame: dict[str, Any]) -> str:
    source = frame.get("source") or {}
    data = source.get("adapterData") or {}
    path = data.get("file") or source.get("path")
    line = data.get("line") or frame.get("line")
    return f"{path}:{line}" if path else (frame.get("moduleId") or "")


def _print_variables(client: DapClient, frame_id: int) -> None:
    for scope in client.call("scopes", {"frameId": frame_id})["scopes"]:
        if scope["name"] not in ("Arguments", "Locals"):
            continue
        variables = client.call("variables", {"variablesReference": scope["variablesReference"]})
        for var in variables["variables"]:
            print(f"             {scope['name'][0]} {var['name']} = {_short(var['value'])}")


def _console(client: DapClient, line: str, frame_id: int) -> str:
    start = len(client.events)
    client.call("evaluate", {"expression": line, "context": "repl", "frameId": frame_id})
    return "".join(
        e["body"]["output"]
        for e in client.events[start:]
        if e["event"] == "output" and e["body"].get("category", "console") == "console"
    )


def show(sample: Sample) -> None:
    """Print the first screen of a debugging session on ``sample``."""
    config = launch_configuration(sample)["configurations"][0]
    if not Path(config.get("sourceRoot", "/nonexistent")).is_dir():
        # Kernel sources are optional (make samples unpacks them); without them kernel frames
        # still name their file and line.
        config.pop("sourceRoot", None)
        config.pop("sourceFileMap", None)
    with DapClient(None, validate=False) as client:
        stopped = client.launch_and_stop(config)["body"]
        thread_id = stopped["threadId"]
        names = {t["id"]: t["name"] for t in client.call("threads")["threads"]}
        print(f"Sample {sample.scenario}: {sample.vmcore}")
        print(f"Stopped ({stopped['reason']}) on {names[thread_id]}, {len(names)} tasks in all")
        if stopped["reason"] == "exception":
            info = client.call("exceptionInfo", {"threadId": thread_id})
            print(f"Panic: {info['description']}")
            report = (info.get("details") or {}).get("stackTrace", "").splitlines()
            for line in report[:5]:
                print(f"  | {line}")
        print("\nCall stack:")
        frames = client.call("stackTrace", {"threadId": thread_id})["stackFrames"]
        shown = 0
        for frame in frames:
            if frame.get("presentationHint") == "subtle" and shown == 0:
                continue  # the panic/kexec path above the faulting frame
            print(f"  #{shown:<2} {frame['name']:<40} {_where(frame)}")
            text = _source_line(frame)
            if text:
                print(f"             {frame['line']:>5} | {text}")
            if shown < _FRAMES_WITH_VARIABLES and frame.get("presentationHint") != "label":
                _print_variables(client, frame["id"])
            shown += 1
        print("\nDebug Console > sys")
        print(_console(client, "sys", frames[0]["id"]).rstrip())


def main(argv: list[str]) -> int:
    """Build (or reuse) the sample named by ``argv`` and show it."""
    scenario = argv[0] if argv else "oops-null"
    try:
        show(ensure_sample(scenario))
    except (SampleError, DapError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
