"""Parse and evaluate C expressions on drgn Objects, for hover, watch and ``evaluateName``.

The editor sends C from C sources, and kernel C uses names that are Python keywords (``from``,
``in``, ``is``), so drgn's Python evaluation cannot serve hover. This module owns a small C front end:
a tokenizer, a Pratt parser producing a tree of :class:`Node`, and an evaluator that computes the tree
with drgn's own C semantics (``Object`` arithmetic, ``cast``, ``container_of``...).

Supported: identifiers (frame scope, then the kernel's globals and enumerators), integer and
character literals, ``.``, ``->``, ``[]``, unary ``* & - + ! ~``, casts to any type name the
dump's debug info knows (``(struct foo *)0x...``, ``(unsigned long)x``, typedefs), ``sizeof(type)``
and ``sizeof expr``, binary arithmetic, shifts, bitwise and logical operators, comparisons, ``?:``,
and the kernel's ``container_of(ptr, type, member)``, ``offsetof(type, member)``,
``per_cpu(var, cpu)`` and ``per_cpu_ptr(ptr, cpu)``.

Parsing needs to know which identifiers are type names (``(x) - 1`` is a cast only when ``x`` is a
typedef), so :func:`parse` takes an ``is_type_name`` predicate; :func:`evaluate` supplies one backed
by the program.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import drgn

from vmcore_dap.errors import UserError

__all__ = [
    "CExprError",
    "Node",
    "Number",
    "Name",
    "Member",
    "Index",
    "Unary",
    "Binary",
    "Conditional",
    "Cast",
    "SizeofType",
    "SizeofExpr",
    "Builtin",
    "TypeName",
    "tokenize",
    "parse",
    "evaluate",
    "Lookup",
]


class CExprError(UserError):
    """An expression that cannot be parsed or evaluated; the message names the column.

    :param message: what is wrong, without the position.
    :param column: 1-based column in the expression text, or ``None`` when it concerns the whole.
    """

    def __init__(self, message: str, column: int | None = None) -> None:
        self.reason = message
        self.column = column
        super().__init__(f"{message} (column {column})" if column is not None else message)


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One lexical token: ``kind`` is ``num``, ``char``, ``ident``, ``op`` or ``end``."""

    kind: str
    text: str
    column: int
    value: int = 0
    unsigned: bool = False
    longs: int = 0


_PUNCTUATORS = (
    "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
    "(", ")", "[", "]", ".", ",", "?", ":", "+", "-", "*", "/", "%", "&", "|", "^", "!", "~", "<", ">",
)  # fmt: skip
_NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)([uUlL]*)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHAR = re.compile(r"'(\\(?:x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)|[^\\'])'")
_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, '"': 34, "a": 7, "b": 8, "f": 12, "v": 11}


def _char_value(body: str) -> int:
    if not body.startswith("\\"):
        return ord(body)
    rest = body[1:]
    if rest.startswith("x"):
        return int(rest[1:], 16)
    if rest[0] in "01234567":
        return int(rest, 8) & 0xFF
    return _ESCAPES.get(rest, ord(rest))


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token.

    :raises CExprError: for a character that cannot start a token, or a malformed literal.
    """
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        col = i + 1
        if ch.isdigit():
            m = _NUMBER.match(text, i)
            assert m is not None
            digits, suffix = m.group(1), m.group(2).lower()
            end = m.end()
            if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                raise CExprError(f"malformed number '{text[i : end + 1]}'", col)
            if suffix.count("u") > 1 or suffix.replace("u", "") not in ("", "l", "ll"):
                raise CExprError(f"malformed integer suffix '{m.group(2)}'", col)
            if digits[:2].lower() == "0x":
                value = int(digits[2:], 16)
            elif digits[:2].lower() == "0b":
                value = int(digits[2:], 2)
            elif len(digits) > 1 and digits[0] == "0":
                if any(d in "89" for d in digits):
                    raise CExprError(f"invalid digit in octal number '{digits}'", col)
                value = int(digits, 8)
            else:
                value = int(digits)
            tokens.append(
                Token("num", m.group(0), col, value, unsigned="u" in suffix, longs=suffix.count("l"))
            )
            i = end
            continue
        if ch.isalpha() or ch == "_":
            m = _IDENT.match(text, i)
            assert m is not None
            tokens.append(Token("ident", m.group(0), col))
            i = m.end()
            continue
        if ch == "'":
            m = _CHAR.match(text, i)
            if m is None:
                raise CExprError("malformed character literal", col)
            tokens.append(Token("char", m.group(0), col, _char_value(m.group(1))))
            i = m.end()
            continue
        if ch == '"':
            raise CExprError("string literals are not supported in expressions", col)
        for punct in _PUNCTUATORS:
            if text.startswith(punct, i):
                tokens.append(Token("op", punct, col))
                i += len(punct)
                break
        else:
            raise CExprError(f"unexpected character '{ch}'", col)
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --------------------------------------------------------------------------------------------
# Syntax tree
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeName:
    """A C type name: a base (``struct foo``, ``unsigned long``, a typedef) and a declarator.

    ``declarator`` lists, from the base outwards, ``"*"`` for a pointer and ``"[N]"`` for an array.
    """

    base: str
    declarator: tuple[str, ...] = ()
    column: int = 0

    def spelling(self) -> str:
        """The type as C spells it (``struct foo *``, ``char [16]``)."""
        stars = "".join(d for d in self.declarator if d == "*")
        arrays = "".join(d for d in self.declarator if d != "*")
        text = self.base
        if stars:
            text += " " + stars
        if arrays:
            text += " " + arrays
        return text


@dataclass(frozen=True)
class Node:
    """Base of expression nodes; ``column`` is where the node's text starts (1-based)."""

    column: int


