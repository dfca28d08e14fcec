"""The C expression front end on fixed strings: tokens, tree shapes, columns of errors.

Evaluation against kernel data is covered by ``tests/e2e/test_variables.py`` on real dumps; here a
core-less drgn ``Program`` with hand-built types checks the C semantics that need no memory.
"""

from __future__ import annotations

import drgn
import pytest

from vmcore_dap.dump.values import cexpr
from vmcore_dap.dump.values.cexpr import (
    Binary,
    Builtin,
    Cast,
    CExprError,
    Conditional,
    Index,
    Member,
    Name,
    Number,
    SizeofExpr,
    SizeofType,
    TypeName,
    Unary,
    parse,
)

pytestmark = pytest.mark.timeout(30)

TYPEDEFS = {"u64", "size_t", "pid_t"}


def p(text: str) -> cexpr.Node:
    return parse(text, TYPEDEFS.__contains__)


def test_member_chain_and_python_keywords_as_identifiers() -> None:
    tree = p("from->in.is[2]")
    assert isinstance(tree, Index)
    assert isinstance(tree.operand, Member) and tree.operand.member == "is" and not tree.operand.arrow
    inner = tree.operand.operand
    assert isinstance(inner, Member) and inner.member == "in" and inner.arrow
    assert inner.operand == Name(1, "from")


def test_precedence_follows_c() -> None:
    tree = p("a + b * c << 1 == d && !e || f")
    assert isinstance(tree, Binary) and tree.op == "||"
    assert isinstance(tree.left, Binary) and tree.left.op == "&&"
    eq = tree.left.left
    assert isinstance(eq, Binary) and eq.op == "=="
    shift = eq.left
    assert isinstance(shift, Binary) and shift.op == "<<"
    add = shift.left
    assert isinstance(add, Binary) and add.op == "+"
    assert isinstance(add.right, Binary) and add.right.op == "*"
    assert isinstance(tree.left.right, Unary) and tree.left.right.op == "!"


def test_left_associativity() -> None:
    tree = p("a - b - c")
    assert isinstance(tree, Binary) and isinstance(tree.left, Binary)
    assert tree.left.left == Name(1, "a")


def test_conditional_is_right_associative() -> None:
    tree = p("a ? b : c ? d : e")
    assert isinstance(tree, Conditional)
    assert isinstance(tree.otherwise, Conditional)


def test_casts_with_struct_pointer_and_builtin_words() -> None:
    tree = p("(struct labbug_device *)0xffffffffc03f1060")
    assert isinstance(tree, Cast)
    assert tree.type == TypeName("struct labbug_device", ("*",), 2)
    assert tree.type.spelling() == "struct labbug_device *"
    assert isinstance(tree.operand, Number) and tree.operand.value == 0xFFFFFFFFC03F1060
    tree = p("(unsigned long int)x")
    assert isinstance(tree, Cast) and tree.type.base == "unsigned long"
    tree = p("(const char __user *)ubuf")
    assert isinstance(tree, Cast) and tree.type.spelling() == "char *"
    tree = p("(long long unsigned)1")
    assert isinstance(tree, Cast) and tree.type.base == "unsigned long long"


def test_cast_only_when_identifier_is_a_type() -> None:
    assert isinstance(p("(u64)x"), Cast)
    tree = p("(x) - 1")
    assert isinstance(tree, Binary) and tree.op == "-"
    assert isinstance(p("(pid_t)-1"), Cast)


def test_sizeof_forms() -> None:
    tree = p("sizeof(struct task_struct)")
    assert isinstance(tree, SizeofType) and tree.type.base == "struct task_struct"
    assert isinstance(p("sizeof(x)"), SizeofExpr)
    assert isinstance(p("sizeof *p"), SizeofExpr)
    tree = p("sizeof(char [16])")
    assert isinstance(tree, SizeofType) and tree.type.declarator == ("[16]",)


def test_kernel_builtins() -> None:
    tree = p("container_of(node, struct task_struct, se.run_node)")
    assert isinstance(tree, Builtin) and tree.name == "container_of"
    assert tree.type is not None and tree.type.base == "struct task_struct"
    assert tree.designator == "se.run_node"
    tree = p("per_cpu(runqueues, 1).nr_running")
    assert isinstance(tree, Member) and isinstance(tree.operand, Builtin)
    assert p("offsetof(struct foo, a[3].b)") == Builtin(
        1, "offsetof", (), TypeName("struct foo", (), 10), "a[3].b"
    )


