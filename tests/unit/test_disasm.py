"""Disassembly on fixed bytes: a synthetic drgn Program with known memory and symbols, no dump.

The byte sequences are hand-assembled x86-64 whose decoding we know (checked against objdump), laid
out like kernel text: functions with int3 padding between them, and a hole of unreadable memory.
"""

from __future__ import annotations

import drgn
import pytest

from vmcore_dap.dump.disassembly import disasm
from vmcore_dap.dump.memory.reading import read_prefix

pytestmark = pytest.mark.timeout(30)

BASE = 0xFFFFFFFF81000000

# func_a at BASE: 7 instructions, lengths 1,3,5,7,2,1 ... (see FUNC_A_LENGTHS), then int3 padding.
FUNC_A = bytes.fromhex(
    "55"  # push %rbp                         (1)
    "4889e5"  # mov %rsp,%rbp                   (3)
    "e8f7000000"  # call BASE+0x100 (func_b)        (5)  target = BASE+4+5+0xf7 = BASE+0x100
    "488b0530010000"  # mov 0x130(%rip),%rax -> data_c (7)  target = BASE+0x9+7+0x130 = BASE+0x140
    "7402"  # je +2                           (2)
    "31c0"  # xor %eax,%eax                   (2)
    "5d"  # pop %rbp                          (1)
    "c3"  # ret                               (1)
)
FUNC_A_LENGTHS = [1, 3, 5, 7, 2, 2, 1, 1]
# func_b at BASE+0x100: movabs (10 bytes) + ret; a long instruction makes mis-aligned decoding visible.
FUNC_B = bytes.fromhex("48b8" + "1122334455667788" + "c3")
FUNC_B_LENGTHS = [10, 1]
TEXT_SIZE = 0x200
HOLE = BASE + 0x1000  # one unreadable page follows the text page


def _text() -> bytes:
    text = bytearray(b"\xcc" * TEXT_SIZE)
    text[: len(FUNC_A)] = FUNC_A
    text[0x100 : 0x100 + len(FUNC_B)] = FUNC_B
    text[0x180:0x184] = b"\x06\x07\x0f\x0b"  # (bad) (bad) ud2 in "func_bad"
    return bytes(text)


@pytest.fixture()
def prog() -> drgn.Program:
    platform = drgn.Platform(
        drgn.Architecture.X86_64, drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
    )
    p = drgn.Program(platform)
    text = _text() + b"\xcc" * (0x1000 - TEXT_SIZE)
    p.add_memory_segment(
        BASE, len(text), lambda address, count, offset, physical: text[offset : offset + count]
    )
    after = b"\x90" * 0x1000  # page after the hole: nops
    p.add_memory_segment(HOLE + 0x1000, len(after), lambda a, c, o, ph: after[o : o + c])
    symbols = [
        drgn.Symbol("func_a", BASE, len(FUNC_A), drgn.SymbolBinding.GLOBAL, drgn.SymbolKind.FUNC),
        drgn.Symbol("func_b", BASE + 0x100, len(FUNC_B), drgn.SymbolBinding.GLOBAL, drgn.SymbolKind.FUNC),
        drgn.Symbol("data_c", BASE + 0x140, 8, drgn.SymbolBinding.GLOBAL, drgn.SymbolKind.OBJECT),
        drgn.Symbol("func_bad", BASE + 0x180, 4, drgn.SymbolBinding.LOCAL, drgn.SymbolKind.FUNC),
        drgn.Symbol("func_a.cold", BASE + 0x1C0, 2, drgn.SymbolBinding.LOCAL, drgn.SymbolKind.FUNC),
    ]
    p.register_symbol_finder("test", drgn.SymbolIndex(symbols), enable_index=0)
    return p


def _starts(base: int, lengths: list[int]) -> list[int]:
    out, addr = [], base
    for n in lengths:
        out.append(addr)
        addr += n
    return out


def test_forward_from_function_start(prog: drgn.Program) -> None:
    insns = disasm.disassemble_at(prog, BASE, 0, len(FUNC_A_LENGTHS))
    assert [i.address for i in insns] == _starts(BASE, FUNC_A_LENGTHS)
    assert [i.mnemonic for i in insns] == ["push", "mov", "call", "mov", "je", "xor", "pop", "ret"]
    assert insns[0].symbol == "func_a+0x0" and insns[3].symbol == "func_a+0x9"
    assert not any(i.invalid for i in insns)


