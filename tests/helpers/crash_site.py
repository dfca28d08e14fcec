"""The instruction a sample's task crashed at, by the oracle the table leaves for it.

crash's ``dis -l <crash site>`` where it is trusted. Where the oracle table distrusts crash's lines
of module code (6.12: ``module-lines``), crash's address, function and mnemonic stay and the line
is binutils' on the ``.ko``. Where crash names no symbol at the site (a module's code under
``--no_modules``, 7.x), the function and offset are the guest's own oops line (``RIP:
0010:labbug_walk+0x1da/0x220 [labbug]``, in the sample's dmesg) at crash's exception address, and
the mnemonic and line are binutils' on the ``.ko`` at that offset. Each answer says which oracle it
came from, for the test's message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.helpers.crash_parse import parse_dis
from tests.helpers.ko_lines import KoFunction, ko_function, ko_line, ko_mnemonic

if TYPE_CHECKING:
    from samples.crash_oracle import CrashAnswers

__all__ = ["SiteInstruction", "guest_rip", "site_instruction"]

#: The guest kernel's own oops line for a fault in kernel mode (``show_ip``, x86's ``RIP: 0010:``).
_GUEST_RIP = re.compile(r"RIP: 0010:(?P<function>[\w.]+)\+0x(?P<offset>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)")


@dataclass(frozen=True)
class SiteInstruction:
    """The crash site's instruction: ``function + offset`` at ``address``, its mnemonic (AT&T, as
    gdb and objdump name it) and source ``file`` name and ``line``; ``oracle`` names the sources."""

    address: int
    function: str
    offset: int
    mnemonic: str
    file: str
    line: int
    oracle: str


def guest_rip(sample: Any) -> tuple[str, int, int]:
    """(function, offset, size) of the guest's first kernel-mode ``RIP:`` line in its dmesg."""
    found = _GUEST_RIP.search(Path(sample.dmesg).read_text(errors="replace"))
    assert found, f"no kernel-mode RIP line in {sample.dmesg}"
    return found["function"], int(found["offset"], 16), int(found["size"], 16)


def _module_function(sample: Any, name: str) -> KoFunction:
    function = ko_function(sample.debug_info, name)
    assert function is not None, f"{name} is not a function of the sample's modules {sample.debug_info}"
    return function


def _binutils_line(function: KoFunction, delta: int) -> tuple[str, int]:
    where = ko_line(function.ko, function.section, function.offset + delta)
    assert where is not None, f"binutils has no line at {function.name}+{delta} in {function.ko}"
    return where


def site_instruction(sample: Any, answers: CrashAnswers) -> SiteInstruction:
    """The instruction at the crash site of ``sample`` (``answers``: crash's, with the table's word)."""
    site = answers.meta["facts"]["crash_site"]
    address = int(site["address"], 16)
    if "dis-l" not in answers:
        # crash names no symbol here (answers.missing says why): the guest's oops and the .ko.
        name, offset, _size = guest_rip(sample)
        function = _module_function(sample, name)
        file, line = _binutils_line(function, offset)
        oracle = (
            f"the guest's oops ({name}+{offset:#x}) at crash's exception address, objdump and addr2line "
            f"on {function.ko.name} (crash: {answers.missing['dis-l']})"
        )
        return SiteInstruction(address, name, offset, ko_mnemonic(function, offset), file, line, oracle)
    (insn, *_) = parse_dis(answers["dis-l"])
    assert insn.address == address and insn.file is not None and insn.line is not None, answers["dis-l"]
    file, line, oracle = Path(insn.file).name, insn.line, "crash's dis -l"
    function = ko_function(sample.debug_info, insn.symbol)
    if function is not None and not answers.trusts("dis-l", "module-lines"):
        file, line = _binutils_line(function, insn.offset)
        oracle = (
            f"crash's dis -l, the line by addr2line on {function.ko.name} (crash's module lines: "
            f"{answers.distrusted['dis-l:module-lines']})"
        )
    return SiteInstruction(address, insn.symbol, insn.offset, insn.mnemonic, file, line, oracle)
