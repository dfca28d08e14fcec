"""Which crash reads which dump, with which flags, and what its answers are worth: one table.

Every kernel or architecture difference in how the oracle runs crash is a row of
:data:`CRASH_TABLE`, with the failure it avoids as measured on this project's samples. The first
row that matches a dump wins. The dump is described by :class:`DumpFacts`, read from the dump
itself (drgn: its architecture and VMCOREINFO) and from how the sample was made (a kdump or a
QEMU ``dump-guest-memory``).

A row can also say that crash cannot open a kind of dump at all (``opens=False``), or that some
of its answers are missing or not to be trusted (``missing``, ``distrusted``): the oracle records
both in each sample's metadata, so a test states which oracle it used for what.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from samples.sample_store import Sample

__all__ = ["CRASH_TABLE", "CrashChoice", "CrashRow", "DumpFacts", "choose_crash", "dump_facts"]

#: arm64 kernels with 52-bit VAs on 4K pages (LPA2, Linux 6.9 "arm64: Enable LPA2 at boot if
#: supported by the system", 352b0395b505) put the linear map where crash 8.0.x/9.0.x do not
#: expect it; crash reads it right when told PHYS_OFFSET + this (the notes of kernel-matrix.md).
_LPA2_PHYS_OFFSET_BIAS = 0x000F000000000000


@dataclass(frozen=True)
class DumpFacts:
    """What the choice of crash depends on.

    :param arch: drgn's name of the dump's architecture (``X86_64``, ``AARCH64``).
    :param release: ``uname -r`` of the crashed kernel (VMCOREINFO ``OSRELEASE``).
    :param origin: ``kdump`` (the crashed kernel's own /proc/vmcore, raw or via makedumpfile) or
        ``qemu`` (the host's ``dump-guest-memory`` of a running guest).
    :param dump_level: makedumpfile's ``-d`` for the file (None: a raw /proc/vmcore or QEMU ELF).
    :param vmcoreinfo: the dump's VMCOREINFO, key -> value.
    """

    arch: str
    release: str
    origin: str
    dump_level: int | None = None
    vmcoreinfo: dict[str, str] = field(default_factory=dict)

    @property
    def kernel(self) -> tuple[int, int]:
        """(major, minor) of the kernel: ``7.2.13+deb14-cloud-amd64`` -> (7, 2)."""
        m = re.match(r"(\d+)\.(\d+)", self.release)
        if m is None:
            raise ValueError(f"kernel release '{self.release}' does not start with a version")
        return int(m.group(1)), int(m.group(2))

    @property
    def va_bits(self) -> int | None:
        value = self.vmcoreinfo.get("NUMBER(VA_BITS)")
        return int(value) if value is not None else None

    def number(self, name: str) -> int:
        """A ``NUMBER(name)`` of VMCOREINFO (crash and the kernel print them in decimal or hex)."""
        value = self.vmcoreinfo[f"NUMBER({name})"]
        return int(value, 16) if not value.lstrip("-").isdigit() else int(value)


@dataclass(frozen=True)
class CrashRow:
    """One row of the table: which dumps (``arch``, kernel range, ``origin``, ``va_bits``) get which
    crash build with which ``flags``, and ``why`` (the failure it avoids, measured).

    :param kernels: ``(first, last)`` kernel (major, minor), both included; ``None`` = any.
    :param dump_level: only dumps makedumpfile wrote with this ``-d``; ``None`` = any.
    :param build: a build id of ``crash_builds.BUILD_LINES``.
    :param flags: extra command-line arguments; a callable gets the :class:`DumpFacts`.
    :param opens: ``False`` when even this build and these flags cannot open such a dump (``why``
        says how it fails); tests check that it still does.
    :param exception_entries: the kernel's exception-vector functions after which crash's ``bt``
        lists the interrupted frame with no ``[exception RIP: …]`` block (arm64).
    :param pc_bias: what to add to the address crash prints for a frame to get its return
        address (or, for an interrupted frame, its PC).
    :param missing: answer name -> why crash cannot give it on such dumps.
    :param distrusted: answer name (``sys``, or ``sys:DATE`` for one field of it) -> why it is wrong.
    """

    arch: str
    why: str
    build: str
    kernels: tuple[tuple[int, int], tuple[int, int]] | None = None
    origin: str | None = None
    dump_level: int | None = None
    va_bits: int | None = None
    flags: tuple[str | Callable[[DumpFacts], str], ...] = ()
    missing: dict[str, str] = field(default_factory=dict)
    distrusted: dict[str, str] = field(default_factory=dict)
    opens: bool = True
    exception_entries: frozenset[str] = frozenset()
    pc_bias: int = 0

    def matches(self, facts: DumpFacts) -> bool:
        if facts.arch != self.arch:
            return False
        if self.kernels is not None and not self.kernels[0] <= facts.kernel <= self.kernels[1]:
            return False
        if self.origin is not None and facts.origin != self.origin:
            return False
        if self.dump_level is not None and facts.dump_level != self.dump_level:
            return False
        return self.va_bits is None or facts.va_bits == self.va_bits


def _lpa2_phys_offset(facts: DumpFacts) -> str:
    return f"phys_offset={facts.number('PHYS_OFFSET') + _LPA2_PHYS_OFFSET_BIAS:#x}"


_ANY_KERNEL = ((0, 0), (99, 99))

#: The table. Rows are tried in order; the first that matches a dump decides.
#: Back-trace answers, each of which lists the frames of one or more tasks.
_BACK_TRACES = ("bt", "bt-a", "bt-l", "foreach-bt")

_CRASH_806_WHY = (
    "crash 8.0.6 (Debian 13's package) reads 5.10 to 6.12 kdumps; Debian 12's own 8.0.2 cannot list "
    "tasks on current 6.1 kernels ('TASKS: 4' since the backported 'pid: Replace struct pid 1-element "
    "array with flex-array'); on 6.1 its answers are byte-identical to those of crash 8.0.6 built from "
    "source"
)

#: crash counts jiffies at HZ=1000 on these kernels, whose HZ is 250: (jiffies_64 - INITIAL_JIFFIES)
#: / 250 is the log's last timestamp, the same / 1000 is crash's UPTIME.
_WRONG_HZ = {
    "sys:UPTIME": (
        "crash's UPTIME counts jiffies as if HZ were 1000; the kernel's HZ is 250 (sysrq-c of 6.12.118 and "
        "of 7.2.13: UPTIME 00:03:48, the log's last line at 13.5 s and 14.1 s, as jiffies over 250 gives)"
    ),
    "log-T": "log -T dates each line from that UPTIME: 3 min 35 s before DATE on sysrq-c of 6.12.118",
}

#: What crash 8.0.6 gets wrong in the code of 6.12's modules (measured on oops-null and list-uaf of
#: 6.12.118; on 5.10 and 6.1 it reads the same modules right). crash cannot read 6.12's
#: ``module_sect_attrs`` ("module section data structures unrecognized or changed") and gives its
#: gdb 10.2 the sections it computes (symbols.c ``calculate_load_order_6_4``); the addresses are
#: right, yet gdb (13.1 alike) lays the line tables of ``.text.unlikely`` and ``.init.text`` over
#: ``.text``. A test's other oracle: binutils on the .ko (tests/helpers/ko_lines.py), the manifest.
_MODULE_LINES_WHY = (
    "crash 8.0.6's gdb lays a 6.12 module's .text.unlikely and .init.text line tables over its .text: "
    "at .text+n it names the line another code section has at +n (list-uaf of 6.12.118: the fault at "
    "labuaf_walk+148 on labuaf.c:202, .text.unlikely's row, where addr2line -j .text, drgn and the "
    "guest say 184; oops-null: labbug.c:348 at labbug_walk+35, .text's row is 126)"
)
_MODULE_CODE_DISTRUSTED = {
    **{f"{name}:module-lines": _MODULE_LINES_WHY for name in ("bt-l", "dis-l", "dis-rl", "dis-func")},
    "dis-func:module-extent": (
        "dis -l <module function> stops where the overlaid .text.unlikely ends: labbug_walk at +47 of "
        "its 448 bytes on oops-null of 6.12.118, labuaf_walk at +13 of 164 on list-uaf"
    ),
}

#: arm64's exception vectors after which a back trace continues in the interrupted context (as
#: 6.12's arch/arm64/kernel/entry.S names them): those taken in the kernel, where crash's bt lists
#: the interrupted function next, without a register block, and the interrupts taken in user mode
#: (the stop IPI of a CPU running user code), after which nothing of the kernel stack is left. Not
#: el0t_64_sync: a system call's entry is the outermost frame of its kernel stack.
_ARM64_EXCEPTION_VECTORS = frozenset(
    {
        "el1h_64_sync",
        "el1h_64_irq",
        "el1h_64_fiq",
        "el1h_64_error",
        "el0t_64_irq",
        "el0t_64_fiq",
        "el0t_64_error",
    }
)

#: What crash 9.0.2 gets wrong on arm64 (measured on sysrq-c and oops-null of 6.12.118).
_ARM64_DISTRUSTED = {
    "sys:UPTIME": (
        "crash 9.0.2 prints UPTIME '2135039823346 days, 00:11:33' on arm64 6.12.118 (the log ends at 11.6 s)"
    ),
    "log-T": "log -T dates lines from that UPTIME: '[-184467438940667859]' on arm64 6.12.118",
    "bt-l:exception-line": (
        "bt -l looks the interrupted frame up at PC - 4, the instruction before the faulting one: "
        "labbug.c:119 for the fault at labbug.c:116 on oops-null of arm64 6.12.118 (dis -l at the PC is "
        "right)"
    ),
    **{
        f"{name}:outermost": (
            "crash's arm64 back trace stops one frame early: kernel threads without ret_from_fork, the "
            "idle tasks without __primary_switched / __secondary_switched (drgn unwinds them)"
        )
        for name in ("bt-a", "foreach-bt")  # bt and bt -l: the panic task, a user task on these samples
    },
}

#: Why an LPA2 arm64 dump gets the arm64 crash with ``-m phys_offset=…`` (both arm64 LPA2 rows).
_ARM64_LPA2_WHY = (
    "arm64 dumps need an arm64 crash (an x86-64 one warns 'machine type mismatch' and exits): "
    "Debian's arm64 package, run under qemu-aarch64. 52-bit VA with 4K pages (LPA2, Debian's arm64 "
    "kernels; measured on 6.12.118): without -m phys_offset=<PHYS_OFFSET + 0xf000000000000> crash "
    "9.0.2 stops with 'read error: kernel virtual address: … type: \"IRQ stack pointer\"'"
)

#: crash 9.0.2 on QEMU's dump-guest-memory ELF of an arm64 guest: the tasks on CPUs get a header
#: and no frame (its arm64 bt returns silently without registers: BT_REGS_NOT_FOUND). QEMU writes
#: no "QEMU" note on arm64, so crash takes the file for a kdump's ELF; one CPU of two is online (the
#: stop IPI took CPU 1 offline), so it remaps the ELF's NT_PRSTATUS notes to the online CPUs whose
#: kernel crash_notes hold a note (netdump.c map_cpus_to_prstatus): none, as no kdump kernel ran
#: crash_save_cpu. Measured on sysrq-c+qemu-dump of 6.12.118: "WARNING: cpu 0: invalid NT_PRSTATUS
#: note (n_type != NT_PRSTATUS)", "cpu 0: / cpu 1: cannot find NT_PRSTATUS note"; help -D shows
#: nt_prstatus_percpu all NULL (num_prstatus_notes 2), help -m panic_task_regs 0.
_ARM64_QEMU_NO_ACTIVE_FRAMES = (
    "crash 9.0.2 lists no frame for the tasks on CPUs in QEMU's dump-guest-memory ELF of an arm64 "
    "guest (sysrq-c of 6.12.118: the panic task sh, in panic()'s mdelay loop, and swapper/1, parked "
    "by the stop IPI, are bare headers in bt, bt -a and foreach bt): with a CPU offline it keeps only "
    "the ELF's NT_PRSTATUS notes of online CPUs with a note in the kernel's crash_notes, which no "
    "kdump kernel filled ('cpu 0: cannot find NT_PRSTATUS note'); drgn unwinds both from the notes"
)

CRASH_TABLE: tuple[CrashRow, ...] = (
    CrashRow(
        arch="X86_64",
        kernels=((7, 0), (7, 99)),
        dump_level=31,
        build="sid-amd64",
        flags=("--no_modules",),
        opens=False,
        why=(
            "makedumpfile 1.7.2 and 1.7.8 do not support 7.x ('The kernel version is not supported') and "
            "at -d 31 drop the slab pages that hold the task and PID tables; crash 9.0.2 exits (status 1, "
            "no message) while 'gathering task table data' (measured on 7.2.13's sysrq-c, -d 31)"
        ),
    ),
    CrashRow(
        arch="X86_64",
        kernels=((5, 10), (6, 99)),
        origin="qemu",
        build="sid-amd64",
        why=(
            "QEMU's dump-guest-memory ELF of a running guest: crash 8.0.6 cannot open it ('invalid size "
            "request: 0 type: \"stack contents\"' / 'read of stack at fffffe0000014000 failed' while it "
            "sets up CPU 0's exception stacks; measured on 6.1.0-50, with or without --no_panic); "
            "crash 9.0.2 opens it and agrees with the guest's facts (measured on 6.1.0-50 and -57)"
        ),
        distrusted={
            f"{name}:running-user": (
                "a task QEMU stopped while it ran user code (no-panic's labspin): crash 9.0.2 lists "
                "stale frames of the kernel stack above its user registers (hrtimer_interrupt … "
                "asm_sysvec_apic_timer_interrupt, left by an earlier interrupt); it has no kernel frames"
            )
            for name in ("bt-a", "foreach-bt")
        },
    ),
    CrashRow(
        arch="X86_64",
        kernels=((5, 10), (6, 11)),
        build="trixie-amd64",
        why=_CRASH_806_WHY + " (measured on 5.10.251 and 6.1.192)",
    ),
    CrashRow(
        arch="X86_64",
        kernels=((6, 12), (6, 99)),
        build="trixie-amd64",
        why=_CRASH_806_WHY + " (measured on 6.12.118)",
        distrusted={
            **_WRONG_HZ,
            **_MODULE_CODE_DISTRUSTED,
            **{
                f"{name}:panic-frame": (
                    "crash 8.0.6 drops panic()'s own frame when panic() calls vpanic() (6.12): on sysrq-c of "
                    "6.12.118 its bt goes vpanic -> sysrq_handle_crash, where the stack holds panic()'s "
                    "return address into sysrq_handle_crash and vpanic()'s into panic() (drgn unwinds both)"
                )
                for name in _BACK_TRACES
            },
        },
    ),
    CrashRow(
        arch="X86_64",
        kernels=((7, 0), (7, 99)),
        build="sid-amd64",
        flags=("--no_modules",),
        why=(
            "7.x: crash 8.0.6 stops at 'invalid structure member offset: kmem_cache_s_num'; crash 9.0.2 "
            "opens the dump but, once any module is loaded, stops at 'invalid structure member offset: "
            "module_num_gpl_syms' unless given --no_modules (measured on 7.2.13)"
        ),
        missing={
            "mod": "--no_modules: crash 9.0.2 cannot read 7.x's module list (module_num_gpl_syms)",
            "struct-o": "--no_modules: crash 9.0.2 loads no module debug info on 7.x",
        },
        distrusted={
            **_WRONG_HZ,
            "log-T": "log -T dates lines from DATE and UPTIME, both wrong: 1969 on 7.2.13",
            "sys:DATE": "crash 9.0.2 prints DATE 'Thu Jan  1 00:00:00 UTC 1970' on 7.2.13; VMCOREINFO's "
            "CRASHTIME is the crash's time",
            "kmem-addr": (
                "crash 9.0.2's kmem ADDR of a slab object (init's mm_struct) stops at 'kmem: invalid "
                "structure member offset: page_first_page' (memory.c compound_head()) on 7.2.13; of a "
                "vmalloc'd kernel stack it answers"
            ),
            "kmem-i:swap": (
                "crash 9.0.2 prints kmem -i's TOTAL SWAP, SWAP USED and SWAP FREE only where the kernel has "
                "swapper_space or swapper_spaces (memory.c dump_kmeminfo); 7.2.13 has neither (6.12.118 has "
                "swapper_spaces), so the lines are absent"
            ),
            **{
                f"{name}:callers": (
                    "crash 9.0.2 mixes stale return addresses into 7.x stacks: on sysrq-c of 7.2.13, 287 "
                    "of 365 tasks differ from drgn's unwinding (leftover page-fault frames between "
                    "do_syscall_64 and the syscall entry of every user task; write_sysrq_trigger and "
                    "pde_write shown as security_file_permission in the crashed task); the task, its "
                    "CPU and the frames down to the crash site are right"
                )
                for name in _BACK_TRACES
            },
        },
    ),
    # Before the kdump row below, which it repeats but for the on-CPU tasks' back traces. It leaves
    # ``missing`` to the oracle (no crash site: no dis -l, rd), so the stored answers stay current.
    CrashRow(
        arch="AARCH64",
        kernels=_ANY_KERNEL,
        origin="qemu",
        va_bits=52,
        build="sid-arm64",
        flags=("-m", _lpa2_phys_offset),
        exception_entries=_ARM64_EXCEPTION_VECTORS,
        pc_bias=4,
        distrusted={
            **_ARM64_DISTRUSTED,
            **{f"{name}:active": _ARM64_QEMU_NO_ACTIVE_FRAMES for name in _BACK_TRACES},
        },
        why=(
            _ARM64_LPA2_WHY + "; QEMU's dump-guest-memory ELF of such a guest: the same crash, which lacks "
            "the back traces of the tasks on CPUs there (distrusted)"
        ),
    ),
    CrashRow(
        arch="AARCH64",
        kernels=_ANY_KERNEL,
        va_bits=52,
        build="sid-arm64",
        flags=("-m", _lpa2_phys_offset),
        exception_entries=_ARM64_EXCEPTION_VECTORS,
        pc_bias=4,
        distrusted=_ARM64_DISTRUSTED,
        why=_ARM64_LPA2_WHY,
    ),
    CrashRow(
        arch="AARCH64",
        kernels=_ANY_KERNEL,
        build="sid-arm64",
        exception_entries=_ARM64_EXCEPTION_VECTORS,
        pc_bias=4,
        distrusted=_ARM64_DISTRUSTED,
        why="arm64 dumps need an arm64 crash: Debian's arm64 package under qemu-aarch64",
    ),
)


@dataclass(frozen=True)
class CrashChoice:
    """The row chosen for one dump, with its flags worked out."""

    row: CrashRow
    flags: tuple[str, ...]

    @property
    def build(self) -> str:
        return self.row.build


def choose_crash(facts: DumpFacts) -> CrashChoice:
    """Return the first row of :data:`CRASH_TABLE` that matches ``facts``.

    :raises LookupError: no row covers this dump (add one, with the failure it avoids).
    """
    for row in CRASH_TABLE:
        if row.matches(facts):
            flags = tuple(f(facts) if callable(f) else f for f in row.flags)
            return CrashChoice(row=row, flags=flags)
    raise LookupError(
        f"no row of samples/crash_choice.CRASH_TABLE covers a {facts.origin} dump of {facts.arch} "
        f"{facts.release}: add one"
    )


def _origin(sample: Sample) -> str:
    """``qemu`` for the host's dump-guest-memory, ``kdump`` for the guest's own dump."""
    return "qemu" if sample.dump_format.startswith("qemu") else "kdump"


def _dump_level(sample: Sample) -> int | None:
    """makedumpfile's ``-d`` for the file ``sample`` names (None for a raw or QEMU ELF).

    Until samples-matrix gives ``Sample`` a ``dump_level``: the manifest's for the main file (31
    before manifests said it), and 31 for the ``lossy-d31`` variant.
    """
    if hasattr(sample, "dump_level"):
        return sample.dump_level  # type: ignore[no-any-return]
    if sample.dump_format != "kdump-compressed":
        return None
    return 31 if sample.variant == "lossy-d31" else int(sample.manifest.get("dump_level", 31))


def dump_facts(sample: Sample) -> DumpFacts:
    """Read :class:`DumpFacts` of ``sample``'s dump (drgn opens it without debug info: fast)."""
    import drgn

    prog = drgn.Program()
    prog.set_core_dump(str(sample.vmcore))
    text = prog["VMCOREINFO"].string_().decode()
    info = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert prog.platform is not None
    return DumpFacts(
        arch=prog.platform.arch.name,
        release=info.get("OSRELEASE", sample.kernel_release),
        origin=_origin(sample),
        dump_level=_dump_level(sample),
        vmcoreinfo=info,
    )
