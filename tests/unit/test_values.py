"""Value formatting on a core-less drgn program: strings, integers, enums, absent values, naming.

Reading kernel memory is covered by ``tests/e2e/test_variables.py`` on real dumps; here only values
that need no memory (drgn value objects built from bytes) and addresses that cannot be read.
"""

from __future__ import annotations

import drgn
import pytest

from vmcore_dap.dump.values.render import Variable, children, escape_bytes, fault_text, render

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def prog() -> drgn.Program:
    return drgn.Program(drgn.host_platform)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"walk 7", "walk 7"),
        (b"a\nb\tc", "a\\nb\\tc"),
        (b'q"\\', 'q\\"\\\\'),
        (b"\x01\x7f", "\\x01\\x7f"),
        (b"caf\xc3\xa9", "café"),
        (b"bad\xff\xfe", "bad\\xff\\xfe"),
        (b"\xc2\x85", "\\x85"),
    ],
)
def test_escape_bytes(data: bytes, text: str) -> None:
    assert escape_bytes(data) == text


def test_integers_chars_and_hex(prog: drgn.Program) -> None:
    assert render(drgn.Object(prog, "int", -5)).value == "-5"
    assert render(drgn.Object(prog, "int", -5), hex_=True).value == "0xfffffffb"
    assert render(drgn.Object(prog, "char", 65)).value == "65 'A'"
    assert render(drgn.Object(prog, "char", 0)).value == "0 '\\0'"
    assert render(drgn.Object(prog, "_Bool", 1)).value == "true"
    assert render(drgn.Object(prog, "unsigned long", 255), hex_=True).type == "unsigned long"


def test_enum_by_name_or_number(prog: drgn.Program) -> None:
    mode = prog.enum_type(
        "labbug_mode",
        prog.int_type("unsigned int", 4, False),
        [drgn.TypeEnumerator("IDLE", 0), drgn.TypeEnumerator("WALK", 2)],
    )
    assert render(drgn.Object(prog, mode, 2)).value == "WALK"
    assert render(drgn.Object(prog, mode, 7)).value == "7"
    assert render(drgn.Object(prog, mode, 7), hex_=True).value == "0x7"


def test_absent_and_unreadable(prog: drgn.Program) -> None:
    absent = drgn.Object(prog, "int", absence_reason=drgn.AbsenceReason.OPTIMIZED_OUT)
    shown = render(absent)
    assert (shown.value, shown.expandable, shown.memory_reference) == ("<optimized out>", False, None)
    assert render(drgn.Object(prog, "int", address=0)).value == "<error: cannot read 0x0: NULL pointer>"
    # A program with no dump has no page tables or filter to blame: it says just that, and does not
    # guess "excluded" (the reasons on a real dump are checked in tests/e2e/test_page_filter.py).
    assert fault_text(prog, 0x7FFF0000) == "<error: cannot read 0x7fff0000: not present in the dump>"
    kernel = 0xFFFF888000001000
    assert fault_text(prog, kernel) == f"<error: cannot read {kernel:#x}: not present in the dump>"


def test_char_array_string_and_paging(prog: drgn.Program) -> None:
    comm = drgn.Object.from_bytes_(prog, prog.array_type(prog.type("char"), 8), b"sh\0\0\0\0\0\0")
    shown = render(comm)
    assert (shown.value, shown.type, shown.indexed) == ('"sh"', "char [8]", 8)
    page = children(Variable("comm", comm, "current->comm"), start=1, count=2, filter_="indexed")
    assert [(v.name, v.expr) for v in page] == [("[1]", "current->comm[1]"), ("[2]", "current->comm[2]")]
    assert children(Variable("comm", comm, "current->comm"), filter_="named") == []


def test_member_names_and_anonymous_members(prog: drgn.Program) -> None:
    int_ = prog.int_type("int", 4, True)
    inner = prog.union_type(None, 4, [drgn.TypeMember(int_, "a", 0), drgn.TypeMember(int_, "b", 0)])
    outer = prog.struct_type("outer", 8, [drgn.TypeMember(int_, "x", 0), drgn.TypeMember(inner, None, 32)])
    value = drgn.Object(prog, outer, {"x": 1, "a": 2})
    kids = children(Variable("o", value, "p->o"))
    assert [(k.name, k.expr) for k in kids] == [("x", "p->o.x"), ("<anonymous union>", None)]
    nested = children(kids[1])
    assert [(k.name, k.expr, render(k.obj).value) for k in nested] == [
        ("a", "p->o.a", "2"),
        ("b", "p->o.b", "2"),
    ]
    # An expression that is not a plain path is parenthesised before a member is added.
    assert children(Variable("x", value, "*q"))[0].expr == "(*q).x"


def test_bit_field_type_shows_width(prog: drgn.Program) -> None:
    uint = prog.int_type("unsigned int", 4, False)
    on_bits = drgn.Object(prog, uint, bit_field_size=1)
    mode_bits = drgn.Object(prog, uint, bit_field_size=3)
    flags = prog.struct_type(
        "flags", 4, [drgn.TypeMember(on_bits, "on", 0), drgn.TypeMember(mode_bits, "mode", 1)]
    )
    value = drgn.Object(prog, flags, {"on": 1, "mode": 5})
    on, mode = children(Variable("f", value, "f"))
    assert (render(on.obj).value, render(on.obj).type) == ("1", "unsigned int : 1")
    assert (render(mode.obj).value, render(mode.obj).type) == ("5", "unsigned int : 3")
