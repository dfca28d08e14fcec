"""Disassembly view and kernel sources against crash, on every sample, through the real adapter; the
tests marked ``every_kernel`` on every kernel of the matrix too (arm64's A64 as well as x86-64).

crash's ``dis -l <faulting address>`` (from ``samples.crash_oracle``) is the oracle for the
instruction at the crashed frame's pc: address, mnemonic and source line; where the oracle table
distrusts crash's lines of module code (6.12) or crash names no symbol there (7.x), binutils on the
module and the guest's own oops take over (``tests.helpers.crash_site``). crash's ``bt -l`` is the
oracle for where kernel frames' source lines are.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samples.kernel_source import debian_version_of_vmlinux, ensure_kernel_source
from samples.sample_store import launch_configuration
from tests.conftest import answers_for
from tests.helpers import crash_compare as cc
from tests.helpers.crash_parse import parse_bt
from tests.helpers.crash_site import SiteInstruction, site_instruction
from tests.helpers.dap_client import DapClient

from vmcore_dap.dump.sources.layouts import tree_relative_candidates

pytestmark = pytest.mark.timeout(600)


def _config(sample: Any, **overrides: Any) -> dict[str, Any]:
    config = dict(launch_configuration(sample)["configurations"][0])
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def _kernel_source(sample: Any) -> Path:
    """The unpacked linux-source tree of the sample's kernel (fetched once, cached)."""
    return ensure_kernel_source(debian_version_of_vmlinux(Path(sample.vmlinux)))


class Session:
    def __init__(self, client: DapClient, stopped: dict[str, Any]) -> None:
        self.client = client
        self.thread_id = stopped["body"]["threadId"]
        self.frames: list[dict[str, Any]] = client.call("stackTrace", {"threadId": self.thread_id})[
            "stackFrames"
        ]