def test_branch_and_rip_relative_targets_are_symbolized(prog: drgn.Program) -> None:
    call, load = disasm.disassemble_at(prog, BASE + 4, 0, 2)
    assert call.op_str == f"{BASE + 0x100:#x} <func_b>"
    assert call.targets == (BASE + 0x100,)
    assert load.op_str.endswith(f"# {BASE + 0x140:#x} <data_c>"), load.op_str
    je = disasm.disassemble_at(prog, BASE + 0x10, 0, 1)[0]
    assert je.op_str == f"{BASE + 0x14:#x} <func_a+0x14>"


def test_negative_offset_realigns_on_base(prog: drgn.Program) -> None:
    """Decoding backwards byte-wise from func_b+0xa would land inside the movabs; we must not."""
    target = BASE + 0x10A  # the ret of func_b
    insns = disasm.disassemble_at(prog, target, -1, 2)
    assert [i.address for i in insns] == [BASE + 0x100, target]
    assert insns[0].mnemonic == "movabs" and insns[0].size == 10
    assert insns[1].mnemonic == "ret"


@pytest.mark.parametrize("offset", range(-20, 21))
def test_exact_count_and_base_alignment_for_any_offset(prog: drgn.Program, offset: int) -> None:
    """Every offset in -20..20 gives exactly 41 entries, contiguous, with the base among them."""
    count = 41
    base = BASE + 0x9  # the 7-byte mov in func_a
    insns = disasm.disassemble_at(prog, base, offset, count)
    assert len(insns) == count
    for prev, nxt in zip(insns, insns[1:], strict=False):
        assert nxt.address == prev.end, (prev, nxt)
    index = -offset
    if 0 <= index < count:
        assert insns[index].address == base
        assert insns[index].mnemonic == "mov"


@pytest.mark.parametrize("syntax", ["att", "intel"])
def test_windows_equal_a_whole_detailed_decode(prog: drgn.Program, syntax: disasm.Syntax) -> None:
    """Instructions before and after the base are decoded quickly and only the returned ones in
    detail: every window must still equal the same entries of one detailed decode of the text."""
    whole = disasm.disassemble_range(prog, BASE, BASE + TEXT_SIZE, syntax=syntax)
    where = {insn.address: i for i, insn in enumerate(whole)}
    windows = [
        (base, offset, count)
        for base in (BASE + 0x9, BASE + 0x10A, BASE + 0x182)
        for offset, count in ((-3, 12), (-40, 4), (-200, 30), (0, 9), (3, 6))
        if 0 <= where[base] + offset and where[base] + offset + count <= len(whole)
    ]
    assert len(windows) > 10
    for base, offset, count in windows:
        window = disasm.disassemble_at(prog, base, offset, count, syntax=syntax)
        first = where[base] + offset
        assert window == whole[first : first + count], (hex(base), offset, count)
        assert [w.targets for w in window] == [w.targets for w in whole[first : first + count]]


def test_backwards_across_padding_into_previous_function(prog: drgn.Program) -> None:
    insns = disasm.disassemble_at(prog, BASE + 0x100, -(0x100 - len(FUNC_A)) - 2, 3)
    # The two last instructions of func_a, then the first int3 of the padding.
    assert [(i.address, i.mnemonic) for i in insns] == [
        (BASE + 0x14, "pop"),
        (BASE + 0x15, "ret"),
        (BASE + 0x16, "int3"),
    ]


def test_undecodable_bytes_become_invalid_fillers(prog: drgn.Program) -> None:
    insns = disasm.disassemble_at(prog, BASE + 0x180, 0, 3)
    assert [(i.address, i.invalid, i.mnemonic) for i in insns] == [
        (BASE + 0x180, True, "(bad)"),
        (BASE + 0x181, True, "(bad)"),
        (BASE + 0x182, False, "ud2"),
    ]


def test_unreadable_memory_is_padded_forward_and_backward(prog: drgn.Program) -> None:
    before_hole = disasm.disassemble_at(prog, HOLE - 2, 0, 5)
    assert [i.invalid for i in before_hole] == [False, False, True, True, True]
    assert [i.address for i in before_hole] == [HOLE - 2, HOLE - 1, HOLE, HOLE + 1, HOLE + 2]
    assert before_hole[2].mnemonic == "??" and "not present" in (before_hole[2].reason or "")
    after_hole = disasm.disassemble_at(prog, HOLE + 0x1000, -3, 5)
    assert [i.address for i in after_hole] == list(range(HOLE + 0x1000 - 3, HOLE + 0x1000 + 2))
    assert [i.invalid for i in after_hole] == [True, True, True, False, False]
    assert after_hole[3].mnemonic == "nop"


