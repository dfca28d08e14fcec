"""Why a read fails, on the ``oops-null`` kdump (``makedumpfile -c -d 31``), against crash's ``rd``.

A user page of the crashed task and a page-cache page (of the crashed task's executable) were left out
by makedumpfile; the crashed task's stack was written; the guard page below that stack has no
translation. crash tells "page excluded" from "invalid kernel virtual address"; the adapter must
tell them apart the same way, and name the filter level and the kind of page, in every view that
reads memory: the target API, the console, disassembly and variables.

The ELF twin of that dump (``makedumpfile -E -d 31``, written from the same memory) records no filter
level; its excluded pages sit in segments' zero-filled tails (``p_filesz < p_memsz``, read here with
binutils' ``readelf``, not our parser), which drgn reads as zeros. The adapter must say so at launch and
for such a page, and the tails must be exactly what the kdump's bitmap excludes.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.mm import follow_phys, page_to_phys, phys_to_virt
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.xarray import xa_for_each
from tests.e2e._session import config_for, stack_of, stopped_session
from tests.helpers.crash_batch import run_crash
from tests.helpers.dap_client import DapClient

from vmcore_dap.dump.memory.page_filter import (
    PageFilter,
    PageState,
    explain_unreadable,
    page_filter_for,
    zero_filled_reason,
)
from vmcore_dap.dump.opening.vmcore_file import describe_filtering, inspect_vmcore

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
    from vmcore_dap.dump.memory.page_filter import PageFilter

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
    # makedumpfile writes page data in page-frame order, except that every all-zero page it keeps shares one
    # block written first: the highest page with content other than zeros has its data at the end of the file.
    last = next(
        p
        for p in range(1 << 30, -1, -(1 << 21))
        if whole.state(p) is PageState.PRESENT and prog.read(p, 4096, True) != bytes(4096)
    )
    assert half.state(last) is PageState.BEYOND_EOF


# -- the ELF twin (makedumpfile -E -d 31) ------------------------------------------------------------

PAGE = 4096
ZERO_PAGE = bytes(PAGE)


def _readelf_loads(path: Path) -> list[tuple[int, int, int]]:
    """``(p_paddr, p_filesz, p_memsz)`` of every PT_LOAD, as binutils' readelf reads them."""
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True).stdout
    rows = re.findall(
        r"^\s*LOAD\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)", out, re.M
    )
    assert rows, out
    return [(int(p, 16), int(f, 16), int(m, 16)) for p, f, m in rows]


