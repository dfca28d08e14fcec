"""The kernel differences issue 14 found on the x86-64 kernels of the matrix, each on its real sample.

- Linux >= 6.4 splits a module's memory (``struct module.mem[]``): the Modules view, the language
  server and triage must not stop at drgn's "module has multiple address ranges" (Debian 13's 6.12,
  sid's 7.2).
- 7.x's ``struct taint_flag`` has no ``module`` member (sid's 7.2).
- 5.10 has no kallsyms in VMCOREINFO: no traceback, no warning (Debian 11's 5.10).
- ``CONFIG_X86_FRED`` (sid's 7.2): the user registers sit 16 bytes lower; the write() row stays.

The features every kernel shares (Threads, every stack, the crash site and its write() row,
Registers, Modules, the Kernel view, the console, disassembly, the language server) are tested on
every kernel of the run by the feature's own test module (tests marked ``every_kernel``,
tests/conftest.py); makedumpfile -d 31's lossy 7.2 dump by test_lossy_dump.py.

crash's answers for these kernels are not trusted for modules (crash 9.0 reads 7.2 only with
``--no_modules``), so the oracles here are the guest's own log (dmesg.txt, written by the crashed
kernel: "Modules linked in: labbug(OE)") and plain drgn on the same dump.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from drgn.helpers.linux.list import list_for_each_entry
from samples.sample_store import Sample, ensure_sample
from tests.e2e._session import open_sample_dump, stack_of, stopped_session

from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.lsp.dump_session import DumpSession

pytestmark = pytest.mark.timeout(900)

#: x86-64 kernels of the matrix whose modules have split memory (Linux >= 6.4).
SPLIT_MODULE_KERNELS = ("deb13-6.12-amd64", "sid-7-amd64")

_samples: dict[tuple[str, str, str | None], Sample] = {}


def _sample(scenario: str, kernel: str, variant: str | None = None) -> Sample:
    key = (scenario, kernel, variant)
    if key not in _samples:
        _samples[key] = ensure_sample(scenario, kernel=kernel, variant=variant)
    return _samples[key]


@pytest.fixture(scope="module", params=SPLIT_MODULE_KERNELS)
def split_oops(request: pytest.FixtureRequest) -> Sample:
    """The oops-null sample (labbug loaded) of a kernel with split module memory."""
    return _sample("oops-null", request.param)


def _modules_linked_in(sample: Sample) -> dict[str, str]:
    text = Path(sample.dmesg).read_text(errors="replace")
    lines = re.findall(r"Modules linked in: (.*)", text)
    assert lines, "the guest's log has no 'Modules linked in' line"
    return dict(re.findall(r"(\S+?)\((\w+)\)", lines[-1]))


def _stderr(client: Any) -> str:
    return b"".join(client._stderr).decode(errors="replace")


def test_modules_view_on_split_module_memory(split_oops: Sample, tmp_path: Path) -> None:
    linked = _modules_linked_in(split_oops)
    with stopped_session(split_oops, tmp_path) as (client, _):
        body = client.call("modules", {})
        ours = {m["name"]: m for m in body["modules"]}
        assert "module has multiple address ranges" not in _stderr(client)
    # The kernel's own log says which modules were loaded and their taints (7.2: no taint_flag.module).
    assert set(ours) == set(linked) | {"kernel"}, (ours.keys(), linked)
    for name, letters in linked.items():
        assert sorted(ours[name]["taints"]) == sorted(letters), ours[name]
    # Base, size and struct module address from plain drgn (v6.4's struct module): the base is
    # mem[MOD_TEXT]'s, the size the core's as crash's mod adds it up (every region before
    # MOD_INIT_TEXT), the address range the text region's.
    prog = open_sample_dump(split_oops).prog
    for mod in list_for_each_entry("struct module", prog["modules"].address_of_(), "list"):
        name = mod.name.string_().decode()
        text = mod.mem[prog.constant("MOD_TEXT")]
        core_size = sum(mod.mem[t].size.value_() for t in range(prog.constant("MOD_INIT_TEXT").value_()))
        module = ours[name]
        assert int(module["structModule"], 16) == mod.value_()
        assert int(module["base"], 16) == text.base.value_()
        assert module["size"] == core_size
        low, high = (int(x, 16) for x in module["addressRange"].split("-"))
        assert (low, high) == (text.base.value_(), text.base.value_() + text.size.value_())


def test_language_server_indexes_module_sources_on_split_module_memory(split_oops: Sample) -> None:
    config = LaunchConfig.from_arguments(
        {
            "vmcore": str(split_oops.vmcore),
            "vmlinux": str(split_oops.vmlinux),
            "debugInfo": [str(p) for p in split_oops.debug_info],
        }
    )
    roots = DumpSession(config).index_roots()
    # labbug's DWARF names its source file, which is in the sample (the module was built there).
    assert Path(split_oops.dir, split_oops.manifest["module_source_dir"]).resolve() in roots, roots


def test_write_row_at_the_bottom_with_fred(tmp_path: Path) -> None:
    """sid's 7.2 has CONFIG_X86_FRED: the crashed task's user registers (16 bytes lower) still give
    the write() system call the guest made, with the fd the guest's shell wrote to."""
    sample = _sample("oops-null", "sid-7-amd64")
    prog = open_sample_dump(sample).prog
    assert prog.symbol("asm_fred_entrypoint_user"), "the sid kernel is no longer built with FRED"
    with stopped_session(sample, tmp_path) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
    assert re.match(r"^write\(fd=\d+, buf=0x[0-9a-f]+, count=\d+\)$", frames[-1]["name"]), frames[-1]
    assert frames[-1]["presentationHint"] == "label"


def test_5_10_without_kallsyms_logs_no_traceback(tmp_path: Path) -> None:
    sample = _sample("sysrq-c", "deb11-5.10-amd64")
    with stopped_session(sample, tmp_path) as (client, stopped):
        for thread in client.call("threads")["threads"]:
            stack_of(client, thread["id"])
        stderr = _stderr(client)
    log = (tmp_path / "adapter.log").read_text(errors="replace")
    assert "Traceback" not in stderr and "kallsyms" not in stderr, stderr
    assert "Traceback" not in log
    # Frames are named from the vmlinux's ELF symbols (memory.symbol_index), so the missing
    # VMCOREINFO kallsyms is never asked for: no warning about it at all.
    assert "cannot load the kernel's kallsyms" not in log and "cannot load module kallsyms" not in log
