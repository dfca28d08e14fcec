"""Array pages formatted from one read (:func:`values.render_children`, :func:`values.scalar_page`) read
exactly as element by element.

The program is a real drgn program over a memory segment this test writes, so every element kind
(signed, unsigned, char, bool, enum, float) and an unreadable page are checked without a dump.
"""

from __future__ import annotations

import struct

import drgn
import pytest

from vmcore_dap.dump.values.render import Variable, children, render, render_children, scalar_page

pytestmark = pytest.mark.timeout(30)

BASE = 0xFFFF_8880_0000_0000
#: Unsigned longs 0, 1, 2, …, then negative ints, chars, bools, enums and doubles further on.
MEMORY = (
    b"".join(struct.pack("<Q", i * 0x1001) for i in range(64))
    + b"".join(struct.pack("<i", -i) for i in range(16))
    + b"ab\n\xff\x00xyz"
    + bytes([0, 1, 2, 0])
    + struct.pack("<4I", 0, 2, 7, 2)
    + struct.pack("<3d", 0.5, -1.25, 1e300)
)


@pytest.fixture
def prog() -> drgn.Program:
    prog = drgn.Program(
        drgn.Platform(
            drgn.Architecture.X86_64, drgn.PlatformFlags.IS_LITTLE_ENDIAN | drgn.PlatformFlags.IS_64_BIT
        )
    )
    prog.add_memory_segment(
        BASE, len(MEMORY), lambda address, count, offset, physical: MEMORY[offset : offset + count]
    )
    return prog


def _array(prog: drgn.Program, element: drgn.Type, offset: int, length: int) -> Variable:
    obj = drgn.Object(prog, prog.array_type(element, length), address=BASE + offset)
    return Variable("a", obj, "a")


def _element_by_element(
    var: Variable, start: int, count: int | None, hex_: bool
) -> list[tuple[str, str | None, object]]:
    return [(k.name, k.expr, render(k.obj, hex_=hex_)) for k in children(var, start=start, count=count)]


def _paged(var: Variable, start: int, count: int | None, hex_: bool) -> list[tuple[str, str | None, object]]:
    return [(k.name, k.expr, r) for k, r in render_children(var, start=start, count=count, hex_=hex_)]


@pytest.mark.parametrize("hex_", [False, True])
@pytest.mark.parametrize(("start", "count"), [(0, None), (3, 5), (60, 100), (1000, 4)])
def test_scalar_pages_match_element_by_element(
    prog: drgn.Program, hex_: bool, start: int, count: int | None
) -> None:
    mode = prog.enum_type(
        "mode",
        prog.int_type("unsigned int", 4, False),
        [drgn.TypeEnumerator("IDLE", 0), drgn.TypeEnumerator("WALK", 2)],
    )
    arrays = [
        _array(prog, prog.int_type("unsigned long", 8, False), 0, 64),
        _array(prog, prog.type("const int"), 512, 16),
        _array(prog, prog.int_type("char", 1, True), 576, 8),
        _array(prog, prog.bool_type("_Bool", 1), 584, 4),
        _array(prog, mode, 588, 4),
        _array(prog, prog.float_type("double", 8), 604, 3),
    ]
    for var in arrays:
        assert _paged(var, start, count, hex_) == _element_by_element(var, start, count, hex_)


def test_page_values_and_memory_references(prog: drgn.Program) -> None:
    var = _array(prog, prog.int_type("unsigned long", 8, False), 0, 64)
    page = render_children(var, start=2, count=2, hex_=True)
    assert [(k.name, r.value, r.memory_reference, r.type) for k, r in page] == [
        ("[2]", "0x2002", f"{BASE + 16:#x}", "unsigned long"),
        ("[3]", "0x3003", f"{BASE + 24:#x}", "unsigned long"),
    ]


def test_unreadable_page_says_why_for_each_element(prog: drgn.Program) -> None:
    # The array runs past the end of the segment: the one read fails, each element reports itself.
    var = _array(prog, prog.int_type("unsigned long", 8, False), len(MEMORY) - 16, 4)
    page = render_children(var)
    assert [r.value.startswith("<error: cannot read") for _k, r in page] == [False, False, True, True]


def _arrays(prog: drgn.Program) -> list[Variable]:
    mode = prog.enum_type(
        "mode",
        prog.int_type("unsigned int", 4, False),
        [drgn.TypeEnumerator("IDLE", 0), drgn.TypeEnumerator("WALK", 2)],
    )
    return [
        _array(prog, prog.int_type("unsigned long", 8, False), 0, 64),
        _array(prog, prog.type("const int"), 512, 16),
        _array(prog, prog.int_type("char", 1, True), 576, 8),
        _array(prog, prog.bool_type("_Bool", 1), 584, 4),
        _array(prog, mode, 588, 4),
        _array(prog, prog.float_type("double", 8), 604, 3),
    ]


@pytest.mark.parametrize("hex_", [False, True])
@pytest.mark.parametrize(("start", "count"), [(0, None), (3, 5), (60, 100), (2, 0)])
def test_scalar_page_columns_match_element_by_element(
    prog: drgn.Program, hex_: bool, start: int, count: int | None
) -> None:
    """Every column the ``variables`` handler sends is what the element alone would carry."""
    for var in _arrays(prog):
        page = scalar_page(var, start=start, count=count, hex_=hex_)
        kids = children(var, start=start, count=count)
        if not kids:
            assert page is None
            continue
        assert page is not None
        alone = [render(k.obj, hex_=hex_) for k in kids]
        assert page.names() == [k.name for k in kids]
        assert page.evaluate_names() == [k.expr for k in kids]
        assert page.values == [r.value for r in alone]
        assert {page.type} == {r.type for r in alone}
        assert page.memory_references() == [r.memory_reference for r in alone]
        assert list(page.addresses()) == [k.obj.address_ for k in kids]


def test_scalar_page_evaluate_names_follow_the_array_expression(prog: drgn.Program) -> None:
    obj = drgn.Object(prog, prog.array_type(prog.int_type("unsigned long", 8, False), 4), address=BASE)
    for expr, expected in (("p->buf", "p->buf[1]"), ("*p", "(*p)[1]"), (None, None)):
        var = Variable("buf", obj, expr)
        page = scalar_page(var, start=1, count=1)
        assert page is not None
        assert page.evaluate_names() == (None if expected is None else [expected])
        assert page.evaluate_names() == (
            None if expected is None else [k.expr for k in children(var, start=1, count=1)]
        )


def test_no_scalar_page_where_elements_must_be_shown_one_by_one(prog: drgn.Program) -> None:
    unsigned_long = prog.int_type("unsigned long", 8, False)
    # Past the end of readable memory: each element says for itself why it cannot be read.
    assert scalar_page(_array(prog, unsigned_long, len(MEMORY) - 16, 4)) is None
    # Named children only, an empty page, and elements that are not scalars.
    assert scalar_page(_array(prog, unsigned_long, 0, 8), filter_="named") is None
    assert scalar_page(_array(prog, unsigned_long, 0, 8), start=8) is None
    pair = prog.struct_type(
        "pair", 16, [drgn.TypeMember(unsigned_long, "a", 0), drgn.TypeMember(unsigned_long, "b", 64)]
    )
    assert scalar_page(_array(prog, pair, 0, 2)) is None
    # A value that is not in memory.
    value = drgn.Object(prog, prog.array_type(unsigned_long, 2), value=[1, 2])
    assert scalar_page(Variable("v", value, "v")) is None