def test_function_with_cold_part_and_range(prog: drgn.Program) -> None:
    assert disasm.function_range(prog, BASE + 5) == (BASE, BASE + len(FUNC_A), "func_a")
    assert disasm.function_range(prog, BASE + 0x1000 + 5) is None
    whole = disasm.disassemble_function(prog, "func_a")
    assert [i.address for i in whole] == _starts(BASE, FUNC_A_LENGTHS) + [BASE + 0x1C0, BASE + 0x1C1]
    assert whole[-1].symbol == "func_a.cold+0x1"
    assert disasm.disassemble_function(prog, BASE + 0x1C1) == whole  # from inside the cold part
    with pytest.raises(LookupError):
        disasm.disassemble_function(prog, BASE + 0x1F0)


def test_intel_syntax(prog: drgn.Program) -> None:
    mov = disasm.disassemble_at(prog, BASE + 1, 0, 1, syntax="intel")[0]
    assert mov.text == "mov rbp, rsp"


def test_read_prefix_stops_at_hole(prog: drgn.Program) -> None:
    read = read_prefix(prog, HOLE - 16, 64)
    assert read.data == b"\xcc" * 16 and read.unreadable == 48
    assert read.reason is not None and f"{HOLE:#x}" in read.reason
    assert read_prefix(prog, HOLE, 0).data == b""
    assert read_prefix(prog, BASE, 4).data == FUNC_A[:4]


def test_alignment_padding_belongs_to_the_function_before_it(prog: drgn.Program) -> None:
    # A call to a noreturn function at a function's end leaves a return address in the padding:
    # kallsyms and crash call it function+off, and so must we.
    end = BASE + sum(FUNC_A_LENGTHS)
    assert disasm.symbolize(prog, end) == f"func_a+{end - BASE:#x}"
    assert disasm.function_range(prog, end) == (BASE, BASE + 0x20, "func_a")
    assert disasm.symbolize(prog, BASE + 0x20) is None  # the next aligned slot is nobody's


def _one_function(arch: drgn.Architecture, code: bytes) -> drgn.Program:
    """A program of one function ``f`` holding ``code`` at :data:`BASE`."""
    p = drgn.Program(drgn.Platform(arch, drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN))
    p.add_memory_segment(
        BASE, len(code), lambda address, count, offset, physical: code[offset : offset + count]
    )
    f = drgn.Symbol("f", BASE, len(code), drgn.SymbolBinding.GLOBAL, drgn.SymbolKind.FUNC)
    p.register_symbol_finder("test", drgn.SymbolIndex([f]), enable_index=0)
    return p


def test_a64_words_capstone_5_could_not_decode() -> None:
    # objdump (binutils 2.40) on these words: stgp x0, x30, [x3], #96 / stgp x0, x30, [x3, #96]! /
    # stgp x0, x30, [x3, #96] / ldtr x3, [x3]. The first is the word a fresh arm64 sample's crashed
    # frame pointed at (crash's gdb: stgp); capstone 5.0 decoded none of them.
    words = (0x68837860, 0x69837860, 0x69037860, 0xF8400863)
    prog = _one_function(drgn.Architecture.AARCH64, b"".join(w.to_bytes(4, "little") for w in words))
    insns = disasm.disassemble_function(prog, "f")
    assert [i.text for i in insns] == [
        "stgp x0, x30, [x3], #0x60",
        "stgp x0, x30, [x3, #0x60]!",
        "stgp x0, x30, [x3, #0x60]",
        "ldtr x3, [x3]",
    ]
    assert not any(i.invalid for i in insns)


def test_att_size_suffix_stays_when_no_register_has_the_size() -> None:
    # objdump: shlq %cl,0x48(%r12) (the count register says nothing of the memory operand's size) but
    # shl %cl,%eax and mov %rsp,%rbp.
    prog = _one_function(drgn.Architecture.X86_64, bytes.fromhex("49d3642448d3e04889e5"))
    assert [i.mnemonic for i in disasm.disassemble_function(prog, "f")] == ["shlq", "shl", "mov"]