def test_literals() -> None:
    assert p("0x10") == Number(1, 16, "int")
    assert p("010") == Number(1, 8, "int")
    assert p("0b101") == Number(1, 5, "int")
    assert p("4294967295") == Number(1, 4294967295, "long")
    assert p("0xffffffff") == Number(1, 0xFFFFFFFF, "unsigned int")
    assert p("1UL") == Number(1, 1, "unsigned long")
    assert p("0xffffffffc03f1060") == Number(1, 0xFFFFFFFFC03F1060, "unsigned long")
    assert p(r"'\n'") == Number(1, 10, "char")
    assert p(r"'\x41'") == Number(1, 65, "char")


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", None, "empty expression"),
        ("a +", 4, "expected an operand"),
        ("a->", 4, "expected a member name"),
        ("(a", 3, "expected ')'"),
        ("a b", 3, "unexpected 'b'"),
        ("a @ b", 3, "unexpected character '@'"),
        ("f(1)", 2, "function calls are not supported"),
        ('"x"', 1, "string literals"),
        ("09", 1, "octal"),
        ("12abc", 1, "malformed number"),
        ("container_of(a, b)", 17, "expected a type name"),
        ("(struct)x", 8, "expected a tag name"),
        ("0x1ffffffffffffffff", 1, "does not fit"),
        ("a ? b", 6, "expected ':'"),
    ],
)
def test_syntax_errors_name_the_column(text: str, column: int | None, fragment: str) -> None:
    with pytest.raises(CExprError) as info:
        p(text)
    assert info.value.column == column
    assert fragment in str(info.value)
    if column is not None:
        assert str(info.value).endswith(f"(column {column})")


# -- evaluation on a core-less program: drgn's C semantics, no memory ------------------------------


@pytest.fixture
def prog() -> drgn.Program:
    return drgn.Program(drgn.host_platform)


def test_evaluate_arithmetic_and_conversions(prog: drgn.Program) -> None:
    names = {"from": drgn.Object(prog, "int", 3), "x": drgn.Object(prog, "long", 10)}

    def ev(text: str) -> drgn.Object:
        return cexpr.evaluate(prog, text, names.get)

    assert ev("from + 1").value_() == 4
    assert ev("x * 2 + from").type_.name == "long"
    assert ev("(unsigned long)-1").value_() == 2**64 - 1
    assert ev("(char)300").value_() == 44
    assert ev("-1 >> 1").value_() == -1
    assert ev("x > 3 && from").value_() == 1
    assert ev("!from || 0").value_() == 0
    assert ev("1 ? from : x").value_() == 3
    assert ev("sizeof(long)").value_() == 8
    assert ev("sizeof x").value_() == 8
    assert ev("(int *)0x1000 + 2").value_() == 0x1008
    assert ev("(unsigned int)~0").value_() == 0xFFFFFFFF


def test_evaluate_errors(prog: drgn.Program) -> None:
    point = prog.struct_type(
        "point",
        8,
        [
            drgn.TypeMember(prog.int_type("int", 4, True), "x", 0),
            drgn.TypeMember(prog.int_type("int", 4, True), "y", 32),
        ],
    )
    names = {"pt": drgn.Object(prog, point, {"x": 1, "y": 2}), "n": drgn.Object(prog, "int", 0)}

    def err(text: str) -> str:
        with pytest.raises(CExprError) as info:
            cexpr.evaluate(prog, text, names.get)
        return str(info.value)

    assert cexpr.evaluate(prog, "pt.y", names.get).value_() == 2
    assert err("pt.z") == "'struct point' has no member 'z' (column 4)"
    assert err("pt->x") == "'->' needs a pointer, but the left side is 'struct point' (use '.') (column 5)"
    assert err("nosuch + 1") == "no symbol 'nosuch' in this frame or the kernel (column 1)"
    assert err("1 / n") == "division by zero (column 3)"
    assert err("*n") == "cannot dereference a value of type 'int' (column 1)"
    assert err("(struct nosuch *)0") == "unknown type 'struct nosuch' (column 2)"
    assert "cannot cast to 'long [2]'" in err("(long [2])1")