@pytest.fixture(scope="module")
def session(sample: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    _kernel_source(sample)
    client = DapClient(tmp_path_factory.mktemp(f"disasm-{sample.scenario}"))
    try:
        yield Session(client, client.launch_and_stop(_config(sample)))
        assert not client.schema_errors, client.schema_errors
    finally:
        client.close()


def _site(sample: Any) -> SiteInstruction:
    """The crashed frame's instruction: crash's ``dis -l`` at its pc, or the table's other oracle."""
    return site_instruction(sample, answers_for(sample))


def _same_mnemonic(ours: str, crash: str) -> bool:
    """gdb and capstone disagree only on AT&T size suffixes (``movq`` vs ``mov``), and on the names
    ``crash_compare.canonical_mnemonic`` makes one (gdb's ``.inst`` for a word that is no
    instruction, capstone's ``(bad)``)."""
    ours, crash = cc.canonical_mnemonic(ours), cc.canonical_mnemonic(crash)
    return ours == crash or ours.rstrip("bwlq") == crash.rstrip("bwlq")


def _effective(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Carry ``symbol``/``location``/``line`` forward: DAP sends them only where they change."""
    out, symbol, location, line = [], None, None, None
    for entry in entries:
        if entry.get("presentationHint") == "invalid":
            symbol = location = line = None
        symbol = entry.get("symbol", symbol)
        location = entry.get("location", location)
        line = entry.get("line", line)
        out.append({**entry, "symbol": symbol, "location": location, "line": line})
    return out


@pytest.mark.every_kernel
def test_instruction_at_pc_matches_crash_dis_l(session: Session, sample: Any) -> None:
    site = _site(sample)
    address = site.address
    refs = [f.get("instructionPointerReference") for f in session.frames]
    assert f"{address:#x}" in refs, f"no frame has pc {address:#x}: {refs}"
    window = session.client.call(
        "disassemble", {"memoryReference": f"{address:#x}", "instructionOffset": -20, "instructionCount": 41}
    )["instructions"]
    assert len(window) == 41
    at_pc = _effective(window)[20]
    assert int(at_pc["address"], 16) == address
    ours = at_pc["instruction"].split()[0]
    assert _same_mnemonic(ours, site.mnemonic), (at_pc, site)
    assert at_pc["line"] == site.line, (at_pc, site)
    assert at_pc["location"] is not None and at_pc["location"]["name"] == site.file, (at_pc, site)
    # DAP sends ``symbol`` where it changes: the function's name carried forward, not the offset.
    assert at_pc["symbol"].split("+")[0] == site.function.removesuffix(".cold"), (at_pc, site)
    # Contiguous, and every instruction's bytes are the dump's bytes.
    for prev, nxt in zip(window, window[1:], strict=False):
        size = len(bytes.fromhex(prev["instructionBytes"].replace(" ", "")))
        assert int(nxt["address"], 16) == int(prev["address"], 16) + size
    start = int(window[0]["address"], 16)
    raw = b"".join(bytes.fromhex(e["instructionBytes"].replace(" ", "")) for e in window)
    memory = session.client.call("readMemory", {"memoryReference": f"{start:#x}", "count": len(raw)})
    assert base64.b64decode(memory["data"]) == raw


@pytest.mark.parametrize("offset", [-20, -13, -7, -1, 0, 1, 5, 20])
def test_any_offset_lands_on_the_same_instructions(session: Session, sample: Any, offset: int) -> None:
    """Every window around the pc agrees with the −20…+20 window: re-alignment never drifts."""
    address = _site(sample).address
    reference = session.client.call(
        "disassemble", {"memoryReference": f"{address:#x}", "instructionOffset": -20, "instructionCount": 43}
    )["instructions"]
    got = session.client.call(
        "disassemble",
        {"memoryReference": f"{address:#x}", "instructionOffset": offset, "instructionCount": 3},
    )["instructions"]
    assert [e["address"] for e in got] == [e["address"] for e in reference[20 + offset : 23 + offset]]


def test_unreadable_memory_is_padded_with_invalid_entries(session: Session) -> None:
    """Address 0 is never in a kernel dump: exactly ``count`` invalid entries, none dropped."""
    got = session.client.call(
        "disassemble", {"memoryReference": "0x1000", "instructionOffset": -4, "instructionCount": 10}
    )["instructions"]
    assert len(got) == 10
    assert all(e.get("presentationHint") == "invalid" for e in got)
    assert int(got[4]["address"], 16) == 0x1000


@pytest.mark.every_kernel
def test_kernel_frame_source_opens_from_the_unpacked_tree(session: Session, sample: Any) -> None:
    """Kernel frames point into the kernel's linux-source tree at the line crash's ``bt -l`` names."""
    root = _kernel_source(sample)
    answers = answers_for(sample)
    crash_bt = parse_bt(answers["bt-l"])[0]
    pc_bias = answers.meta["crash"]["site_rule"][1]  # arm64's crash prints the call instruction
    checked = []
    for crash_frame in crash_bt.frames:
        if crash_frame.module or not crash_frame.file or crash_frame.line is None:
            continue
        relative = tree_relative_candidates(crash_frame.file)
        # Our innermost frame at crash's pc (crash's bt -l names the innermost inlined location).
        ours = next(
            (
                f
                for f in session.frames
                if f.get("instructionPointerReference") == f"{crash_frame.address + pc_bias:#x}"
            ),
            None,
        )
        if ours is not None and ours.get("source", {}).get("name") != Path(crash_frame.file).name:
            ours = None
        if ours is None or not relative:
            continue  # crash names an inlined callee's file here; the stack tests compare those
        path = Path(ours["source"]["path"])
        assert path == root / relative[0], (ours, crash_frame)
        assert path.is_file()
        assert len(path.read_text().splitlines()) >= ours["line"]
        # crash looks up a caller's line at the return address; debuggers (and we) at the call
        # (pc - 1). They agree except after a call that never returns, where the return address
        # already belongs to the next line: compare the frames where crash is exact, count the rest.
        if abs(ours["line"] - crash_frame.line) <= 1:
            checked.append(crash_frame.symbol)
        else:
            assert crash_frame.level > 0 and ours is not session.frames[0], (ours, crash_frame)
    assert checked, f"no kernel frame of crash's bt -l agrees on its line: {crash_bt}"


def test_frame_without_source_gets_a_listing_reference(sample: Any, tmp_path: Path) -> None:
    """Without sourceRoot/sourceFileMap, kernel frames still open: an annotated disassembly listing."""
    config = _config(sample, sourceRoot=None, sourceFileMap=None)
    with DapClient(tmp_path) as client:
        stopped = client.launch_and_stop(config)
        frames = client.call("stackTrace", {"threadId": stopped["body"]["threadId"]})["stackFrames"]
        kernel_range = client.call("modules", {})["modules"][0]["addressRange"]
        low, high = (int(x, 16) for x in kernel_range.split("-"))
        kernel = [
            f
            for f in frames
            if low <= int(f.get("instructionPointerReference", "0x0"), 16) < high
            and f.get("presentationHint") != "label"
        ]
        assert kernel, frames
        frame = kernel[-1]
        reference = frame.get("source", {}).get("sourceReference")
        assert reference, f"frame without a source file has no sourceReference: {frame}"
        content = client.call("source", {"sourceReference": reference, "source": frame["source"]})["content"]
        lines = content.splitlines()
        pc = int(frame["instructionPointerReference"], 16)
        assert f"{pc:#018x}" in content or any(line.startswith(f"{pc - 1:#018x}"[:14]) for line in lines)
        assert frame["line"] >= 1 and lines[frame["line"] - 1].startswith("0x"), frame
        # The same listing through the disassembly view: its location carries the same reference.
        dis = client.call(
            "disassemble", {"memoryReference": frame["instructionPointerReference"], "instructionCount": 1}
        )["instructions"][0]
        assert dis["location"]["sourceReference"] == reference
        assert not client.schema_errors, client.schema_errors
