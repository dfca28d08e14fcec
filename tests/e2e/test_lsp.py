"""The language server (``python -m vmcore_dap.lsp``) over stdio, driven by pytest-lsp, on real dumps.

Expected answers come from crash on the same dump: ``p <symbol>`` for hover values, ``struct -o``
for layouts, ``foreach bt`` (with ``ps`` for states) for the code-lens counts; the faulting line
from the sample's manifest. The kernel source tree is Debian's linux-source of the sample kernel
(fetched by ``samples/kernel_source.py``) and Universal Ctags is installed when missing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from tests.conftest import REPO_ROOT, get_crash_answers, get_sample, kernel_sample_keys, sample_id
from tests.helpers import crash_batch
from tests.helpers.crash_compare import state_letter, struct_offsets
from tests.helpers.crash_parse import parse_bt, parse_ps
from tests.helpers.stack_normalize import base_function_name, normalize_crash_task

pytestmark = pytest.mark.asyncio(loop_scope="module")


# -- setup: tools, sources, crash ---------------------------------------------------------------


def _ensure_universal_ctags() -> None:
    """Install Debian's universal-ctags when no Universal Ctags is on PATH (idempotent)."""
    path = shutil.which("ctags")
    if path is not None:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
        if "Universal Ctags" in out:
            return
    proc = subprocess.run(
        ["apt-get", "install", "-y", "universal-ctags"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert proc.returncode == 0, (
        f"cannot install universal-ctags (needs root and apt):\n{proc.stderr[-2000:]}"
    )


def _launch_config(sample: Any) -> dict[str, Any]:
    from samples.kernel_source import debian_version_of_vmlinux, ensure_kernel_source
    from samples.sample_store import launch_configuration

    source = ensure_kernel_source(debian_version_of_vmlinux(Path(sample.vmlinux)))
    config: dict[str, Any] = launch_configuration(sample, source)["configurations"][0]
    return config


def run_crash(sample: Any, commands: list[str]) -> list[str]:
    """crash's output for each of ``commands`` on ``sample`` (one batch run, cached)."""
    return crash_batch.run_crash(sample, commands)[: len(commands)]


# -- the client ----------------------------------------------------------------------------------


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "adapter"), env.get("PYTHONPATH", "")])
    return env


_SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "vmcore_dap.lsp"], server_env=_server_env()
)


async def _start(client: LanguageClient, sample: Any) -> None:
    _ensure_universal_ctags()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options=_launch_config(sample),
        )
    )