def _tail_pages(loads: list[tuple[int, int, int]]) -> set[int]:
    """Page frames in some segment's p_filesz..p_memsz tail and in no segment's data."""
    data = {pfn for paddr, filesz, _ in loads for pfn in range(paddr // PAGE, (paddr + filesz) // PAGE)}
    tails = {
        pfn
        for paddr, filesz, memsz in loads
        for pfn in range((paddr + filesz) // PAGE, (paddr + memsz + PAGE - 1) // PAGE)
    }
    return tails - data


@pytest.fixture(scope="module")
def prog_elf(sample_oops: Any) -> drgn.Program:
    program = drgn.Program()
    program.set_core_dump(str(sample_oops.vmcore_elf))
    program.load_debug_info([str(sample_oops.vmlinux)])
    return program


@pytest.fixture(scope="module")
def elf_tails(sample_oops: Any) -> set[int]:
    return _tail_pages(_readelf_loads(Path(sample_oops.vmcore_elf)))


def _kdump_bits(pf: PageFilter) -> tuple[bytes, bytes]:
    """The kdump's two page bitmaps (RAM the kernel had, pages written)."""
    maps = pf.file.bitmaps
    assert maps is not None
    with open(pf.file.path, "rb") as f:
        f.seek(maps.offset)
        return f.read(maps.length), f.read(maps.length)


def test_elf_zero_filled_tails_are_the_pages_the_kdump_excludes(
    prog: drgn.Program, sample_oops: Any, elf_tails: set[int]
) -> None:
    """Both files were written from the same memory at -d 31: every page the ELF left in a tail is
    excluded in the kdump's bitmap (or a page of zeros, which the kdump kept); every run of 256 or
    more excluded pages inside the ELF's segments is in a tail (shorter runs keep their data)."""
    elf_file = inspect_vmcore(Path(sample_oops.vmcore_elf))
    assert elf_file.format == "elf" and elf_file.dump_level is None  # nothing recorded
    assert elf_file.zero_filled_pages == len(elf_tails) > 10_000
    pf_elf = PageFilter(elf_file)
    kdump = page_filter_for(prog)
    assert kdump is not None and kdump.file.dump_level == 31
    in_memory, written = _kdump_bits(kdump)

    def bit(bitmap: bytes, pfn: int) -> bool:
        return bool(bitmap[pfn >> 3] >> (pfn & 7) & 1)

    excluded = kept_zero = 0
    for pfn in sorted(elf_tails):
        assert pf_elf.state(pfn * PAGE) is PageState.ZERO_FILLED, hex(pfn * PAGE)
        if bit(in_memory, pfn) and not bit(written, pfn):
            excluded += 1
        elif bit(written, pfn):
            assert prog.read(pfn * PAGE, PAGE, True) == ZERO_PAGE, f"page {pfn * PAGE:#x} has data"
            kept_zero += 1
    assert excluded > 0.9 * len(elf_tails), (excluded, kept_zero, len(elf_tails))
    assert excluded + kept_zero >= len(elf_tails) - 2  # at most the partial pages at a segment's end

    runs: list[tuple[int, int]] = []
    for paddr, _filesz, memsz in _readelf_loads(Path(sample_oops.vmcore_elf)):
        start = None
        for pfn in range(-(-paddr // PAGE), (paddr + memsz) // PAGE + 1):
            out = pfn < (paddr + memsz) // PAGE and bit(in_memory, pfn) and not bit(written, pfn)
            if out and start is None:
                start = pfn
            elif not out and start is not None:
                runs.append((start, pfn))
                start = None
    long_runs = [(a, b) for a, b in runs if b - a >= 256]
    assert long_runs
    for a, b in long_runs:
        assert all(pfn in elf_tails for pfn in range(a, b)), f"excluded run {a * PAGE:#x}..{b * PAGE:#x}"


def test_elf_excluded_page_reads_as_zeros_and_says_why(
    prog: drgn.Program, prog_elf: drgn.Program, pages: Pages, elf_tails: set[int], sample_oops: Any
) -> None:
    """A page the kdump refuses (crash's ``rd``: "page excluded") reads as zeros from the ELF twin;
    the adapter says why in both, naming the same kind of page."""
    base = prog["page_offset_base"].value_()
    kdump = page_filter_for(prog)
    assert kdump is not None
    address = next(
        base + pfn * PAGE
        for pfn in sorted(elf_tails)
        if pfn * PAGE >= 16 << 20 and kdump.state(pfn * PAGE) is PageState.EXCLUDED
    )
    phys = address - base
    crash = "\n".join(run_crash(sample_oops, [f"rd -64 {address:x} 1"]))
    assert f"page excluded: kernel virtual address: {address:x}" in crash, crash
    with pytest.raises(drgn.FaultError):
        prog.read(address, 8)
    assert prog_elf.read(address, 8) == bytes(8)  # no error: drgn fills the tail with zeros
    kdump_why = explain_unreadable(prog, address)
    m = re.fullmatch(rf"{re.escape(EXCLUDED)}; physical page {phys:#x} is a (.+)", kdump_why)
    assert m, kdump_why
    elf_why = explain_unreadable(prog_elf, address)
    assert elf_why == (
        "excluded from the dump by makedumpfile (ELF format, -d level not recorded): physical page "
        f"{phys:#x} lies in a segment's zero-filled tail, so it reads as zeros; it is a {m.group(1)}"
    )
    assert zero_filled_reason(prog_elf, address) == elf_why
    assert zero_filled_reason(prog, address) is None  # the kdump faults instead
    assert zero_filled_reason(prog_elf, pages.stack) is None  # written with its data
    assert prog_elf.read(pages.stack, 64) == prog.read(pages.stack, 64)


def test_launch_and_values_state_the_elf_filtering(
    sample_oops: Any, prog: drgn.Program, pages: Pages, elf_tails: set[int], tmp_path: Path
) -> None:
    """The launch message counts the left-out pages as readelf shows them; a value read from one is
    followed by the reason its zeros are not data, a value from a written page is not."""
    vmcore_elf = Path(sample_oops.vmcore_elf)
    kdump = page_filter_for(prog)
    assert kdump is not None
    base = prog["page_offset_base"].value_()
    excluded = next(
        base + pfn * PAGE
        for pfn in sorted(elf_tails)
        if pfn * PAGE >= 16 << 20 and kdump.state(pfn * PAGE) is PageState.EXCLUDED
    )
    why = explain_unreadable(prog, excluded).removeprefix(EXCLUDED)  # "; physical page … is a …"
    kind = why.rpartition(" is a ")[2]
    count = len(elf_tails)
    expected = (
        f"vmcore-dap: opened {vmcore_elf}: ELF dump written by makedumpfile with filtering: {count:,} "
        f"pages ({count * PAGE / 2**20:,.0f} MiB) excluded; excluded pages read as zeros (an ELF dump "
        "does not record the -d level)\n"
    )
    with stopped_session(sample_oops, tmp_path, vmcore=str(vmcore_elf)) as (client, stopped):
        outputs = [e["body"]["output"] for e in client.events if e["event"] == "output"]
        frame_id = stack_of(client, stopped["body"]["threadId"])[0]["id"]

        def watch(address: int) -> str:
            arguments = {
                "expression": f"*(unsigned long *){address:#x}",
                "context": "watch",
                "frameId": frame_id,
            }
            return str(client.call("evaluate", arguments)["result"])

        zero = watch(excluded)
        present = watch(pages.stack)
    assert expected in outputs, outputs
    assert zero == (
        "0 <excluded from the dump by makedumpfile (ELF format, -d level not recorded): physical page "
        f"{excluded - base:#x} lies in a segment's zero-filled tail, so it reads as zeros; it is a {kind}>"
    )
    assert present == str(int.from_bytes(prog.read(pages.stack, 8), "little"))
    assert not any("every page" in text for text in outputs)


def test_an_unfiltered_elf_dump_is_called_complete(sample_nopanic: Any) -> None:
    """QEMU's dump-guest-memory writes every segment whole: no tail, nothing excluded."""
    path = Path(sample_nopanic.vmcore_elf)
    loads = _readelf_loads(path)
    assert all(filesz == memsz for _paddr, filesz, memsz in loads)
    assert describe_filtering(inspect_vmcore(path)) == (
        f"complete ELF dump: every page of its {len(loads)} memory segments is in the file (no filtering)"
    )
