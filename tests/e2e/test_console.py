"""The Debug Console against crash itself: every command of the seed workflow, on every sample.

One DAP session per sample (the real adapter over stdio); each console line is an ``evaluate``
request with context ``repl``, its text the ``output`` events sent before the response. crash's
answers come from ``samples.crash_oracle`` (the crash ``samples/crash_choice.py`` picks for the
dump, in batch mode); the comparison rules are those of :mod:`tests.helpers.crash_compare`.

Tests marked ``every_kernel`` also run on each other kernel of the matrix. Where the oracle table
distrusts or lacks one of crash's answers on a kernel, the test names the oracle it uses instead:
the dump's own clocks for ``sys``'s DATE and UPTIME and ``log -T``'s dates (VMCOREINFO's
CRASHTIME, jiffies at the kernel's CONFIG_HZ), plain drgn's module list for ``mod`` (crash 9.0.2 runs with
``--no_modules`` on 7.x), and for back traces whose callers crash gets wrong (7.x) the tasks alone;
for lines of a module's code on 6.12 and for ``dis`` at a site crash cannot name (7.x) binutils on
the module's .ko and the guest's own oops line, for a module's ``struct -o`` on 7.x gdb on the .ko.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from drgn.helpers.linux.list import list_for_each_entry
from samples.crash_choice import dump_facts
from tests.conftest import answers_for
from tests.e2e._session import open_sample_dump
from tests.helpers import crash_compare as cc
from tests.helpers.crash_parse import parse_bt, parse_dis, split_tasks
from tests.helpers.crash_site import guest_rip, site_instruction
from tests.helpers.dap_client import DapClient
from tests.helpers.kernel_config import config_hz, jiffies_uptime
from tests.helpers.ko_lines import ko_function, ko_line
from tests.helpers.stack_normalize import assert_stacks_match

from vmcore_dap.dump.arch import arm64, x86_64

pytestmark = pytest.mark.timeout(600)


class Console:
    """A DAP session on one sample, driven through its Debug Console."""

    def __init__(self, client: DapClient, stopped: dict[str, Any], stop_events: int) -> None:
        self.client = client
        self.stopped = stopped
        self.stop_events = stop_events
        self.thread_id = stopped["body"]["threadId"]
        frames = client.call("stackTrace", {"threadId": self.thread_id})["stackFrames"]
        self.frame_id = frames[0]["id"]

    def run(self, line: str, frame_id: int | None = -1, timeout: float = 120) -> tuple[str, dict[str, Any]]:
        """Evaluate ``line`` in the console; return (printed text, response)."""
        return self.client.repl(line, self.frame_id if frame_id == -1 else frame_id, timeout)

    def ok(self, line: str, **kw: Any) -> str:
        text, response = self.run(line, **kw)
        assert response["success"], f"{line!r} failed: {response.get('message')}\n{text}"
        return text


def _launch_config(sample: Any) -> dict[str, Any]:
    return {
        "vmcore": str(sample.vmcore),
        "vmlinux": str(sample.vmlinux),
        "debugInfo": [str(p) for p in sample.debug_info],
    }


@pytest.fixture(scope="module")
def console(sample: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    client = DapClient(tmp_path_factory.mktemp(f"console-{sample.scenario}"))
    try:
        stopped = client.launch_and_stop(_launch_config(sample))
        yield Console(client, stopped, client.events.index(stopped))
        assert not client.schema_errors, client.schema_errors
    finally:
        client.close()


@pytest.fixture(scope="module")
def answers(sample: Any) -> dict[str, str]:
    return answers_for(sample)


def _facts(sample: Any) -> dict[str, Any]:
    facts: dict[str, Any] = answers_for(sample).meta["facts"]
    return facts


def _crash_site(sample: Any) -> dict[str, str]:
    """Where crash says the task crashed: ``symbol``, ``address`` and the stack pointer ``sp``."""
    return _facts(sample)["crash_site"]


def _oracle_command(sample: Any, name: str) -> str:
    """The exact command line the oracle ran to produce ``answers[name]``."""
    return str(answers_for(sample).meta["commands"][name])


# -- sys, ps, log, mod, kmem -i -----------------------------------------------------------------


@pytest.mark.every_kernel
def test_sys_fields_match_crash(console: Console, sample: Any, answers: Any) -> None:
    ours, theirs = cc.sys_fields(console.ok("sys")), cc.sys_fields(answers["sys"])
    uptime = jiffies_uptime(open_sample_dump(sample).prog, config_hz(sample))
    differences = cc.sys_differences(ours, answers, dump_facts(sample).vmcoreinfo, uptime)
    assert not differences, differences
    for key in ("MACHINE", "PANIC"):
        assert ours[key].split()[0] == theirs[key].split()[0], (key, ours[key], theirs[key])
    assert ours["PANIC"].strip('"') == theirs["PANIC"].strip('"')
    assert ("[PARTIAL DUMP]" in ours["DUMPFILE"]) == ("[PARTIAL DUMP]" in theirs["DUMPFILE"]), (ours, theirs)
    assert Path(ours["DUMPFILE"].split()[0]).name == Path(theirs["DUMPFILE"].split()[0]).name
    assert abs(cc.memory_bytes(ours["MEMORY"]) - cc.memory_bytes(theirs["MEMORY"])) < 1 << 20


@pytest.mark.every_kernel
def test_ps_rows_match_crash(console: Console, answers: dict[str, str]) -> None:
    ours = {r.task: r for r in cc.ps_entries(console.ok("ps"))}
    theirs = {r.task: r for r in cc.ps_entries(answers["ps"])}
    assert set(ours) == set(theirs), (
        f"tasks only ours: {set(ours) - set(theirs)}, only crash's: {set(theirs) - set(ours)}"
    )
    differing = [(ours[t], theirs[t]) for t in theirs if ours[t] != theirs[t]]
    assert not differing, "ps rows differ (ours, crash):\n" + "\n".join(map(str, differing[:10]))
    assert any(r.active for r in ours.values()), "no '>' marker for the tasks on a CPU"


_PS_M_STATE = re.compile(
    r"^\[(?P<since>[^\]]*)\] \[(?P<st>[^\]]+)\]\s+PID:\s+\d+\s+TASK:\s+(?P<task>[0-9a-f]+)\s"
)


@pytest.mark.every_kernel
def test_ps_m_and_ps_S_states_match_crash(console: Console, answers: dict[str, str]) -> None:
    """Every form of ``ps`` that shows states names them by the table of docs/console.md; ``ps -m``
    lists every task crash lists (the idle tasks of CPUs arm64's crash IPI took offline too) with
    crash's time since it last ran (by its CPU's runqueue clock)."""

    def by_task(text: str) -> dict[int, tuple[str, str]]:
        rows = [m for m in map(_PS_M_STATE.match, text.splitlines()) if m]
        return {int(m["task"], 16): (m["since"].strip(), cc.state_letter(m["st"])) for m in rows}

    ours, theirs = by_task(console.ok("ps -m")), by_task(answers["ps-m"])
    assert ours and ours == theirs
    summary = dict(line.split(": ") for line in console.ok("ps -S").strip().splitlines())
    crash_counts = Counter(r.state for r in cc.ps_entries(answers["ps"]))
    assert {state.strip(): int(n) for state, n in summary.items()} == dict(crash_counts)


@pytest.mark.every_kernel
def test_log_and_log_T_match_crash(console: Console, sample: Any, answers: Any) -> None:
    # log -T dates too are crash's to the second: both count from sys's DATE minus its jiffies
    # UPTIME (drgn's own boot date, from the timekeeper, was two seconds off on an irq-oops sample
    # whose jiffies lagged the clock at the instant of the dump).
    dates_trusted = answers.trusts("log-T")
    for ours_cmd, name in (("log", "log"), ("log -T", "log-T")):
        ours, theirs = cc.log_records(console.ok(ours_cmd)), cc.log_records(answers[name])
        if name == "log-T" and not dates_trusted:
            # crash dates lines from its wrong UPTIME/DATE here: the messages are crash's, the last
            # line's date is the dump's own crash time (VMCOREINFO's CRASHTIME).
            assert [text for _, text in ours] == [text for _, text in theirs]
            last = cc.crash_date(ours[-1][0] or "")
            crashtime = int(dump_facts(sample).vmcoreinfo["CRASHTIME"])
            assert last is not None and abs(last - crashtime) <= 5, (ours[-1], crashtime)
            continue
        assert len(ours) == len(theirs), f"{ours_cmd}: {len(ours)} lines, crash {len(theirs)}"
        diff = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
        assert not diff, f"{ours_cmd} differs (ours, crash):\n" + "\n".join(map(str, diff[:5]))


@pytest.mark.every_kernel
def test_mod_rows_match_crash(console: Console, sample: Any, answers: Any) -> None:
    ours = cc.mod_records(console.ok("mod"))
    if answers.trusts("mod"):
        assert ours == cc.mod_records(answers["mod"])
        return
    # crash cannot list modules here (answers.missing says why): plain drgn's module list is the
    # oracle for which struct modules there are and their names.
    prog = open_sample_dump(sample).prog
    modules = list_for_each_entry("struct module", prog["modules"].address_of_(), "list")
    expected = sorted((mod.value_(), mod.name.string_().decode()) for mod in modules)
    assert sorted((address, name) for address, name, _, _ in ours) == expected


@pytest.mark.every_kernel
def test_kmem_i_figures_match_crash(console: Console, sample: Any, answers: Any) -> None:
    ours, theirs = cc.kmem_i_figures(console.ok("kmem -i")), cc.kmem_i_figures(answers["kmem-i"])
    if not answers.trusts("kmem-i", "swap"):
        # crash prints no swap lines here (answers.distrusted says why): the kernel's own count of
        # swap pages, read by plain drgn, is the oracle.
        assert ours["TOTAL SWAP"] == open_sample_dump(sample).prog["total_swap_pages"].value_()
        theirs["TOTAL SWAP"] = ours["TOTAL SWAP"]
    for label in ("TOTAL MEM", "FREE", "USED", "SLAB", "TOTAL SWAP"):
        assert ours.get(label) == theirs.get(label), (
            f"kmem -i {label}: ours {ours.get(label)}, crash {theirs.get(label)}"
        )


# -- stacks --------------------------------------------------------------------------------------


def _comparable(
    ours: list[Any], theirs: list[Any], answers: Any, name: str, site: str
) -> tuple[list[Any], list[Any]]:
    """The parts of two normalised stacks of the panic task crash's answer ``name`` can be held to on
    this kernel (the oracle table's rules, ``samples/crash_choice.py``): without panic()'s frame where
    crash drops it (8.0.6 on 6.12: ``panic-frame``), and only down to the crash site where crash's
    callers are distrusted (9.0.2 on 7.x: ``callers``; the frames down to the site are right)."""
    if not answers.trusts(name, "panic-frame") and "panic" not in [f.function for f in theirs]:
        ours = [f for f in ours if f.function != "panic"]
    if not answers.trusts(name, "callers"):
        ours = ours[: [f.function for f in ours].index(site) + 1]
        theirs = theirs[: [f.function for f in theirs].index(site) + 1]
    return ours, theirs


@pytest.mark.every_kernel
def test_bt_and_bt_l_match_crash(console: Console, sample: Any, answers: Any) -> None:
    site = _crash_site(sample)["symbol"].split("+")[0]
    if site == "no symbolic reference":
        # crash --no_modules (7.x) cannot name a fault in a module: the oracle is the guest's own
        # fault site (the manifest's), which drgn finds at crash's exception address (test_oracle).
        ours_site = cc.stack_of(console.ok("bt -l"))[0]
        expected = (sample.expected["function"], sample.expected["file"], sample.expected["line"])
        assert (ours_site.function, Path(ours_site.file or "").name, ours_site.line) == expected
        return
    # arm64: crash lists the oops path (die … el1h_64_sync) above the interrupted function, with no
    # register block; the stack starts after the vector (the row's exception entries, crash_choice).
    entries = frozenset(answers.meta["crash"]["site_rule"][0])

    def stack_of(text: str) -> list[Any]:
        return cc.stack_of(text, exception_entries=entries)

    ours, theirs = _comparable(stack_of(console.ok("bt")), stack_of(answers["bt"]), answers, "bt", site)
    assert_stacks_match(ours, theirs, check_lines=False)
    ours, theirs = _comparable(
        stack_of(console.ok("bt -l")), stack_of(answers["bt-l"]), answers, "bt-l", site
    )
    assert [f.function for f in ours] == [f.function for f in theirs], (ours, theirs)
    # The crash site's line is exact (the faulting instruction, or for a direct panic() the frame
    # below panic); other callers' lines are not compared: crash looks up the return address (often
    # the next statement, or an inlined helper's header), drgn the call (docs/console.md).
    ours_site = next(f for f in ours if f.function == site)
    theirs_site = next(f for f in theirs if f.function == site)
    expected = (Path(theirs_site.file or "").name, theirs_site.line)
    if not answers.trusts("bt-l", "module-lines") and ko_function(sample.debug_info, site):
        # crash's gdb may name another code section's line in a module here (6.12): the oracle is
        # binutils on the .ko at crash's function + offset (tests.helpers.crash_site).
        instruction = site_instruction(sample, answers)
        expected = (instruction.file, instruction.line)
    elif not answers.trusts("bt-l", "exception-line") and _crash_site(sample)["kind"] == "exception PC":
        # crash's arm64 bt -l looks the interrupted frame up at PC - 4: the oracle is the guest's
        # own fault line (the manifest's), which crash's dis -l at the PC shows (test_oracle).
        expected = (sample.expected["file"], sample.expected["line"])
    assert (Path(ours_site.file or "").name, ours_site.line) == expected


def test_bt_pid_is_the_bt_of_that_task(console: Console, sample: Any) -> None:
    pid = sample.expected["crashed_pid"]
    by_pid = console.ok(f"bt {pid}")
    assert parse_bt(by_pid)[0].pid == pid
    assert cc.stack_of(by_pid) == cc.stack_of(console.ok("bt"))


@pytest.mark.every_kernel
def test_bt_a_and_foreach_bt_match_crash(console: Console, sample: Any, answers: Any) -> None:
    """Every task's functions as crash's. Where the oracle table distrusts part of crash's back
    traces on this kernel: its callers (7.x) leave the tasks alone to compare (test_stack's
    every-stack test holds the Call Stacks to plain drgn's unwinding there); panic()'s frame, which
    crash 8.0.6 drops on 6.12, is not compared; neither are the architecture's stack roots where
    crash stops one frame early (arm64)."""
    roots = (arm64.ARCH if sample.arch == "arm64" else x86_64.ARCH).stack_roots
    entries = frozenset(answers.meta["crash"]["site_rule"][0])  # arm64's vectors (crash_choice)
    for ours_cmd, name in (("bt -a", "bt-a"), ("foreach bt", "foreach-bt")):
        ours = cc.bt_functions_by_pid(console.ok(ours_cmd), exception_entries=entries)
        theirs = cc.bt_functions_by_pid(answers[name], exception_entries=entries)
        assert set(ours) == set(theirs), f"{ours_cmd}: tasks differ: {set(ours) ^ set(theirs)}"
        if not answers.trusts(name, "callers"):
            continue
        for key, functions in ours.items():
            if not answers.trusts(name, "panic-frame") and "panic" not in theirs[key]:
                functions = [f for f in functions if f != "panic"]
            if not answers.trusts(name, "outermost"):
                while functions and functions[-1] in roots:
                    functions = functions[:-1]
            ours[key] = functions
        differing = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
        assert not differing, (
            f"{ours_cmd}: function lists differ (ours, crash): {list(differing.items())[:3]}"
        )


def test_bt_follows_the_selected_frame(console: Console, sample: Any) -> None:
    threads = console.client.call("threads")["threads"]
    other = next(t for t in threads if t["id"] != console.thread_id)
    frames = console.client.call("stackTrace", {"threadId": other["id"]})["stackFrames"]
    text = console.ok("bt", frame_id=frames[0]["id"])
    header = parse_bt(text)[0]
    assert header.pid != sample.expected["crashed_pid"] or header.task != parse_bt(console.ok("bt"))[0].task
    assert str(header.pid) in other["name"] or header.comm in other["name"], (other, text[:200])


# -- dis, struct, rd -------------------------------------------------------------------------------


def _same_source(a: tuple[Any, ...], b: tuple[Any, ...], oracle: tuple[str, int] | None = None) -> bool:
    """Whether the ``dis_records`` ``a`` (ours) and ``b`` (crash's) name the same file and line; with
    ``oracle`` (file name, line), ``a`` is held to that instead of to ``b``."""
    (_, _, fa, la), (_, _, fb, lb) = a, b
    if oracle is not None:
        return fa is not None and (Path(fa).name, la) == oracle
    if fa is None or fb is None:
        return fa == fb
    pa, pb = fa.split("/"), fb.split("/")
    n = min(len(pa), len(pb))
    return pa[-n:] == pb[-n:] and la == lb


@pytest.mark.every_kernel
def test_dis_l_matches_crash(console: Console, sample: Any, answers: Any) -> None:
    """``dis -l <pc>``, ``dis -rl <pc>`` and ``dis -l <function>`` at the crash site as crash's:
    every instruction crash lists, by mnemonic, and the source lines of the faulting instruction and
    of the function's first. Where the oracle table distrusts crash's lines of module code (6.12),
    those two lines are binutils' on the .ko, and where it distrusts crash's extent of a module
    function, the function's size in the .ko bounds ours; where crash names no symbol at the site
    (7.x), :func:`_assert_dis_l_matches_the_guest` has the oracle."""
    if "dis-l" not in answers:
        _assert_dis_l_matches_the_guest(console, sample, answers)
        return
    rip = _crash_site(sample)["address"]
    for name in ("dis-l", "dis-rl", "dis-func"):
        ours_cmd = _oracle_command(sample, name)
        ours, theirs = cc.dis_records(console.ok(ours_cmd)), cc.dis_records(answers[name])
        assert theirs, f"crash printed no instruction for {name}"
        by_addr = {r[0]: r for r in ours}
        missing = [r for r in theirs if r[0] not in by_addr]
        assert not missing, f"{ours_cmd}: crash's instructions missing from ours: {missing[:5]}"
        # Mnemonics everywhere; source lines at the faulting instruction and the function's first.
        # Elsewhere gdb attributes an instruction to the line of the statement it belongs to (is_stmt
        # rows), drgn to the innermost row of the table: they legitimately differ (docs/console.md).
        first = parse_dis(answers[name])[0]
        function = ko_function(sample.debug_info, first.symbol)
        base = first.address - first.offset
        checked_lines = {int(rip, 16): None, theirs[0][0]: None}
        if function is not None and not answers.trusts(name, "module-lines"):
            checked_lines = {
                address: ko_line(function.ko, function.section, function.offset + address - base)
                for address in checked_lines
            }
        wrong = [
            (by_addr[r[0]], r)
            for r in theirs
            if by_addr[r[0]][1] != r[1]
            or (r[0] in checked_lines and not _same_source(by_addr[r[0]], r, checked_lines[r[0]]))
        ]
        assert not wrong, f"{ours_cmd}: differs (ours, crash): {wrong[:5]}"
        extra = [r for r in ours if r[0] not in {t[0] for t in theirs}]
        if name == "dis-func" and function is not None and not answers.trusts(name, "module-extent"):
            # crash stops early (the table says why): the function's extent in the .ko is the oracle.
            assert {r[0] for r in ours} >= {r[0] for r in theirs}
            assert all(base <= r[0] < base + function.size for r in ours), (function, ours[-3:])
            assert ours[-1][0] - base + 15 >= function.size, (function, ours[-3:])
            continue
        # Only the function's .cold part (ours) may add instructions.
        assert all(".cold" in (console.ok(f"dis {r[0]:#x}").split("<")[1]) for r in extra[:3]), extra[:3]


def _assert_dis_l_matches_the_guest(console: Console, sample: Any, answers: Any) -> None:
    """The ``dis`` listings at a crash site crash names no symbol for (``--no_modules`` on 7.x), by
    the guest's own oops and binutils on the .ko (tests.helpers.crash_site): the instruction at crash's
    exception address is the guest's ``function+offset`` with objdump's mnemonic and addr2line's
    line; ``dis -rl`` runs from the function's start (address - offset) to it and ``dis -l
    <function>`` over the function's size as the guest's oops line gives it (``/0x220``), from the
    line addr2line gives its first instruction."""
    site = site_instruction(sample, answers)
    name, offset, size = guest_rip(sample)
    start = site.address - offset
    function = ko_function(sample.debug_info, name)
    assert function is not None and function.size == size, (function, size)
    (ours,) = parse_dis(console.ok(f"dis -l {site.address:#x}"))
    assert (ours.address, ours.symbol, ours.offset) == (site.address, site.function, site.offset), ours
    assert cc.canonical_mnemonic(ours.mnemonic) == cc.canonical_mnemonic(site.mnemonic), (ours, site)
    assert (Path(ours.file or "").name, ours.line) == (site.file, site.line), (ours, site)
    first_line = ko_line(function.ko, function.section, function.offset)
    for command, end in ((f"dis -rl {site.address:#x}", site.address + 1), (f"dis -l {name}", start + size)):
        listing = parse_dis(console.ok(command))
        assert (
            listing[0].address == start and (Path(listing[0].file or "").name, listing[0].line) == first_line
        )
        assert all(start <= i.address < end and i.symbol == name for i in listing), (command, listing[-3:])
        assert listing[-1].address + 15 >= end - 1, (command, listing[-1], end)
        steps = [b.address - a.address for a, b in zip(listing, listing[1:], strict=False)]
        assert all(0 < step <= 15 for step in steps), (command, steps)
    assert parse_dis(console.ok(f"dis -rl {site.address:#x}"))[-1].address == site.address


@pytest.mark.every_kernel
def test_struct_o_matches_crash(console: Console, sample: Any, answers: dict[str, str]) -> None:
    """``struct -o`` of the sample module's struct as crash's; where crash cannot load the module's
    types (``--no_modules`` on 7.x: answers.missing says why), as gdb's ``ptype /o`` on the .ko,
    which crash's own ``struct -o`` is made from."""
    struct = _facts(sample).get("module_struct") or "list_head"
    ours = cc.struct_offsets(console.ok(f"struct -o {struct}"))
    if "struct-o" in answers:
        assert ours == cc.struct_offsets(answers["struct-o"])
    elif struct != "list_head":  # the module's struct, which crash was not asked about
        assert ours == _gdb_struct_offsets(sample, struct)
    else:  # sysrq-c has no module struct in the oracle: a kernel type with a known layout
        assert ours == [(0, "next"), (8, "prev")]
    assert re.search(r"^SIZE: \d+$", console.ok(f"struct -o {struct}"), re.MULTILINE)


#: A member line of gdb's ``ptype /o``: ``/*      8      |       4 */    unsigned int magic;``.
_PTYPE_O_MEMBER = re.compile(r"^/\*\s+(?P<off>\d+)(?::\s*\d+)?\s+\|\s+\d+ \*/(?P<indent>\s+)(?P<decl>.*;)$")


def _gdb_struct_offsets(sample: Any, struct: str) -> list[tuple[int, str]]:
    """(offset, member name) of ``struct`` by plain gdb's ``ptype /o`` on the sample's module
    (its outermost members, as crash's ``struct -o`` lists them)."""
    (ko,) = [p for p in sample.debug_info if Path(p).name == f"{sample.expected['module']}.ko"]
    text = subprocess.run(
        ["gdb", "-batch", "-nx", "-ex", f"ptype /o struct {struct}", str(ko)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    members = [m for m in map(_PTYPE_O_MEMBER.match, text.splitlines()) if m]
    assert members, f"gdb's ptype /o struct {struct} on {ko} lists no member:\n{text}"
    outermost = min(len(m["indent"]) for m in members)
    rows = [f"  [{m['off']}] {m['decl']}" for m in members if len(m["indent"]) == outermost]
    return cc.struct_offsets("\n".join(rows))


def test_struct_with_address_prints_members(console: Console) -> None:
    text = console.ok("struct task_struct.pid,comm init_task")
    assert "pid = (pid_t)0" in text and '"swapper/0"' in text, text


@pytest.mark.every_kernel
def test_rd_words_match_crash(console: Console, sample: Any, answers: dict[str, str]) -> None:
    assert cc.rd_words(console.ok(_oracle_command(sample, "rd"))) == cc.rd_words(answers["rd"])


# -- pipes, errors, help, Python -------------------------------------------------------------------


def test_pipes_and_redirections(console: Console, sample: Any, tmp_path: Path) -> None:
    comm = sample.expected["crashed_comm"]
    rows = cc.ps_entries(console.ok(f"ps | grep {comm}"))
    assert rows and all(comm in r.comm for r in rows)
    assert len(console.ok("log | tail -20").splitlines()) == 20
    target = tmp_path / "bt.txt"
    printed = console.ok(f"foreach bt > {target}")
    assert printed.strip() == ""
    assert len(split_tasks(target.read_text())) >= sample.expected["min_tasks"] // 2


@pytest.mark.parametrize(
    "line, words",
    [
        ("bt -Z", ["unrecognized arguments", "-Z"]),
        ("dis no_such_function_xyz", ["no_such_function_xyz"]),
        ("rd 0x10 4", ["0x10"]),
        ("struct -o no_such_struct_xyz", ["no_such_struct_xyz"]),
        ("sturct -o list_head", ["command not found", "struct"]),
    ],
)
def test_bad_input_is_one_line_and_the_session_continues(
    console: Console, line: str, words: list[str]
) -> None:
    text, response = console.run(line)
    assert not response["success"], f"{line!r} succeeded: {text}"
    message = response["message"]
    assert "\n" not in message and "Traceback" not in message and "Internal" not in message, message
    for word in words:
        assert word in message, f"{line!r}: {message!r} lacks {word!r}"
    assert "RELEASE" in console.ok("sys")


def test_help_lists_commands_including_ours(console: Console) -> None:
    text = console.ok("help")
    for name in ("bt", "ps", "sys", "log", "dis", "struct", "rd", "mod", "kmem", "foreach"):
        assert re.search(rf"\b{name}\b", text), name
    assert "-o" in console.ok("help struct")


def test_py_prefix_and_plain_python_go_to_drgn(console: Console, sample: Any) -> None:
    _, response = console.run("%py prog['init_task'].pid.value_()")
    assert response["success"] and response["body"]["result"].strip() == "0", response
    _, response = console.run("1 + 2")
    assert response["success"] and response["body"]["result"].strip() == "3", response


def test_source_lines_are_linked(console: Console) -> None:
    start = len(console.client.events)
    console.ok("bt -l")
    linked = [
        e["body"] for e in console.client.events[start:] if e["event"] == "output" and "line" in e["body"]
    ]
    assert linked and all(b["source"]["name"] and b["line"] > 0 for b in linked)


def test_long_output_can_be_cancelled(console: Console) -> None:
    seq = console.client.send_request("evaluate", {"expression": "foreach bt", "context": "repl"})
    console.client.send_request("cancel", {"requestId": seq})
    response = console.client.wait_response(seq, timeout=120)
    assert not response["success"] and "cancel" in response["message"], response.get("message")
    assert "RELEASE" in console.ok("sys")


def test_other_requests_are_answered_while_a_long_command_runs(console: Console) -> None:
    client = console.client
    long_seq = client.send_request("evaluate", {"expression": "foreach bt", "context": "repl"})
    stack_seq = client.send_request("stackTrace", {"threadId": console.thread_id, "levels": 5})
    hover_seq = client.send_request(
        "evaluate", {"expression": "jiffies", "context": "hover", "frameId": console.frame_id}
    )
    assert client.wait_response(long_seq, timeout=120)["success"]
    assert client.wait_response(stack_seq)["success"]
    assert client.wait_response(hover_seq)["success"]
    order = client.response_order
    assert order.index(stack_seq) < order.index(long_seq), "stackTrace waited for foreach bt"
    assert order.index(hover_seq) < order.index(long_seq), "hover waited for foreach bt"


@pytest.mark.every_kernel
def test_panic_log_is_printed_at_the_stop(console: Console, sample: Any) -> None:
    printed = "".join(
        e["body"]["output"] for e in console.client.events[console.stop_events :] if e["event"] == "output"
    )
    assert sample.expected["oops_line"].split(",")[0] in printed, printed[-2000:]


# -- completions --------------------------------------------------------------------------------


def _labels(console: Console, text: str, column: int | None = None) -> list[str]:
    body = console.client.call(
        "completions",
        {"text": text, "column": (len(text) if column is None else column) + 1, "frameId": console.frame_id},
    )
    return [t["label"] for t in body["targets"]]


def test_completions(console: Console) -> None:
    assert "struct" in _labels(console, "stru")
    assert "dis" in _labels(console, "di")
    assert "-l" in _labels(console, "bt -")
    assert "-o" in _labels(console, "struct -")
    assert "comm" in _labels(console, "init_task.co")
    assert {"next", "prev"} <= set(_labels(console, "init_task.tasks.next->"))
    assert "comm" in _labels(console, "struct task_struct.co")
    assert "schedule" in _labels(console, "dis sched")