@dataclass(frozen=True)
class Number(Node):
    value: int
    type_name: str


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Member(Node):
    operand: Node
    member: str
    arrow: bool
    member_column: int = 0


@dataclass(frozen=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node
    op_column: int = 0


@dataclass(frozen=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Cast(Node):
    type: TypeName
    operand: Node


@dataclass(frozen=True)
class SizeofType(Node):
    type: TypeName


@dataclass(frozen=True)
class SizeofExpr(Node):
    operand: Node


@dataclass(frozen=True)
class Builtin(Node):
    """A kernel macro the evaluator implements: ``container_of``, ``offsetof``, ``per_cpu``..."""

    name: str
    args: tuple[Node, ...] = ()
    type: TypeName | None = None
    designator: str = ""


# Binding power of binary operators (higher binds tighter).
_BINARY: dict[str, int] = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}  # fmt: skip
_TERNARY_POWER = 0

_BASE_TYPE_WORDS = frozenset(
    {"void", "char", "short", "int", "long", "float", "double", "signed", "unsigned", "_Bool", "bool"}
)
_QUALIFIERS = frozenset({"const", "volatile", "restrict", "__restrict"})
# Sparse annotations expand to nothing when the kernel is compiled.
_ANNOTATIONS = frozenset({"__user", "__kernel", "__iomem", "__rcu", "__percpu", "__force", "__bitwise"})
_TAGS = frozenset({"struct", "union", "enum"})

#: Builtins and the shape of their arguments: "e" an expression, "t" a type, "m" a member designator.
_BUILTINS: dict[str, str] = {
    "container_of": "etm",
    "offsetof": "tm",
    "per_cpu": "ee",
    "per_cpu_ptr": "ee",
}


def _canonical_base(words: list[str]) -> str:
    """Order integer type words the way drgn names the type (``unsigned long``, ``long long``)."""
    if words == ["bool"]:
        return "_Bool"
    sign = [w for w in words if w in ("signed", "unsigned")]
    rest = [w for w in words if w not in ("signed", "unsigned")]
    if rest.count("long") and "int" in rest and "double" not in rest:
        rest.remove("int")
    if rest == ["short", "int"]:
        rest = ["short"]
    if not rest:
        rest = ["int"]
    if sign == ["signed"] and rest != ["char"]:
        sign = []
    return " ".join(sign + rest)


class _Parser:
    def __init__(self, text: str, is_type_name: Callable[[str], bool]) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.is_type_name = is_type_name

    # -- token helpers ------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "end":
            self.pos += 1
        return tok

    def at(self, text: str) -> bool:
        return self.tok.kind == "op" and self.tok.text == text

    def expect(self, text: str, what: str) -> Token:
        if not self.at(text):
            raise CExprError(f"expected '{text}' {what}, found {self.describe(self.tok)}", self.tok.column)
        return self.advance()

    @staticmethod
    def describe(tok: Token) -> str:
        return "the end of the expression" if tok.kind == "end" else f"'{tok.text}'"

    # -- types --------------------------------------------------------------------------------
    def starts_type(self, tok: Token) -> bool:
        if tok.kind != "ident":
            return False
        word = tok.text
        if word in _BASE_TYPE_WORDS or word in _QUALIFIERS or word in _TAGS or word in _ANNOTATIONS:
            return True
        return self.is_type_name(word)

    def type_name(self) -> TypeName:
        start = self.tok.column
        words: list[str] = []
        base: str | None = None
        while self.tok.kind == "ident":
            word = self.tok.text
            if word in _QUALIFIERS or word in _ANNOTATIONS:
                self.advance()
            elif word in _TAGS and base is None and not words:
                self.advance()
                if self.tok.kind != "ident":
                    raise CExprError(f"expected a tag name after '{word}'", self.tok.column)
                base = f"{word} {self.advance().text}"
            elif word in _BASE_TYPE_WORDS and base is None:
                words.append(self.advance().text)
            elif base is None and not words and self.is_type_name(word):
                base = self.advance().text
            else:
                break
        if base is None:
            if not words:
                raise CExprError(f"expected a type name, found {self.describe(self.tok)}", self.tok.column)
            base = _canonical_base(words)
        declarator: list[str] = []
        while True:
            if self.at("*"):
                self.advance()
                declarator.append("*")
            elif self.tok.kind == "ident" and (self.tok.text in _QUALIFIERS or self.tok.text in _ANNOTATIONS):
                self.advance()
            else:
                break
        while self.at("["):
            self.advance()
            if self.tok.kind != "num":
                raise CExprError("expected an array length in a type name", self.tok.column)
            declarator.append(f"[{self.advance().value}]")
            self.expect("]", "to close the array length")
        if self.at("("):
            raise CExprError("function pointer type names are not supported in casts", self.tok.column)
        return TypeName(base, tuple(declarator), start)

    # -- expressions --------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise CExprError("empty expression")
        node = self.expression(-1)
        if self.tok.kind != "end":
            raise CExprError(f"unexpected {self.describe(self.tok)} after the expression", self.tok.column)
        return node

    def expression(self, min_power: int) -> Node:
        left = self.unary()
        while True:
            tok = self.tok
            if tok.kind != "op":
                return left
            if tok.text == "?" and _TERNARY_POWER > min_power:
                self.advance()
                then = self.expression(-1)
                self.expect(":", "in a conditional expression")
                otherwise = self.expression(_TERNARY_POWER - 1)
                left = Conditional(left.column, left, then, otherwise)
                continue
            power = _BINARY.get(tok.text)
            if power is None or power <= min_power:
                return left
            self.advance()
            right = self.expression(power)
            left = Binary(left.column, tok.text, left, right, tok.column)

    def unary(self) -> Node:
        tok = self.tok
        if tok.kind == "op" and tok.text in ("-", "+", "!", "~", "*", "&"):
            self.advance()
            return Unary(tok.column, tok.text, self.unary())
        if tok.kind == "ident" and tok.text == "sizeof":
            self.advance()
            if self.at("(") and self.starts_type(self.peek()):
                self.advance()
                type_name = self.type_name()
                self.expect(")", "to close sizeof's type")
                return SizeofType(tok.column, type_name)
            return SizeofExpr(tok.column, self.unary())
        if self.at("(") and self.starts_type(self.peek()):
            self.advance()
            type_name = self.type_name()
            self.expect(")", "to close the cast")
            return Cast(tok.column, type_name, self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Node:
        tok = self.advance()
        if tok.kind == "num":
            return Number(tok.column, tok.value, _literal_type(tok))
        if tok.kind == "char":
            return Number(tok.column, tok.value, "char")
        if tok.kind == "ident":
            if tok.text in _BUILTINS and self.at("("):
                return self.builtin(tok)
            if tok.text in _TAGS or tok.text in _BASE_TYPE_WORDS:
                raise CExprError(f"unexpected type name '{tok.text}' (a cast needs parentheses)", tok.column)
            return Name(tok.column, tok.text)
        if tok.kind == "op" and tok.text == "(":
            inner = self.expression(-1)
            self.expect(")", "to close the parenthesis")
            return inner
        raise CExprError(f"expected an operand, found {self.describe(tok)}", tok.column)

    def builtin(self, name_tok: Token) -> Node:
        shape = _BUILTINS[name_tok.text]
        self.expect("(", f"after {name_tok.text}")
        args: list[Node] = []
        type_name: TypeName | None = None
        designator = ""
        for i, kind in enumerate(shape):
            if i:
                self.expect(",", f"between the arguments of {name_tok.text}()")
            if kind == "e":
                args.append(self.expression(-1))
            elif kind == "t":
                type_name = self.type_name()
            else:
                designator = self.designator()
        self.expect(")", f"to close {name_tok.text}() (it takes {len(shape)} arguments)")
        return Builtin(name_tok.column, name_tok.text, tuple(args), type_name, designator)

    def designator(self) -> str:
        if self.tok.kind != "ident":
            raise CExprError(f"expected a member name, found {self.describe(self.tok)}", self.tok.column)
        parts = [self.advance().text]
        while True:
            if self.at("."):
                self.advance()
                if self.tok.kind != "ident":
                    raise CExprError("expected a member name after '.'", self.tok.column)
                parts.append("." + self.advance().text)
            elif self.at("["):
                self.advance()
                if self.tok.kind != "num":
                    raise CExprError("expected a constant index in a member designator", self.tok.column)
                parts.append(f"[{self.advance().value}]")
                self.expect("]", "to close the index")
            else:
                return "".join(parts)

    def postfix(self, node: Node) -> Node:
        while True:
            if self.at("["):
                self.advance()
                index = self.expression(-1)
                self.expect("]", "to close the subscript")
                node = Index(node.column, node, index)
            elif self.at(".") or self.at("->"):
                op = self.advance()
                if self.tok.kind != "ident":
                    raise CExprError(
                        f"expected a member name after '{op.text}', found {self.describe(self.tok)}",
                        self.tok.column,
                    )
                member = self.advance()
                node = Member(node.column, node, member.text, op.text == "->", member.column)
            elif self.at("("):
                raise CExprError(
                    "function calls are not supported (the dump cannot run code)", self.tok.column
                )
            else:
                return node


def _literal_type(tok: Token) -> str:
    """Pick the type C gives an integer literal (C11 6.4.4.1, for an LP64 kernel)."""
    text = tok.text.lower()
    decimal = not (text.startswith(("0x", "0b")) or (len(text) > 1 and text[0] == "0" and text[1].isdigit()))
    short = tok.longs == 0
    if tok.unsigned:
        candidates = ([("unsigned int", 32)] if short else []) + [("unsigned long", 64)]
    elif decimal:
        candidates = ([("int", 31)] if short else []) + [("long", 63), ("unsigned long", 64)]
    else:
        candidates = ([("int", 31), ("unsigned int", 32)] if short else []) + [
            ("long", 63),
            ("unsigned long", 64),
        ]
    for name, bits in candidates:
        if tok.value < (1 << bits):
            return name
    raise CExprError(f"integer constant '{tok.text}' does not fit in 64 bits", tok.column)


def parse(text: str, is_type_name: Callable[[str], bool] = lambda _name: False) -> Node:
    """Parse ``text`` as one C expression.

    :param is_type_name: whether an identifier names a typedef (decides casts like ``(u64)x``).
    :raises CExprError: with the column of the first problem.
    """
    return _Parser(text, is_type_name).parse()


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

#: Returns the object an identifier names in the current scope, or ``None``.
Lookup = Callable[[str], "drgn.Object | None"]


@dataclass
class _Evaluator:
    prog: drgn.Program
    lookup_local: Lookup
    _type_cache: dict[str, bool] = field(default_factory=dict)

    def is_type_name(self, name: str) -> bool:
        known = self._type_cache.get(name)
        if known is None:
            known = False
            if self.lookup_local(name) is None:
                try:
                    self.prog.type(name)
                    known = True
                except LookupError:
                    known = False
            self._type_cache[name] = known
        return known

    def resolve_type(self, type_name: TypeName) -> drgn.Type:
        try:
            result = self.prog.type(type_name.base)
        except LookupError:
            raise CExprError(f"unknown type '{type_name.base}'", type_name.column) from None
        for part in type_name.declarator:
            if part == "*":
                result = self.prog.pointer_type(result)
            else:
                result = self.prog.array_type(result, int(part[1:-1]))
        return result

    def int_object(self, value: int | bool, type_name: str = "int") -> drgn.Object:
        return drgn.Object(self.prog, type_name, int(value))

    def name(self, node: Name) -> drgn.Object:
        found = self.lookup_local(node.name)
        if found is not None:
            return found
        try:
            return self.prog[node.name]
        except LookupError:
            raise CExprError(f"no symbol '{node.name}' in this frame or the kernel", node.column) from None

    def eval(self, node: Node) -> drgn.Object:
        try:
            return self._eval(node)
        except CExprError:
            raise
        except drgn.ObjectAbsentError:
            # drgn's error does not say which object, nor why it is absent: say both causes.
            raise CExprError(
                "the value is not available in this frame (optimized out, or in a register the "
                "unwinding could not recover)",
                node.column,
            ) from None
        except drgn.FaultError:
            raise
        except (TypeError, ValueError, ZeroDivisionError, drgn.OutOfBoundsError) as exc:
            raise CExprError(_clean(str(exc)), node.column) from None

    def _eval(self, node: Node) -> drgn.Object:  # noqa: C901 - one dispatch over node kinds
        if isinstance(node, Number):
            return self.int_object(node.value, node.type_name)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Member):
            return self.member(node)
        if isinstance(node, Index):
            base = self.eval(node.operand)
            index = self.eval(node.index)
            kind = base.type_.unaliased_kind()
            if kind not in (drgn.TypeKind.POINTER, drgn.TypeKind.ARRAY):
                base, index = index, base  # C allows 2[array]
                if base.type_.unaliased_kind() not in (drgn.TypeKind.POINTER, drgn.TypeKind.ARRAY):
                    raise CExprError(
                        f"cannot subscript a value of type '{base.type_.type_name()}'", node.column
                    )
            return base[_as_int(index, node.index.column)]
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Conditional):
            cond = self.eval(node.condition)
            return self.eval(node.then) if _truth(cond, node.condition.column) else self.eval(node.otherwise)
        if isinstance(node, Cast):
            target = self.resolve_type(node.type)
            operand = self.eval(node.operand)
            if target.unaliased_kind() in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION, drgn.TypeKind.ARRAY):
                raise CExprError(
                    f"cannot cast to '{target.type_name()}' (only to scalar and pointer types)", node.column
                )
            if operand.type_.unaliased_kind() == drgn.TypeKind.ARRAY:
                operand = operand.address_of_() if operand.address_ is not None else operand
                operand = drgn.cast(self.prog.pointer_type(operand.type_.type.type), operand)
            return drgn.cast(target, operand)
        if isinstance(node, SizeofType):
            return self.int_object(drgn.sizeof(self.resolve_type(node.type)), "unsigned long")
        if isinstance(node, SizeofExpr):
            return self.int_object(drgn.sizeof(self.eval(node.operand)), "unsigned long")
        if isinstance(node, Builtin):
            return self.builtin(node)
        raise AssertionError(f"unknown node {node!r}")

    def member(self, node: Member) -> drgn.Object:
        operand = self.eval(node.operand)
        kind = operand.type_.unaliased_kind()
        if node.arrow:
            if kind not in (drgn.TypeKind.POINTER, drgn.TypeKind.ARRAY):
                raise CExprError(
                    f"'->' needs a pointer, but the left side is '{operand.type_.type_name()}' (use '.')",
                    node.member_column,
                )
            target = operand.type_.unaliased().type
        else:
            if kind == drgn.TypeKind.POINTER:
                raise CExprError(
                    f"'.' needs a struct or union, but the left side is the pointer "
                    f"'{operand.type_.type_name()}' (use '->')",
                    node.member_column,
                )
            target = operand.type_
        if target.unaliased_kind() not in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION, drgn.TypeKind.CLASS):
            raise CExprError(
                f"'{target.type_name()}' is not a struct or union, so it has no member '{node.member}'",
                node.member_column,
            )
        if not target.unaliased().has_member(node.member):
            raise CExprError(f"'{target.type_name()}' has no member '{node.member}'", node.member_column)
        return operand.member_(node.member)

    def unary(self, node: Unary) -> drgn.Object:
        operand = self.eval(node.operand)
        op = node.op
        if op == "*":
            kind = operand.type_.unaliased_kind()
            if kind == drgn.TypeKind.ARRAY:
                return operand[0]
            if kind != drgn.TypeKind.POINTER:
                raise CExprError(
                    f"cannot dereference a value of type '{operand.type_.type_name()}'", node.column
                )
            pointee = operand.type_.unaliased().type
            if pointee.unaliased_kind() == drgn.TypeKind.VOID:
                raise CExprError(
                    "cannot dereference a 'void *' (cast it to a typed pointer first)", node.column
                )
            return operand[0]
        if op == "&":
            if operand.address_ is None:
                raise CExprError("cannot take the address of a value that is not in memory", node.column)
            return operand.address_of_()
        if op == "!":
            return self.int_object(not _truth(operand, node.operand.column))
        if op == "-":
            return -operand
        if op == "+":
            return +operand
        if op == "~":
            return ~operand
        raise AssertionError(op)

    def binary(self, node: Binary) -> drgn.Object:
        op = node.op
        left = self.eval(node.left)
        if op == "&&":
            return self.int_object(
                _truth(left, node.left.column) and _truth(self.eval(node.right), node.right.column)
            )
        if op == "||":
            return self.int_object(
                _truth(left, node.left.column) or _truth(self.eval(node.right), node.right.column)
            )
        right = self.eval(node.right)
        left, right = _decay(left), _decay(right)
        try:
            if op in ("==", "!=", "<", ">", "<=", ">="):
                result = {
                    "==": lambda: left == right,
                    "!=": lambda: left != right,
                    "<": lambda: left < right,
                    ">": lambda: left > right,
                    "<=": lambda: left <= right,
                    ">=": lambda: left >= right,
                }[op]()
                return self.int_object(bool(result))
            if op in ("/", "%") and _is_integer(right) and right.value_() == 0:
                raise CExprError("division by zero", node.op_column)
            return {
                "+": lambda: left + right,
                "-": lambda: left - right,
                "*": lambda: left * right,
                "/": lambda: left / right,
                "%": lambda: left % right,
                "<<": lambda: left << right,
                ">>": lambda: left >> right,
                "&": lambda: left & right,
                "|": lambda: left | right,
                "^": lambda: left ^ right,
            }[op]()
        except TypeError as exc:
            raise CExprError(
                f"invalid operands to '{op}' ('{left.type_.type_name()}' and '{right.type_.type_name()}'): "
                f"{_clean(str(exc))}",
                node.op_column,
            ) from None

    def builtin(self, node: Builtin) -> drgn.Object:
        if node.name == "container_of":
            assert node.type is not None
            ptr = _decay(self.eval(node.args[0]))
            if ptr.type_.unaliased_kind() != drgn.TypeKind.POINTER:
                raise CExprError("container_of() needs a pointer as its first argument", node.args[0].column)
            target = self.resolve_type(node.type)
            try:
                return drgn.container_of(ptr, target, node.designator)
            except LookupError as exc:
                raise CExprError(_clean(str(exc)), node.column) from None
        if node.name == "offsetof":
            assert node.type is not None
            target = self.resolve_type(node.type)
            try:
                return self.int_object(drgn.offsetof(target, node.designator), "unsigned long")
            except LookupError as exc:
                raise CExprError(_clean(str(exc)), node.column) from None
        from drgn.helpers.linux.percpu import per_cpu, per_cpu_ptr

        var = self.eval(node.args[0])
        cpu = _as_int(self.eval(node.args[1]), node.args[1].column)
        try:
            if node.name == "per_cpu":
                return per_cpu(var, cpu)
            return per_cpu_ptr(_decay(var), cpu)
        except LookupError as exc:
            raise CExprError(f"{node.name}(): {_clean(str(exc))}", node.column) from None


