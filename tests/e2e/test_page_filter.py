"""Why a read fails, on the ``oops-null`` kdump (``makedumpfile -c -d 31``), against crash's ``rd``.

A user page of the crashed task and a page-cache page (of the crashed task's executable) were left out
by makedumpfile; the crashed task's stack was written; the guard page below that stack has no
translation. crash tells "page excluded" from "invalid kernel virtual address"; the adapter must
tell them apart the same way, and name the filter level and the kind of page, in every view that
reads memory: the target API, the console, disassembly and variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.mm import follow_phys, page_to_phys, phys_to_virt
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.xarray import xa_for_each
from tests.e2e._core_support import config_for, stack_of
from tests.e2e.test_variables import run_crash
from tests.helpers.dap_client import DapClient

from vmcore_dap.target.page_filter import PageState, explain_unreadable, page_filter_for

pytestmark = pytest.mark.timeout(600)

EXCLUDED = "excluded from the dump by makedumpfile -d 31 (user/cache/free pages)"
NOT_MAPPED = "not mapped (no translation in the kernel's page tables)"


@dataclass(frozen=True)
class Pages:
    """Addresses on the dump, found with drgn's own helpers (independently of the adapter)."""

    task_mm: drgn.Object
    user: int  # a user virtual address of the crashed task (its stack top page)
    user_phys: int
    user_alias: int  # the same physical page through the kernel's direct map
    cache_alias: int  # a page-cache page of the crashed task's executable, through the direct map
    cache_phys: int
    stack: int  # the crashed task's kernel stack (vmalloc'ed)
    guard: int  # the unmapped page below it


@pytest.fixture(scope="module")
def prog(sample_oops: Any) -> drgn.Program:
    program = drgn.Program()
    program.set_core_dump(str(sample_oops.vmcore))
    program.load_debug_info([str(sample_oops.vmlinux)])
    return program


@pytest.fixture(scope="module")
def pages(prog: drgn.Program, sample_oops: Any) -> Pages:
    task = find_task(prog, sample_oops.expected["crashed_pid"])
    mm = task.mm
    user = mm.start_stack.value_() & ~0xFFF
    user_phys = int(follow_phys(mm, user))
    mapping = mm.exe_file.f_mapping
    _index, entry = next(iter(xa_for_each(mapping.i_pages.address_of_())))
    cache_phys = int(page_to_phys(drgn.Object(prog, "struct page *", entry)))
    stack = task.stack.value_()
    return Pages(
        task_mm=mm,
        user=user,
        user_phys=user_phys,
        user_alias=int(phys_to_virt(prog, user_phys)),
        cache_alias=int(phys_to_virt(prog, cache_phys)),
        cache_phys=cache_phys,
        stack=stack,
        guard=stack - 0x1000,
    )


@pytest.fixture(scope="module")
def crash_rd(sample_oops: Any, pages: Pages) -> str:
    """crash's ``rd`` on each address; its errors go to its own output, so all is returned joined."""
    pid = sample_oops.expected["crashed_pid"]
    commands = [
        f"rd -64 {pages.user_alias:x} 1",
        f"rd -64 {pages.cache_alias:x} 1",
        f"rd -64 {pages.stack:x} 1",
        f"rd -64 {pages.guard:x} 1",
        f"set {pid}",
        f"rd -u -64 {pages.user:x} 1",
    ]
    return "\n".join(run_crash(sample_oops, commands))


def test_crash_agrees_on_which_pages_are_excluded(crash_rd: str, pages: Pages) -> None:
    """The premise, from the oracle: excluded, excluded, present, invalid."""
    assert f"page excluded: kernel virtual address: {pages.user_alias:x}" in crash_rd, crash_rd
    assert f"page excluded: kernel virtual address: {pages.cache_alias:x}" in crash_rd, crash_rd
    assert f"page excluded: user virtual address: {pages.user:x}" in crash_rd, crash_rd
    assert f"{pages.stack:x}:  " in crash_rd, crash_rd
    assert f"invalid kernel virtual address: {pages.guard:x}" in crash_rd, crash_rd


def test_page_states_from_the_kdump_bitmaps(prog: drgn.Program, pages: Pages) -> None:
    pf = page_filter_for(prog)
    assert pf is not None and pf.file.format == "kdump" and pf.file.dump_level == 31
    assert pf.state(pages.user_phys) is PageState.EXCLUDED
    assert pf.state(pages.cache_phys) is PageState.EXCLUDED
    assert pf.state(int(follow_phys(prog["init_mm"].address_of_(), pages.stack))) is PageState.PRESENT
    assert prog.read(pages.stack, 64)  # and drgn reads it


