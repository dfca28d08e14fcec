"""crash commands that drgn 0.3 lacks or answers differently, added in our own namespace.

* ``dis [-l] [-r] [-u] <address|symbol> [count]``: disassembly as crash prints it (``0x… <f+off>:``
  followed by the instruction, ``-l`` puts the source line before each line change), on
  :mod:`vmcore_dap.dump.disassembly.disasm` (capstone); a symbol disassembles the whole function including
  GCC's split-off ``.cold`` part.
* ``struct -o <type>`` (member offsets, crash's layout) and ``struct -o <type> <address>``
  (member addresses); everything else of ``struct`` is drgn's.

Commands register into :data:`~vmcore_dap.dump.console.namespace.VMCORE_CRASH_NAMESPACE`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence
from typing import Any

import drgn
from drgn import Program, Type, TypeKind
from drgn.commands import CommandError, argument, custom_command, parse_shell_command

from vmcore_dap.dump.console.namespace import (
    VMCORE_CRASH_NAMESPACE,
    drgn_command_output,
    vmcore_crash_command,
)
from vmcore_dap.dump.disassembly.disasm import (
    Instruction,
    disassemble_at,
    disassemble_function,
    function_range,
)
from vmcore_dap.dump.kernel.panic import kernel_log_lines, panic_string
from vmcore_dap.dump.memory.page_filter import is_partial_dump

__all__ = ["format_struct_offsets"]

_INDENT = "    "  # gdb's ptype indents members by four spaces per level


def _guess_type(prog: Program, name: str, kind: str) -> Type:
    """Find ``name`` as a struct, a union or a typedef of one (as crash's ``struct``/``union`` do)."""
    candidates = [f"{kind} {name}"] if kind in ("struct", "union") else ["struct " + name, "union " + name]
    for spelled in candidates:
        try:
            return prog.type(spelled)
        except LookupError:
            pass
    try:
        found = prog.type(name)
    except LookupError:
        raise LookupError(f"invalid data structure reference: {name} (no such struct or union)") from None
    if found.unaliased_kind() not in (TypeKind.STRUCT, TypeKind.UNION):
        raise LookupError(f"invalid data structure reference: {name} is not a struct or union")
    return found


def _is_compound(t: Type) -> bool:
    return t.unaliased_kind() in (TypeKind.STRUCT, TypeKind.UNION)


def _declaration(member: drgn.TypeMember) -> str:
    text = member.type.variable_declaration(member.name or "")
    if member.bit_field_size is not None:
        text += f" : {member.bit_field_size}"
    return text + ";"


def _member_lines(t: Type, base_bits: int, depth: int) -> Iterator[tuple[int | None, str]]:
    """Yield (byte offset or None, declaration text with gdb's indentation) for each line of ``t``."""
    for member in t.unaliased().members or ():
        bits = base_bits + member.bit_offset
        mtype = member.type
        anonymous_type = (
            _is_compound(mtype) and mtype.unaliased().tag is None and mtype.kind != TypeKind.TYPEDEF
        )
        if anonymous_type:
            keyword = "union" if mtype.unaliased_kind() == TypeKind.UNION else "struct"
            yield None, _INDENT * depth + keyword + " {"
            yield from _member_lines(mtype, bits, depth + 1)
            yield None, _INDENT * depth + ("};" if member.name is None else f"}} {member.name};")
        else:
            yield bits // 8, _INDENT * depth + _declaration(member)


def format_struct_offsets(prog: Program, name: str, kind: str = "struct", address: int | None = None) -> str:
    """Format ``struct -o``: each member with its offset (or address), like crash 8.

    crash right-aligns ``[offset]`` in a column as wide as the struct's size printed in decimal plus
    four, and expands anonymous structs and unions in place (their members get offsets too).

    :param address: show ``[address]`` of each member of the object at ``address`` instead.
    """
    t = _guess_type(prog, name, kind)
    size = drgn.sizeof(t)
    width = len(str(size)) + 4
    out = [f"{t.unaliased().type_name()} {{"]
    for offset, text in _member_lines(t, 0, 1):
        body = text[3:]  # crash prints gdb's line from its fourth character
        if offset is None:
            out.append(" " * (len(str(size)) + 1) + text)
            continue
        mark = f"  [{offset + address:x}]" if address is not None else f"  [{offset}]"
        out.append(mark.rjust(width) + body)
    out.append("}")
    if address is None:
        out.append(f"SIZE: {size}")
    return "\n".join(out) + "\n"


_drgn_struct = VMCORE_CRASH_NAMESPACE.drgn_commands["struct"]
_drgn_union = VMCORE_CRASH_NAMESPACE.drgn_commands["union"]


def _split_offsets_flag(words: list[str]) -> tuple[bool, list[str]]:
    """Take ``-o`` out of crash-style flags (``-o``, ``-ox`` …) wherever it appears."""
    offsets = False
    rest: list[str] = []
    for word in words:
        if re.fullmatch(r"-[a-zA-Z]*o[a-zA-Z]*", word):
            offsets = True
            word = word.replace("o", "")
            if word == "-":
                continue
        rest.append(word)
    return offsets, rest


def _struct_or_union(kind: str, prog: Program, name: str, words: Sequence[str], **kwargs: Any) -> None:
    offsets, rest = _split_offsets_flag(list(words))
    kwargs.pop("parser", None)
    if not offsets:
        drgn_cmd = _drgn_struct if kind == "struct" else _drgn_union
        drgn_cmd.run(prog, name, rest, **kwargs)
        return
    positional = [a for a in rest if not a.startswith("-")]
    if not positional or len(positional) > 2:
        raise CommandError(f"usage: {kind} -o <{kind}_name> [address]")
    type_name = positional[0]
    if "." in type_name:
        raise CommandError(
            f"{kind} -o: offsets of one member are not supported (use {kind} -o <{kind}_name>)"
        )
    address = None
    if len(positional) == 2:
        try:
            address = int(positional[1], 16)
        except ValueError:
            try:
                address = prog.symbol(positional[1]).address
            except LookupError:
                raise CommandError(f"{kind} -o: invalid address or symbol: {positional[1]}") from None
    print(format_struct_offsets(prog, type_name, kind, address), end="")


def _offset_aware(kind: str) -> None:
    @custom_command(
        name=kind,
        description=f"{kind} contents, or its member offsets with -o",
        usage=f"**{kind}** [**-o**] *{kind}_name*[.*member*] [*address_or_symbol*] [*options*]",
        long_description=f"""
        Without -o this is drgn's ``{kind}`` command (options -x, -d, -c, -l, --drgn).
        With -o, show each member's offset (or, given an address, its address) as crash does.
        """,
        arguments=(
            argument("-o", dest="offsets", action="store_true", help="show member offsets"),
            argument("-x", action="store_true", help="integers in hexadecimal"),
            argument("-d", action="store_true", help="integers in decimal"),
            argument("-c", metavar="count", help="number of consecutive objects"),
            argument("-l", metavar="offset", help="offset of the address within the object"),
            argument("name", help=f"{kind} name, optionally .member[,member]"),
            argument("address_or_symbol", nargs="?", help="address or symbol of the object"),
        ),
        parse=parse_shell_command,
        namespace=VMCORE_CRASH_NAMESPACE,
    )
    def _cmd(prog: Program, name: str, words: Sequence[str], **kwargs: Any) -> None:
        _struct_or_union(kind, prog, name, words, **kwargs)


_offset_aware("struct")
_offset_aware("union")


# -- dis ----------------------------------------------------------------------------------------


_SYMBOL_HEX_OFFSET = re.compile(r"<([^<>+]+)\+0x([0-9a-f]+)>")
_IMMEDIATE = re.compile(r"\$(-?\d+)\b")
_DISPLACEMENT = re.compile(r"(?<![\w$:])(-?\d+)(?=\()")


def _hex(match: re.Match[str], prefix: str = "") -> str:
    value = int(match.group(1))
    return f"{prefix}-{-value:#x}" if value < 0 else f"{prefix}{value:#x}"


def _gdb_operands(op_str: str) -> str:
    """Write capstone's AT&T operands as gdb (hence crash) does.

    gdb: no space after commas, numbers in hex (``$0x1``, ``0x8(%rax)``), ``<f+235>`` offsets in
    decimal. Scale factors inside ``(…,…,8)`` stay decimal.
    """
    code, sep, comment = op_str.partition("  #")
    code = code.replace(", ", ",")
    code = _IMMEDIATE.sub(lambda m: _hex(m, "$"), code)
    code = _DISPLACEMENT.sub(_hex, code)
    text = code + (f"        #{comment}" if sep else "")
    return _SYMBOL_HEX_OFFSET.sub(lambda m: f"<{m.group(1)}+{int(m.group(2), 16)}>", text)


def format_instruction(insn: Instruction) -> str:
    """One line as crash's ``dis`` prints it: ``0x… <func+off>:\\tmnemonic operands``.

    crash shows gdb's output: the offset after the function name is decimal, the mnemonic is
    padded to six columns.
    """
    where = ""
    if insn.symbol is not None:
        name, _, off = insn.symbol.rpartition("+")
        where = f" <{name}+{int(off, 16)}>"
    text = f"{insn.mnemonic:<6} {_gdb_operands(insn.op_str)}".rstrip() if insn.op_str else insn.mnemonic
    return f"{insn.address:#x}{where}:\t{text}"


def _resolve_dis_target(prog: Program, text: str) -> tuple[int, bool]:
    """Return (address, names a function start) for ``dis``'s argument: hex address, symbol, symbol+off."""
    name, plus, off = text.partition("+")
    try:
        if plus:
            offset = int(off, 0)
        else:
            offset = 0
    except ValueError:
        raise CommandError(
            f"dis: invalid offset in {text!r} (use symbol+offset, e.g. schedule+0x10)"
        ) from None
    try:
        sym = prog.symbol(name)
    except LookupError:
        sym = None
    if sym is not None:
        return sym.address + offset, offset == 0
    if not plus:
        try:
            address = int(text, 16)
        except ValueError:
            raise CommandError(
                f"dis: symbol not found: {text} (give a function name or a hex address)"
            ) from None
        found = function_range(prog, address)
        return address, found is not None and found[0] == address
    raise CommandError(f"dis: symbol not found: {name}")


def _dis(prog: Program, args: argparse.Namespace) -> list[str]:
    if args.user:
        raise CommandError("dis -u: user-space disassembly is not supported on a kernel dump")
    address, at_function_start = _resolve_dis_target(prog, args.target)
    count = args.count
    if count is not None and count <= 0:
        raise CommandError(f"dis: invalid count argument: {count}")
    if args.reverse or args.forward or (count is None and at_function_start):
        whole = disassemble_function(prog, address)
        if not whole:
            raise CommandError(f"dis: cannot disassemble {address:#x}: no function covers it")
        # -r and -f stay within the part (main or .cold) that holds the address, as crash's symbol does.
        part = next((i.function for i in whole if i.address <= address < i.end), None)
        if args.reverse:
            insns = [i for i in whole if i.address <= address and i.function == part]
        elif args.forward:
            insns = [i for i in whole if i.address >= address and i.function == part]
        else:
            insns = whole
    else:
        if function_range(prog, address) is None:
            raise CommandError(f"dis: {address:#x}: no associated kernel symbol found")
        insns = disassemble_at(prog, address, 0, count or 1)
    if insns and all(i.invalid and not i.bytes for i in insns):  # unreadable (not merely undecodable)
        raise CommandError(f"dis: cannot read memory at {address:#x}: {insns[0].reason or 'not in the dump'}")
    lines: list[str] = []
    last_source = None
    for insn in insns:
        if args.lines and insn.file is not None and insn.line is not None:
            source = f"{insn.file}: {insn.line}"
            if source != last_source:
                lines.append(source)
                last_source = source
        lines.append(format_instruction(insn))
    return lines


@vmcore_crash_command(
    name="dis",
    description="disassemble a function or instructions (capstone; crash's format)",
    long_description="""
    Disassemble the function named by a symbol (with its GCC .cold part), or count instructions
    at an address (one when no count is given; the whole function when the address is its start).
    """,
    arguments=(
        argument(
            "-l", dest="lines", action="store_true", help="show source file and line before each change"
        ),
        argument("-r", dest="reverse", action="store_true", help="from the function start up to the address"),
        argument("-f", dest="forward", action="store_true", help="from the address to the function end"),
        argument("-u", dest="user", action="store_true", help="user-space address (not supported)"),
        argument("-x", dest="hex", action="store_true", help="(accepted for crash compatibility)"),
        argument("-d", dest="dec", action="store_true", help="(accepted for crash compatibility)"),
        argument("target", metavar="address|symbol[+offset]", help="hex address or symbol"),
        argument("count", nargs="?", type=int, help="number of instructions"),
    ),
)
def _crash_cmd_dis(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    for line in _dis(prog, args):
        print(line)


# -- sys ----------------------------------------------------------------------------------------


def crash_panic_message(prog: Program) -> str | None:
    """The PANIC line crash's ``sys`` prints (the rule lives in :mod:`vmcore_dap.dump.kernel.panic`)."""
    return panic_string(kernel_log_lines(prog))


def _crash_memory_size(prog: Program) -> str:
    """crash's MEMORY: present pages of all nodes, rounded up to a GiB when within 64 MiB of it."""
    from drgn.helpers.linux.nodemask import for_each_online_node

    try:
        pgdats = [prog["node_data"][nid] for nid in for_each_online_node(prog)]
    except KeyError:  # !CONFIG_NUMA
        pgdats = [prog["contig_page_data"].address_of_()]
    pages = sum(p.node_present_pages.value_() for p in pgdats)
    total = pages * prog["PAGE_SIZE"].value_()
    gib, mib = 1 << 30, 1 << 20
    next_gig = -(-total // gib) * gib
    if next_gig - total <= 64 * mib:
        total = next_gig
    if total >= gib:
        text = f"{total / gib:.1f} GB"
    elif total >= mib:
        text = f"{total / mib:.1f} MB"
    else:
        text = f"{total // 1024} KB"
    return text.replace(".0 ", " ")


#: ``NSEC_PER_SEC << NTP_SCALE_SHIFT``: one second in the NTP code's scaled nanoseconds.
_SCALED_SECOND = 1_000_000_000 << 32


def kernel_hz(prog: Program) -> int:
    """The kernel's ``CONFIG_HZ``, from the NTP code's tick length (kernel/time/ntp.c).

    Up to v6.12 ``tick_nsec`` is ``NSEC_PER_SEC / HZ``. v6.13 removed it ("ntp: Remove unused
    tick_nsec", a849a0273d0f) and moved ``tick_length_base`` (one second over
    ``NTP_INTERVAL_FREQ``, which is HZ) into ``struct ntp_data tk_ntp_data`` ("ntp: Move
    tick_length* into ntp_data"), an array of one per timekeeper by 7.2:
    HZ is one scaled second over it, rounded (NTP's frequency correction moves it by parts per
    million).
    """
    try:
        return round(1_000_000_000 / prog["tick_nsec"].value_())
    except KeyError:
        pass
    data = prog["tk_ntp_data"]
    if data.type_.unaliased_kind() == TypeKind.ARRAY:
        data = data[0]  # TIMEKEEPER_CORE
    return round(_SCALED_SECOND / data.tick_length_base.value_())


def crash_uptime_seconds(prog: Program) -> int:
    """Uptime as crash computes it: jiffies since boot, whole seconds.

    crash counts ``jiffies_64 - INITIAL_JIFFIES`` and divides by HZ, truncating; drgn's ``sys``
    reads the timekeeper's boot time instead, which can be one second ahead at the instant of a
    crash. HZ is not a symbol: :func:`kernel_hz`.
    """
    hz = kernel_hz(prog)
    initial_jiffies = (-300 * hz) & 0xFFFFFFFF  # include/linux/jiffies.h: (unsigned int)(-300*HZ)
    return (prog["jiffies_64"].value_() - initial_jiffies) // hz


def crash_load_average(prog: Program) -> str:
    """LOAD AVERAGE as crash (and ``/proc/loadavg``) prints it: each ``avenrun`` fixed-point value
    plus ``FIXED_1/200``, integer and hundredths truncated (include/linux/sched/loadavg.h). drgn's
    ``sys`` rounds the quotient instead, one hundredth off at a boundary (0.145 → 0.15, crash 0.14).
    """
    fshift = 11  # FSHIFT, unchanged since v2.6
    fixed_1 = 1 << fshift
    values = []
    for load in (prog["avenrun"][i].value_() + fixed_1 // 200 for i in range(3)):
        values.append(f"{load >> fshift}.{((load & (fixed_1 - 1)) * 100) >> fshift:02}")
    return ", ".join(values)


def _format_uptime(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    clock = f"{rest // 3600:02}:{rest // 60 % 60:02}:{rest % 60:02}"
    return f"{days} days, {clock}" if days else clock


def _fix_sys_line(prog: Program, line: str) -> str:
    key, sep, value = line.partition(": ")
    name = key.strip()
    try:
        if name == "DUMPFILE" and is_partial_dump(prog) and "[PARTIAL DUMP]" not in value:
            return f"{line}  [PARTIAL DUMP]"
        if name == "MEMORY":
            return f"{key}{sep}{_crash_memory_size(prog)}"
        if name == "UPTIME":
            return f"{key}{sep}{_format_uptime(crash_uptime_seconds(prog))}"
        if name == "LOAD AVERAGE":
            return f"{key}{sep}{crash_load_average(prog)}"
        if name == "PANIC":
            message = crash_panic_message(prog)
            if message is not None:
                note = " (check log for details)" if "Oops: " in message else ""
                return f'{key}{sep}"{message}"{note}'
    except (LookupError, drgn.FaultError, ValueError):
        return line  # keep drgn's answer when the dump lacks what crash's rule reads
    return line


_drgn_sys = VMCORE_CRASH_NAMESPACE.drgn_commands["sys"]


@custom_command(
    name="sys",
    description="system data (crash's DUMPFILE, UPTIME, LOAD AVERAGE, MEMORY and PANIC rules)",
    usage="**sys** [drgn's sys options]",
    long_description="""
    drgn's ``sys``, with five fields computed as crash computes them: DUMPFILE is marked
    [PARTIAL DUMP] for a makedumpfile-filtered dump, UPTIME counts jiffies, LOAD AVERAGE truncates
    as /proc/loadavg does, MEMORY counts present pages, and PANIC is the first of crash's known
    panic messages found in the kernel log.
    """,
    parse=parse_shell_command,
    namespace=VMCORE_CRASH_NAMESPACE,
)
def _crash_cmd_sys(prog: Program, name: str, words: Sequence[str], **kwargs: Any) -> None:
    kwargs.pop("parser", None)
    if words:  # sys -c, sys -i … : drgn's as they are
        _drgn_sys.run(prog, name, words, **kwargs)
        return
    for line in drgn_command_output(_drgn_sys, prog, name, words, **kwargs).splitlines():
        print(_fix_sys_line(prog, line))