def _clean(message: str) -> str:
    return message.rstrip(".")


def _decay(obj: drgn.Object) -> drgn.Object:
    """Turn an array lvalue into a pointer to its first element, as C does in expressions."""
    if obj.type_.unaliased_kind() == drgn.TypeKind.ARRAY and obj.address_ is not None:
        return obj[0].address_of_()
    return obj


def _is_integer(obj: drgn.Object) -> bool:
    return obj.type_.unaliased_kind() in (drgn.TypeKind.INT, drgn.TypeKind.BOOL, drgn.TypeKind.ENUM)


def _as_int(obj: drgn.Object, column: int) -> int:
    if not _is_integer(obj):
        raise CExprError(f"expected an integer, got a value of type '{obj.type_.type_name()}'", column)
    return int(obj.value_())


def _truth(obj: drgn.Object, column: int) -> bool:
    try:
        return bool(obj)
    except TypeError:
        raise CExprError(
            f"a value of type '{obj.type_.type_name()}' cannot be used as a condition", column
        ) from None


def evaluate(prog: drgn.Program, text: str, lookup_local: Lookup | None = None) -> drgn.Object:
    """Evaluate the C expression ``text``.

    :param lookup_local: resolves names of the current scope (a frame's locals) before the program's
        globals; ``None`` for global scope only.
    :raises CExprError: for syntax errors, unknown names and members, and type errors.
    :raises drgn.FaultError: when the expression reads memory that is not in the dump.
    """
    evaluator = _Evaluator(prog, lookup_local or (lambda _name: None))
    tree = parse(text, evaluator.is_type_name)
    return evaluator.eval(tree)
