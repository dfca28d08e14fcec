"""Read what crash's (and our console's) data-structure commands print: ``list``, ``tree``, ``kmem -s
ADDR``/``kmem ADDR`` and ``p var:a``.

Both outputs are made comparable rather than equal: gdb prints ``pid = 1,`` and ``data =
0xffff… <labuaf_values>,`` where drgn prints ``pid = (pid_t)1`` and ``data = (const int
*)labuaf_values+0x0 = 0xffff…``; a string is compared up to its NUL, a number as an integer, a
pointer as its address.
"""

from __future__ import annotations

import re

__all__ = ["entries", "kmem_object", "member_value", "per_cpu_values"]

_ADDRESS_LINE = re.compile(r"^([0-9a-f]{8,16})$")
# crash: "  pid = 1," / '  comm = "init\000…",'; drgn: "  pid = (pid_t)1" / '  comm = (char [16])"init"'
_MEMBER_LINE = re.compile(r"^\s+([\w.]+) = (?:\([^)]*\))?(.*?),?$")
# A pointer: drgn's "labuaf_values+0x4 = 0xffff…", gdb's "0xffff… <labuaf_values+4>".
_DRGN_POINTER = re.compile(r"^\S+ = (0x[0-9a-f]+)$")
_GDB_POINTER = re.compile(r"^(0x[0-9a-f]+) <[^<>]+>$")


def member_value(text: str) -> str:
    """A member's value with gdb's and drgn's spellings made one: strings up to their NUL, numbers
    as integers, pointers as their address."""
    text = re.sub(r"^\([^)]*\)", "", text.strip())  # drgn's "(u64)" before the value
    if text.startswith('"'):
        return text[1:].split("\\000", 1)[0].rstrip('"')
    pointer = _DRGN_POINTER.match(text) or _GDB_POINTER.match(text)
    if pointer:
        text = pointer[1]
    try:
        return str(int(text, 0))
    except ValueError:
        return text


def entries(output: str) -> list[tuple[int, dict[str, str]]]:
    """``list``/``tree`` output as ``[(address, {member: value})]`` in order."""
    result: list[tuple[int, dict[str, str]]] = []
    for line in output.splitlines():
        address = _ADDRESS_LINE.match(line.strip())
        if address and not line.startswith(" "):
            result.append((int(address[1], 16), {}))
            continue
        member = _MEMBER_LINE.match(line)
        if member and result:
            result[-1][1][member[1]] = member_value(member[2])
    return result


_KMEM_CACHE_ROW = re.compile(r"^[0-9a-f]{16}\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+k\s+(\S+)$", re.M)
_KMEM_OBJECT = re.compile(r"FREE / \[ALLOCATED\]\n\s+(\[?)([0-9a-f]+)\]?")


def kmem_object(output: str) -> tuple[str, int, bool]:
    """``kmem ADDR`` / ``kmem -s ADDR`` of a slab object: (cache name, object address, allocated)."""
    cache = _KMEM_CACHE_ROW.search(output)
    found = _KMEM_OBJECT.search(output)
    assert cache and found, output
    return cache[1], int(found[2], 16), found[1] == "["


_PER_CPU = re.compile(r"^per_cpu\((\w+), (\d+)\) = (?:\$\d+ = |\([^)]*\))?(.*)$", re.M)


def per_cpu_values(output: str) -> list[tuple[str, int, str]]:
    """``p var:a`` as ``[(variable, cpu, value)]``."""
    return [(variable, int(cpu), member_value(value)) for variable, cpu, value in _PER_CPU.findall(output)]