def test_explanations_name_the_filter_and_the_kind_of_page(prog: drgn.Program, pages: Pages) -> None:
    user = explain_unreadable(prog, pages.user, mm=pages.task_mm)
    assert user == f"{EXCLUDED}; physical page {pages.user_phys:#x} is a user (anonymous) page"
    assert explain_unreadable(prog, pages.user_alias) == user
    assert explain_unreadable(prog, pages.cache_alias) == (
        f"{EXCLUDED}; physical page {pages.cache_phys:#x} is a page-cache page"
    )
    assert explain_unreadable(prog, pages.guard) == NOT_MAPPED
    assert explain_unreadable(prog, pages.user) == "user-space address, not in the dump"  # no mm given
    assert explain_unreadable(prog, 8) == "NULL pointer"
    for address in (pages.user_alias, pages.cache_alias, pages.guard):
        with pytest.raises(drgn.FaultError):
            prog.read(address, 8)


@dataclass
class Session:
    client: DapClient
    frame_id: int  # the crashed task's top frame, where VS Code's console evaluates

    def request(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.client.request(command, arguments, timeout=120)

    def call(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.client.call(command, arguments, timeout=120)


@pytest.fixture(scope="module")
def client(sample_oops: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    dap = DapClient(tmp_path_factory.mktemp("page-filter"))
    try:
        stopped = dap.launch_and_stop(config_for(sample_oops))
        yield Session(dap, stack_of(dap, stopped["body"]["threadId"])[0]["id"])
        assert dap.schema_errors == [], dap.schema_errors
    finally:
        dap.close()


def _expected(pages: Pages) -> dict[int, str]:
    return {
        pages.user_alias: f"{EXCLUDED}; physical page {pages.user_phys:#x} is a user (anonymous) page",
        pages.cache_alias: f"{EXCLUDED}; physical page {pages.cache_phys:#x} is a page-cache page",
        pages.guard: NOT_MAPPED,
    }


def test_console_rd_says_why(client: Session, pages: Pages) -> None:
    for address, why in _expected(pages).items():
        response = client.request(
            "evaluate",
            {"expression": f"rd -64 {address:#x} 2", "context": "repl", "frameId": client.frame_id},
        )
        assert not response["success"]
        assert response["message"] == f"cannot read memory at {address:#x}: {why}"
    stack = client.request(
        "evaluate",
        {"expression": f"rd -64 {pages.stack:#x} 2", "context": "repl", "frameId": client.frame_id},
    )
    assert stack["success"], stack.get("message")


def test_disassembly_and_memory_say_why(client: Session, pages: Pages) -> None:
    for address, why in _expected(pages).items():
        body = client.call("disassemble", {"memoryReference": f"{address:#x}", "instructionCount": 3})
        for insn in body["instructions"]:
            assert insn["presentationHint"] == "invalid"
            assert insn["instruction"] == f"??  ; {address:#x}: {why}"
        memory = client.call("readMemory", {"memoryReference": f"{address:#x}", "count": 32})
        assert memory.get("unreadableBytes") == 32 and memory["data"] == ""
    present = client.call("readMemory", {"memoryReference": f"{pages.stack:#x}", "count": 32})
    assert present.get("unreadableBytes", 0) == 0 and present["data"]


def test_variables_say_why(client: Session, pages: Pages) -> None:
    for address, why in _expected(pages).items():
        result = client.call(
            "evaluate",
            {"expression": f"*(unsigned long *){address:#x}", "context": "watch", "frameId": client.frame_id},
        )["result"]
        assert result == f"<error: cannot read {address:#x}: {why}>"


def test_truncated_copy_loses_pages_to_the_cut_not_to_the_filter(
    sample_oops: Any, prog: drgn.Program, pages: Pages, tmp_path: Path
) -> None:
    """A truncated copy: the stack's page, written near the start, stays present; a page whose data
    lay past the cut is reported as lost to truncation, not as excluded."""
    from vmcore_dap.target.page_filter import PageFilter

    whole = PageFilter.open(Path(sample_oops.vmcore))
    stack_phys = int(follow_phys(prog["init_mm"].address_of_(), pages.stack))
    cut = tmp_path / "vmcore"
    size = Path(sample_oops.vmcore).stat().st_size
    with open(sample_oops.vmcore, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(size // 2))
    half = PageFilter.open(cut)
    assert half.file.truncated
    assert whole.state(stack_phys) is PageState.PRESENT
    assert half.state(pages.user_phys) is PageState.EXCLUDED  # the bitmaps are intact
    last = max(range(0, 1 << 30, 1 << 21), key=lambda p: p if whole.state(p) is PageState.PRESENT else -1)
    assert whole.state(last) is PageState.PRESENT and half.state(last) is PageState.BEYOND_EOF