@pytest_lsp.fixture(scope="module", config=_SERVER)
async def oops(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    """A server configured with the oops-null sample."""
    await _start(lsp_client, get_sample("oops-null"))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(scope="module", config=_SERVER)
async def sysrq(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    """A server configured with the sysrq-c sample."""
    await _start(lsp_client, get_sample("sysrq-c"))
    yield
    await lsp_client.shutdown_session()


#: sysrq-c of every other kernel of this run: a kernel's globals, types and functions do not depend
#: on the scenario, so ``make test-matrix``'s oops-null adds nothing here. The hover test asks crash
#: a batch of its own (``extra_crash_run``: arm64's joins in ``make test-matrix`` only).
_OTHER_KERNELS = {
    sample_id(key): key for key in kernel_sample_keys(extra_crash_run=True) if key[0] == "sysrq-c"
}


@pytest_lsp.fixture(scope="module", params=list(_OTHER_KERNELS), config=_SERVER)
async def other_kernel(lsp_client: LanguageClient, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A server configured with the sysrq-c sample of another kernel (``.sample`` on the client)."""
    sample = get_sample(*_OTHER_KERNELS[request.param])
    lsp_client.sample = sample  # type: ignore[attr-defined]
    await _start(lsp_client, sample)
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, path: Path) -> tuple[str, list[str]]:
    text = path.read_text(errors="replace")
    uri = path.resolve().as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="c", version=1, text=text)
        )
    )
    return uri, text.splitlines()


def _position(lines: list[str], pattern: str, word: str) -> types.Position:
    """The position of ``word`` on the first line matching regex ``pattern``."""
    for number, line in enumerate(lines):
        if re.search(pattern, line):
            return types.Position(number, line.index(word) + 1)
    raise AssertionError(f"no line matches {pattern!r}")


def _line_of(lines: list[str], pattern: str) -> int:
    """The 0-based number of the first line matching regex ``pattern``."""
    return next(n for n, line in enumerate(lines) if re.search(pattern, line))


async def _hover(client: LanguageClient, uri: str, position: types.Position) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), position)
    )
    assert result is not None, f"no hover at {position}"
    assert isinstance(result.contents, types.MarkupContent)
    return result.contents.value


def _code_block(markdown: str) -> str:
    match = re.search(r"```c\n(.*?)\n```", markdown, re.S)
    assert match, f"no C code block in the hover:\n{markdown}"
    return match.group(1)


async def _diagnostics(client: LanguageClient, uri: str, timeout: float = 120) -> list[types.Diagnostic]:
    async def wait() -> list[types.Diagnostic]:
        while uri not in client.diagnostics:
            await asyncio.sleep(0.1)
        return client.diagnostics[uri]

    return await asyncio.wait_for(wait(), timeout)


def _kernel_source(sample: Any) -> Path:
    return Path(_launch_config(sample)["sourceRoot"])


def _module_source(sample: Any) -> Path:
    return Path(sample.module_source_dir) / "labbug.c"


# -- hover ---------------------------------------------------------------------------------------


def _crash_scalar(text: str, name: str) -> str:
    """``name = $1 = 1`` or ``name = $3 = (struct x *) 0xffff…`` (crash's batch form) → the value."""
    match = re.match(rf"^(?:{re.escape(name)} = )?(?:\$\d+ = )?(?:\([^)]*\) )?(.+)$", text.strip())
    assert match, f"unexpected crash output for p {name}:\n{text}"
    return match.group(1).strip()


def _crash_members(text: str) -> dict[str, str]:
    """Top-level ``member = value`` lines of crash's ``p`` of a struct."""
    return {
        m["name"]: m["value"].rstrip(",")
        for m in re.finditer(r"^  (?P<name>\w+) = (?P<value>[^{\n]+)$", text, re.M)
    }


def _hover_members(block: str) -> dict[str, str]:
    return {
        m["name"]: m["value"].rstrip(",")
        for m in re.finditer(r"^  \.(?P<name>\w+) = (?P<value>.+?),?$", block, re.M)
    }


@pytest.mark.timeout(1200)
async def test_hover_values_equal_crash_p(oops: LanguageClient) -> None:
    sample = get_sample("oops-null")
    crash = dict(
        zip(
            ["panic_on_oops", "panic_cpu", "labbug_dev", "*labbug_dev"],
            run_crash(sample, ["p panic_on_oops", "p panic_cpu", "p labbug_dev", "p *labbug_dev"]),
            strict=True,
        )
    )
    panic_uri, panic_lines = _open(oops, _kernel_source(sample) / "kernel" / "panic.c")
    module_uri, module_lines = _open(oops, _module_source(sample))

    # A scalar global of the kernel.
    block = _code_block(
        await _hover(oops, panic_uri, _position(panic_lines, r"^int panic_on_oops", "panic_on_oops"))
    )
    assert block == f"panic_on_oops = {_crash_scalar(crash['panic_on_oops'], 'panic_on_oops')}"

    # A struct global of the kernel, summarised by member.
    hover = await _hover(oops, panic_uri, _position(panic_lines, r"^atomic_t panic_cpu", "panic_cpu"))
    assert _hover_members(_code_block(hover)) == _crash_members(crash["panic_cpu"]), hover

    # A module global: a pointer, with the struct it points to.
    hover = await _hover(
        oops,
        module_uri,
        _position(module_lines, r"^static struct labbug_device \*labbug_dev;", "labbug_dev;"),
    )
    block = _code_block(hover)
    pointer = int(_crash_scalar(crash["labbug_dev"], "labbug_dev"), 16)
    assert block.splitlines()[0] == f"labbug_dev = {pointer:#x}", hover
    ours = _hover_members(block)
    theirs = _crash_members(crash["*labbug_dev"])
    assert set(ours) == set(theirs) == {"name", "magic", "writes", "head"}
    assert int(ours["magic"]) == int(theirs["magic"]) and int(ours["writes"]) == int(theirs["writes"])
    assert int(ours["head"], 16) == int(theirs["head"], 16) == 0
    assert ours["name"].split()[0] == theirs["name"].split()[0] and '"labbug0"' in ours["name"]
    assert "command:vmcore-dap.watchExpression" in hover


@pytest.mark.timeout(1200)
async def test_hover_of_a_per_cpu_variable_shows_every_cpu_as_crash_p_a(oops: LanguageClient) -> None:
    sample = get_sample("oops-null")
    crash = run_crash(sample, ["p cpu_number:a"])[0]
    expected = [
        (int(cpu), value.strip())
        for cpu, value in re.findall(r"^per_cpu\(cpu_number, (\d+)\) = \$\d+ = (.+)$", crash, re.M)
    ]
    assert len(expected) >= 2, crash
    uri, lines = _open(oops, _kernel_source(sample) / "arch" / "x86" / "kernel" / "setup_percpu.c")
    hover = await _hover(
        oops, uri, _position(lines, r"^DEFINE_PER_CPU_READ_MOSTLY\(int, cpu_number\);", "cpu_number")
    )
    shown = [
        (int(m[1]), m[2])
        for m in re.finditer(r"^per_cpu\(cpu_number, (\d+)\) = (.+)$", _code_block(hover), re.M)
    ]
    assert shown == expected, hover


@pytest.mark.timeout(600)
async def test_hover_layouts_equal_crash_struct_o(oops: LanguageClient) -> None:
    sample = get_sample("oops-null")
    answers = get_crash_answers("oops-null")
    (mutex_o,) = run_crash(sample, ["struct -o mutex"])
    module_uri, module_lines = _open(oops, _module_source(sample))
    hover = await _hover(
        oops, module_uri, _position(module_lines, r"^struct labbug_device \{", "labbug_device")
    )
    block = _code_block(hover)
    assert struct_offsets(block) == struct_offsets(answers["struct-o"]) != []
    assert re.search(r"^SIZE: (\d+)$", block, re.M)[1] == re.search(r"SIZE: (\d+)", answers["struct-o"])[1]  # type: ignore[index]

    header_uri, header_lines = _open(oops, _kernel_source(sample) / "include" / "linux" / "mutex.h")
    hover = await _hover(oops, header_uri, _position(header_lines, r"^struct mutex \{", "mutex"))
    assert struct_offsets(_code_block(hover)) == struct_offsets(mutex_o) != []


@pytest.mark.timeout(300)
async def test_hover_function_counts_tasks(oops: LanguageClient) -> None:
    sample = get_sample("oops-null")
    module_uri, module_lines = _open(oops, _module_source(sample))
    hover = await _hover(
        oops, module_uri, _position(module_lines, r"^static ssize_t labbug_wait_write", "labbug_wait_write")
    )
    # The tasks crash's foreach bt has in labbug_wait_write (the scenario's waiters), by crash's state.
    title = _title(_crash_tasks_by_function("oops-null")["labbug_wait_write"])
    total, parts = re.fullmatch(r"(\d+) tasks? here \((.*)\)", title).groups()  # type: ignore[union-attr]
    assert f"On the stack of **{total}** tasks ({parts})" in hover, hover
    assert "(module labbug)" in hover


# -- code lens -----------------------------------------------------------------------------------


def _crash_tasks_by_function(scenario: str) -> dict[str, Counter[str]]:
    """crash's ``foreach bt`` grouped by function: {function: Counter(state)} (states from ``ps``)."""
    answers = get_crash_answers(scenario)
    states = {row.task: state_letter(row.state) for row in parse_ps(answers["ps"])}
    out: dict[str, Counter[str]] = {}
    for task in parse_bt(answers["foreach-bt"]):
        for function in {frame.function for frame in normalize_crash_task(task)}:
            out.setdefault(function, Counter())[states[task.task]] += 1
    return out


async def _lenses(client: LanguageClient, uri: str) -> dict[str, str]:
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(types.TextDocumentIdentifier(uri))
    )
    assert lenses is not None
    out = {}
    for lens in lenses:
        assert lens.command is not None and lens.command.command == "vmcore-dap.showTasksInFunction"
        assert lens.command.arguments and isinstance(lens.command.arguments[0], str)
        out[lens.command.arguments[0]] = lens.command.title
    return out


def _title(counts: Counter[str]) -> str:
    total = sum(counts.values())
    order = "DRSTtXZPI"
    parts = ", ".join(f"{s}: {counts[s]}" for s in sorted(counts, key=lambda s: (order.find(s) % 99, s)))
    return f"{total} task{'s' if total != 1 else ''} here ({parts})"


@pytest.mark.timeout(600)
async def test_code_lens_counts_equal_crash_foreach_bt(oops: LanguageClient) -> None:
    sample = get_sample("oops-null")
    crash = _crash_tasks_by_function("oops-null")
    module_uri, _ = _open(oops, _module_source(sample))
    lenses = await _lenses(oops, module_uri)
    expected = {f: _title(c) for f, c in crash.items() if f.startswith("labbug_")}
    assert {"labbug_walk", "labbug_wait_write", "labbug_hold_write"} <= set(expected)
    assert lenses == expected

    # A kernel file: every function crash also names must have crash's count (inlined functions,
    # which crash cannot see, are the server's extra and are not compared).
    core_uri, _ = _open(oops, _kernel_source(sample) / "kernel" / "sched" / "core.c")
    lenses = await _lenses(oops, core_uri)
    compared = {f: t for f, t in lenses.items() if base_function_name(f) in crash}
    assert {"__schedule", "schedule"} <= set(compared)
    assert compared == {f: _title(crash[base_function_name(f)]) for f in compared}


# -- diagnostics ---------------------------------------------------------------------------------


@pytest.mark.timeout(600)
async def test_fault_and_blocked_diagnostics_oops(oops: LanguageClient) -> None:
    sample = get_sample("oops-null")
    expected = sample.expected
    uri, lines = _open(oops, _module_source(sample))
    found = await _diagnostics(oops, uri)
    errors = [d for d in found if d.severity == types.DiagnosticSeverity.Error]
    assert [d.range.start.line for d in errors] == [expected["line"] - 1]
    assert expected["oops_line"] in errors[0].message and expected["panic"] in errors[0].message
    infos = [d for d in found if d.severity == types.DiagnosticSeverity.Information]
    waiters = expected["d_state_pids"]
    blocked = [d for d in infos if d.message.startswith(f"{len(waiters)} tasks blocked here")]
    assert blocked, [d.message for d in infos]
    assert any("mutex_lock(&labbug_mutex)" in lines[d.range.start.line] for d in blocked)
    for pid in waiters:
        assert re.search(rf"\b{pid} labwait\b", blocked[0].message)


@pytest.mark.timeout(600)
async def test_fault_diagnostic_sysrq(sysrq: LanguageClient) -> None:
    sample = get_sample("sysrq-c")
    expected = sample.expected
    path = _kernel_source(sample) / "drivers" / "tty" / "sysrq.c"
    assert path.name == expected["file"]
    uri, _lines = _open(sysrq, path)
    errors = [d for d in await _diagnostics(sysrq, uri) if d.severity == types.DiagnosticSeverity.Error]
    assert [d.range.start.line for d in errors] == [expected["line"] - 1]
    assert expected["panic"] in errors[0].message


# -- definitions and symbols ---------------------------------------------------------------------


async def _definition(
    client: LanguageClient, uri: str, position: types.Position, timeout: float
) -> list[types.Location]:
    """Ask until an answer comes (types and globals wait for the first ctags index of the tree)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await client.text_document_definition_async(
            types.DefinitionParams(types.TextDocumentIdentifier(uri), position)
        )
        if result:
            assert isinstance(result, list)
            return [r for r in result if isinstance(r, types.Location)]
        assert asyncio.get_running_loop().time() < deadline, f"no definition at {position} within {timeout}s"
        await asyncio.sleep(2)


@pytest.mark.timeout(900)
async def test_definitions(oops: LanguageClient) -> None:
    sample = get_sample("oops-null")
    path = _module_source(sample)
    uri, lines = _open(oops, path)
    walk_line = _line_of(lines, r"^static noinline int labbug_walk\(")
    # A module function, through the line table: lands on the line with its name.
    found = await _definition(oops, uri, _position(lines, r"int ret = labbug_walk\(", "labbug_walk"), 60)
    assert [(Path(loc.uri.removeprefix("file://")).resolve(), loc.range.start.line) for loc in found] == [
        (path.resolve(), walk_line)
    ]
    # A module struct and a module global defined by a macro, through the ctags index.
    found = await _definition(oops, uri, _position(lines, r"sizeof\(\*labbug_dev\)", "labbug_dev"), 120)
    assert (path.resolve(), _line_of(lines, r"^static struct labbug_device \*labbug_dev;")) in {
        (Path(loc.uri.removeprefix("file://")).resolve(), loc.range.start.line) for loc in found
    }
    found = await _definition(
        oops, uri, _position(lines, r"mutex_lock\(&labbug_mutex\)", "labbug_mutex"), 120
    )
    assert [loc.range.start.line for loc in found] == [
        _line_of(lines, r"^static DEFINE_MUTEX\(labbug_mutex\)")
    ]
    found = await _definition(
        oops, uri, _position(lines, r"^static struct labbug_device \*labbug_dev;", "labbug_device"), 120
    )
    assert [loc.range.start.line for loc in found] == [_line_of(lines, r"^struct labbug_device \{")]
    # A kernel global, from the kernel tree's index (built on first use, then cached).
    kernel = _kernel_source(sample)
    panic_uri, panic_lines = _open(oops, kernel / "kernel" / "panic.c")
    found = await _definition(
        oops, panic_uri, _position(panic_lines, r"atomic_cmpxchg\(&panic_cpu", "panic_cpu"), 600
    )
    assert [(Path(loc.uri.removeprefix("file://")).resolve(), loc.range.start.line) for loc in found] == [
        ((kernel / "kernel" / "panic.c").resolve(), _line_of(panic_lines, r"^atomic_t panic_cpu"))
    ]


@pytest.mark.timeout(300)
async def test_workspace_symbols(oops: LanguageClient) -> None:
    sample = get_sample("oops-null")
    result = await oops.workspace_symbol_async(types.WorkspaceSymbolParams(query="labbug_w"))
    assert result is not None
    by_name = {s.name: s for s in result}
    assert {"labbug_walk", "labbug_wait_write"} <= set(by_name)
    walk = by_name["labbug_walk"]
    assert walk.kind == types.SymbolKind.Function and walk.container_name == "labbug"
    lines = _module_source(sample).read_text().splitlines()
    assert isinstance(walk.location, types.Location)
    assert walk.location.range.start.line == _line_of(lines, r"^static noinline int labbug_walk\(")
    kernel = await oops.workspace_symbol_async(types.WorkspaceSymbolParams(query="panic_on_oops"))
    assert kernel and kernel[0].name == "panic_on_oops" and kernel[0].container_name == "kernel"


#: Kernel globals defined through macros or by the linker script: (name, file using it, regex of a
#: line there that uses it, file defining it, regex of the defining line). The expected line is read
#: from the source with these regexes, never from the server's index.
_MACRO_DEFINED_GLOBALS = [
    (
        "sched_smt_present",
        "kernel/sched/core.c",
        r"static_branch_inc_cpuslocked\(&sched_smt_present\)",
        "kernel/sched/fair.c",
        r"^DEFINE_STATIC_KEY_FALSE\(sched_smt_present\);",
    ),
    (
        "vm_numa_stat_key",
        "mm/page_alloc.c",
        r"^DEFINE_STATIC_KEY_TRUE\(vm_numa_stat_key\)",
        "mm/page_alloc.c",
        r"^DEFINE_STATIC_KEY_TRUE\(vm_numa_stat_key\);",
    ),
    (
        "init_on_alloc",
        "mm/page_alloc.c",
        r"^DEFINE_STATIC_KEY_MAYBE\(CONFIG_INIT_ON_ALLOC_DEFAULT_ON, init_on_alloc\)",
        "mm/page_alloc.c",
        r"^DEFINE_STATIC_KEY_MAYBE\(CONFIG_INIT_ON_ALLOC_DEFAULT_ON, init_on_alloc\);",
    ),
    (
        "tasklist_lock",
        "kernel/exit.c",
        r"write_lock_irq\(&tasklist_lock\)",
        "kernel/fork.c",
        r"^__cacheline_aligned DEFINE_RWLOCK\(tasklist_lock\);",
    ),
    (
        "jiffies_lock",
        "kernel/time/jiffies.c",
        r"^__cacheline_aligned_in_smp DEFINE_RAW_SPINLOCK\(jiffies_lock\)",
        "kernel/time/jiffies.c",
        r"^__cacheline_aligned_in_smp DEFINE_RAW_SPINLOCK\(jiffies_lock\);",
    ),
    (
        "pidmap_lock",
        "kernel/pid.c",
        r"^static\s+__cacheline_aligned_in_smp DEFINE_SPINLOCK\(pidmap_lock\)",
        "kernel/pid.c",
        r"^static\s+__cacheline_aligned_in_smp DEFINE_SPINLOCK\(pidmap_lock\);",
    ),
    (
        "cpu_tlbstate",
        "arch/x86/mm/tlb.c",
        r"this_cpu_read\(cpu_tlbstate\.loaded_mm_asid\)",
        "arch/x86/mm/init.c",
        r"^__visible DEFINE_PER_CPU_ALIGNED\(struct tlb_state, cpu_tlbstate\)",
    ),
    (
        "system_vectors",
        "arch/x86/kernel/traps.c",
        r"^DECLARE_BITMAP\(system_vectors, NR_VECTORS\);",
        "arch/x86/kernel/traps.c",
        r"^DECLARE_BITMAP\(system_vectors, NR_VECTORS\);",
    ),
    (
        "__per_cpu_start",
        "arch/x86/kernel/setup_percpu.c",
        r"\(unsigned long\)__per_cpu_start;",
        "include/asm-generic/vmlinux.lds.h",
        r"^\s*__per_cpu_start = \.;",
    ),
    (
        "_stext",
        "arch/x86/kernel/vmlinux.lds.S",
        r"^\s*_stext = \.;",
        "arch/x86/kernel/vmlinux.lds.S",
        r"^\s*_stext = \.;",
    ),
    (
        "__bss_stop",
        "arch/x86/kernel/vmlinux.lds.S",
        r"^\s*__bss_stop = \.;",
        "arch/x86/kernel/vmlinux.lds.S",
        r"^\s*__bss_stop = \.;",
    ),
]


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("name", "user", "use", "definer", "definition"),
    _MACRO_DEFINED_GLOBALS,
    ids=[case[0] for case in _MACRO_DEFINED_GLOBALS],
)
async def test_definitions_of_macro_and_linker_defined_globals(
    oops: LanguageClient, name: str, user: str, use: str, definer: str, definition: str
) -> None:
    """Globals a kernel macro or the linker script defines land on exactly that one line."""
    sample = get_sample("oops-null")
    kernel = _kernel_source(sample)
    defining_lines = (kernel / definer).read_text(errors="replace").splitlines()
    expected = _line_of(defining_lines, definition)
    uri, lines = _open(oops, kernel / user)
    found = await _definition(oops, uri, _position(lines, use, name), 600)
    assert [(Path(loc.uri.removeprefix("file://")).resolve(), loc.range.start.line) for loc in found] == [
        ((kernel / definer).resolve(), expected)
    ]


# -- the same on every other kernel ----------------------------------------------------------------


@pytest.mark.timeout(1200)
async def test_kernel_hover_values_and_layouts_equal_crash_on_every_kernel(
    other_kernel: LanguageClient,
) -> None:
    """The kernel half of the hover tests above on another kernel: a scalar global, a struct global
    (``p``) and a kernel type's layout (``struct -o``), against crash on that kernel's dump."""
    sample = other_kernel.sample  # type: ignore[attr-defined]
    p_oops, p_cpu, mutex_o = run_crash(sample, ["p panic_on_oops", "p panic_cpu", "struct -o mutex"])
    panic_uri, panic_lines = _open(other_kernel, _kernel_source(sample) / "kernel" / "panic.c")
    block = _code_block(
        await _hover(other_kernel, panic_uri, _position(panic_lines, r"^int panic_on_oops", "panic_on_oops"))
    )
    assert block == f"panic_on_oops = {_crash_scalar(p_oops, 'panic_on_oops')}"
    hover = await _hover(other_kernel, panic_uri, _position(panic_lines, r"^atomic_t panic_cpu", "panic_cpu"))
    assert _hover_members(_code_block(hover)) == _crash_members(p_cpu) != {}, hover
    # struct mutex is in include/linux/mutex_types.h on 6.12 and 7.2, in mutex.h on 5.10 and 6.1;
    # 7.2 declares it through the context-analysis macro: "context_lock_struct(mutex) {".
    definition = r"^(struct mutex|context_lock_struct\(mutex\)) \{"
    headers = [_kernel_source(sample) / "include" / "linux" / name for name in ("mutex_types.h", "mutex.h")]
    header = [h for h in headers if h.is_file() and re.search(definition, h.read_text(), re.M)][0]
    header_uri, header_lines = _open(other_kernel, header)
    hover = await _hover(other_kernel, header_uri, _position(header_lines, definition, "mutex"))
    assert struct_offsets(_code_block(hover)) == struct_offsets(mutex_o) != []


@pytest.mark.timeout(900)
async def test_kernel_definitions_on_every_kernel(other_kernel: LanguageClient) -> None:
    """The kernel half of test_definitions on another kernel's tree: a function through the line
    table, a global through the tree's ctags index (the line that takes panic_cpu calls
    ``atomic_cmpxchg`` on 5.10 and 6.1, ``atomic_try_cmpxchg`` on 6.12 and 7.2)."""
    sample = other_kernel.sample  # type: ignore[attr-defined]
    kernel = _kernel_source(sample)
    sysrq = kernel / "drivers" / "tty" / "sysrq.c"
    uri, lines = _open(other_kernel, sysrq)
    use = _position(lines, r"\.handler\s*= sysrq_handle_crash,", "sysrq_handle_crash")
    found = await _definition(other_kernel, uri, use, 60)
    assert [(Path(loc.uri.removeprefix("file://")).resolve(), loc.range.start.line) for loc in found] == [
        (sysrq.resolve(), _line_of(lines, r"^static void sysrq_handle_crash\("))
    ]
    panic = kernel / "kernel" / "panic.c"
    panic_uri, panic_lines = _open(other_kernel, panic)
    use = _position(panic_lines, r"atomic_(try_)?cmpxchg\(&panic_cpu", "panic_cpu")
    found = await _definition(other_kernel, panic_uri, use, 600)
    assert [(Path(loc.uri.removeprefix("file://")).resolve(), loc.range.start.line) for loc in found] == [
        (panic.resolve(), _line_of(panic_lines, r"^atomic_t panic_cpu"))
    ]
