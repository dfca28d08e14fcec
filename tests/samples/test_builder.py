"""Fast tests of make-vmcore's pure logic: hashing, cpio, module order, facts, manifest, CLI.

No QEMU here: the dmesg excerpts are copied from a real oops-null / sysrq-c
build of Debian's 6.1.0-56-cloud-amd64, so the parsers are tested on the text
the kernel really prints.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
if str(SAMPLES) not in sys.path:
    sys.path.insert(0, str(SAMPLES))

from vmcore_builder import facts  # noqa: E402
from vmcore_builder.common import BuildError, run  # noqa: E402
from vmcore_builder.cpio import Archive  # noqa: E402
from vmcore_builder.expected import (  # noqa: E402
    expected_irq_oops,
    expected_list_uaf,
    expected_many_tasks,
    expected_no_panic,
    expected_oops_null,
    expected_sysrq_c,
)
from vmcore_builder.hashing import builder_hash, builder_inputs  # noqa: E402
from vmcore_builder.hostdeps import missing_packages  # noqa: E402
from vmcore_builder.initramfs import builtin_from_config, builtin_modules, module_load_order  # noqa: E402
from vmcore_builder.manifest import load_manifest, write_manifest  # noqa: E402
from vmcore_builder.qemu import console_kernel_lines, crash_cmdline, first_boot, guest_config  # noqa: E402

pytestmark = pytest.mark.timeout(60)

OOPS_DMESG = """\
[    4.315570] LABFACT kdump armed
[    4.369891] LABFACT thread pid=95 tid=97 comm=lt-read syscall=read
[    4.371904] LABFACT thread pid=95 tid=95 comm=lt-main syscall=pause
[    4.379148] LABFACT thread pid=95 tid=99 comm=lt-futex syscall=futex
[    5.368289] LABFACT hold pid=102 comm=labhold
[    5.368981] labbug: hold pid=102 comm=labhold acquired labbug_mutex
[    7.370263] LABFACT wait pid=104 comm=labwait
[    7.370625] labbug: wait pid=104 comm=labwait blocking on labbug_mutex
[    7.389673] LABFACT wait pid=105 comm=labwait
[    7.390239] labbug: wait pid=105 comm=labwait blocking on labbug_mutex
[    8.218636] LABFACT sleepers count=200 comm=sleep
[    8.234407] LABFACT spin pid=307 comm=labspin cpu=1
[   11.345721] LABFACT ready tasks=266
[   11.360608] LABFACT crash pid=310 comm=labcrash cpu=0 msg=walk 7
[   11.361488] labbug: walk pid=310 comm=labcrash cpu=0 mode=2 counter=7 msg="walk 7" \
samples=7,28,63,112 checksum=210
[   11.361915] BUG: kernel NULL pointer dereference, address: 0000000000000008
[   11.362697] Oops: 0000 [#1] PREEMPT SMP NOPTI
[   11.362871] CPU: 0 PID: 310 Comm: labcrash Kdump: loaded Tainted: G           OE      \
6.1.0-56-cloud-amd64 #1  Debian 6.1.192-2
[   11.363138] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1
[   11.363138] RIP: 0010:labbug_walk+0x1b3/0x1d0 [labbug]
[   11.364271] Call Trace:
[   11.364271]  <TASK>
[   11.364271]  labbug_trigger_write+0x15/0x30 [labbug]
[   11.364271]  proc_reg_write+0x56/0xa0
[   11.364271] RIP: 0033:0x431260
"""

SYSRQ_DMESG = """\
[    6.100000] LABFACT sleepers count=300 comm=sleep
[    8.200000] LABFACT ready tasks=352
[    8.300000] LABFACT sysrq pid=412 comm=sh cpu=0
[    8.300100] sysrq: Trigger a crash
[    8.300200] Kernel panic - not syncing: sysrq triggered crash
[    8.300300] CPU: 0 PID: 412 Comm: sh Kdump: loaded Not tainted 6.1.0-56-cloud-amd64 #1
[    8.300400] Call Trace:
[    8.300400]  <TASK>
[    8.300400]  dump_stack_lvl+0x44/0x5c
[    8.300400]  panic+0x118/0x2ed
[    8.300400]  ? _printk+0x60/0x7c
[    8.300400]  sysrq_handle_crash+0x16/0x20
[    8.300400]  __handle_sysrq.cold+0x43/0x11a
"""

MANY_DMESG = """\
[    4.100000] LABFACT kdump armed
[    4.200000] LABFACT limits threads_max=20000 pid_max=32768
[    4.300000] LABFACT hold pid=97 comm=labhold
[    4.300100] labbug: hold pid=97 comm=labhold acquired labbug_mutex
[    6.300000] LABFACT wait pid=99 comm=labwait
[    6.300100] labbug: wait pid=99 comm=labwait blocking on labbug_mutex
[    6.300200] LABFACT wait pid=100 comm=labwait
[    6.300300] labbug: wait pid=100 comm=labwait blocking on labbug_mutex
[   20.000000] LABFACT many pid=107 comm=labmany threads=5000
[   23.000000] LABFACT ready tasks=5065
[   23.100000] LABFACT sysrq pid=5168 comm=sh cpu=0
[   23.100100] sysrq: Trigger a crash
[   23.100200] Kernel panic - not syncing: sysrq triggered crash
[   23.100300] CPU: 0 PID: 5168 Comm: sh Kdump: loaded Tainted: G           OE      6.1.0-56-cloud-amd64 #1
[   23.100400] Call Trace:
[   23.100400]  <TASK>
[   23.100400]  dump_stack_lvl+0x44/0x5c
[   23.100400]  panic+0x118/0x2ed
[   23.100400]  sysrq_handle_crash+0x16/0x20
"""

# A list-uaf log cut down to six requests (the real one has twenty), in the module's own format.
UAF_DMESG = """\
[    7.739193] LABFACT kdump armed
[    7.852634] labuaf: loaded name=labuaf0 dev=ffffffffc0415020 reqs=ffffffffc0415028 \
by_id=ffffffffc0415038 xa=ffffffffc0415040 replies=ffffffffc0415050 req_size=88 reply_size=96
[    7.903818] labuaf: req id=0 cpu=0 addr=ffff8a50c2120540
[    7.904082] labuaf: req id=1 cpu=0 addr=ffff8a50c2120de0
[    7.904180] labuaf: req id=2 cpu=0 addr=ffff8a50c2120f00
[    7.904267] labuaf: req id=3 cpu=0 addr=ffff8a50c2120120
[    7.914309] labuaf: hits cpu=0 total=4
[    7.963243] labuaf: req id=4 cpu=1 addr=ffff8a50fff94e40
[    7.963426] labuaf: req id=5 cpu=1 addr=ffff8a50fff94540
[    7.964031] labuaf: hits cpu=1 total=2
[    7.978328] labuaf: replies n=5000 total=5000 first=ffff8a50c2120b40 last=ffff8a50c2321600
[    8.001586] LABFACT ready tasks=53
[    8.017145] LABFACT uaf pid=96 comm=sh cpu=0
[    8.017776] labuaf: freed-linked id=2 addr=ffff8a50c2120f00
[    8.018058] labuaf: half-unlinked id=4 addr=ffff8a50fff94e40 next=ffff8a50fff94540
[    8.018197] labuaf: walk pid=96 comm=sh cpu=0
[    8.018513] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    8.019152] Oops: 0000 [#1] PREEMPT SMP NOPTI
[    8.019314] CPU: 0 PID: 96 Comm: sh Kdump: loaded Tainted: G           OE      6.1.0-57-cloud-amd64 #1
[    8.019793] RIP: 0010:labuaf_walk+0x52/0x78 [labuaf]
"""

# A real no-panic serial console: user-space writes interleave with the kernel's lines.
NO_PANIC_CONSOLE = """\
[    7.689853] LABFACT kdump armed
[    7.850908] LABFACT thread pid=95 tid=97 comm=lt-read syscall=read
LABFACT thread pid=95 tid=97 comm=lt-read syscall=read
[    8.818129] LABFACT hold pid=103 comm=labhold
[    8.818615] labbug: hold pid=103 comm=labhold acquired labbug_mutex
[   10.910368] LABFACT wait pid=105 comm=labwait
LABFACT wait pid[   10.910748] labbug: wait pid=105 comm=labwait blocking on labbug_mutex
[   11.783545] LABFACT sleepers count=200 comm=sleep
[   11.818946] LABFACT spin pid=308 comm=labspin cpu=1
[guest] waiting
[   14.818946] LABFACT ready tasks=266
LABDUMP status=host-dump
"""

# irq-oops: the oops of a hard-interrupt hrtimer callback; its call trace crosses </IRQ> into the
# interrupted task's frames (RIP: of the registers the interrupt saved).
IRQ_DMESG = """\
[    4.914393] LABFACT kdump armed
[    5.531271] LABFACT sleepers count=100 comm=sleep
[    5.570858] LABFACT spin pid=194 comm=labspin cpu=0
[    8.581731] LABFACT ready tasks=155
[    8.585922] LABFACT irq pid=197 comm=labirq cpu=1 msg=irq 5
[    8.586749] labbug: irq pid=197 comm=labirq cpu=1 count=5 delay_ms=20
[    8.608737] labbug: tick pid=197 comm=labirq cpu=1 ticks=5 irq_cpu=1 hardirq=1
[    8.609197] BUG: kernel NULL pointer dereference, address: 0000000000000008
[    8.609876] Oops: 0000 [#1] PREEMPT SMP NOPTI
[    8.610045] CPU: 1 PID: 197 Comm: labirq Kdump: loaded Tainted: G           OE      \
6.1.0-56-cloud-amd64 #1  Debian 6.1.192-2
[    8.610613] RIP: 0010:labbug_tick+0x7a/0xa0 [labbug]
[    8.611295] RSP: 0018:ffffca9e800d0f00 EFLAGS: 00000046
[    8.612642] Call Trace:
[    8.612642]  <IRQ>
[    8.612642]  ? labbug_tick+0xa0/0xa0 [labbug]
[    8.612642]  labbug_timer_fn+0x21/0x30 [labbug]
[    8.612642]  __hrtimer_run_queues+0x10d/0x250
[    8.612642]  hrtimer_interrupt+0xf4/0x210
[    8.612642]  __sysvec_apic_timer_interrupt+0x5d/0x110
[    8.612642]  sysvec_apic_timer_interrupt+0x69/0x90
[    8.612642]  </IRQ>
[    8.612642]  <TASK>
[    8.612642]  asm_sysvec_apic_timer_interrupt+0x16/0x20
[    8.612642] RIP: 0010:labbug_irq_wait+0x29/0x40 [labbug]
[    8.612642] RSP: 0018:ffffca9e806fba08 EFLAGS: 00000206
[    8.612642]  labbug_irq_write+0x136/0x150 [labbug]
[    8.612642] Kernel panic - not syncing: Fatal exception in interrupt
"""

MODULE_SOURCE = (SAMPLES / "guest" / "labbug" / "labbug.c").read_text()
FAULT_LINE = facts.find_line(MODULE_SOURCE, "/* LABBUG-FAULT */")
IRQ_FAULT_LINE = facts.find_line(MODULE_SOURCE, "/* LABBUG-IRQ-FAULT */")


def _texts(dmesg: str) -> list[str]:
    return facts.dmesg_texts(dmesg)


# --- hashing ---------------------------------------------------------------


@pytest.fixture
def samples_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "samples"
    dest.mkdir()
    shutil.copy2(SAMPLES / "make-vmcore", dest / "make-vmcore")
    for sub in ("vmcore_builder", "guest"):
        shutil.copytree(SAMPLES / sub, dest / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


PIN = "0123456789ab"


def _hash(samples_copy: Path, scenario: str = "oops-null", pin: str = PIN, variant: str | None = None) -> str:
    return builder_hash(scenario, pin, variant, samples_dir=samples_copy)


def test_hash_is_stable_and_covers_builder_and_the_scenarios_guest_files(samples_copy: Path) -> None:
    names = {p.relative_to(samples_copy).as_posix() for p in builder_inputs("oops-null", samples_copy)}
    assert {"make-vmcore", "guest/init.sh", "guest/labbug/labbug.c", "guest/progs/labthreads.c"} <= names
    assert "vmcore_builder/build.py" in names and "guest/progs/labmany.c" not in names
    first = _hash(samples_copy)
    assert first == _hash(samples_copy)
    assert len(first) == 12


@pytest.mark.parametrize(
    "edit",
    [
        "guest/labbug/labbug.c",
        "vmcore_builder/qemu.py",
        "vmcore_builder/dumpplan.py",
        "make-vmcore",
        "guest/init.sh",
    ],
)
def test_hash_changes_with_any_input(samples_copy: Path, edit: str) -> None:
    before = _hash(samples_copy)
    with (samples_copy / edit).open("a") as f:
        f.write("\n")
    assert _hash(samples_copy) != before


def test_hash_is_per_scenario_a_program_rebuilds_only_its_scenarios(samples_copy: Path) -> None:
    before = {s: _hash(samples_copy, s) for s in ("oops-null", "sysrq-c", "many-tasks")}
    with (samples_copy / "guest" / "progs" / "labmany.c").open("a") as f:
        f.write("\n")
    after = {s: _hash(samples_copy, s) for s in before}
    assert after["many-tasks"] != before["many-tasks"]
    assert after["oops-null"] == before["oops-null"] and after["sysrq-c"] == before["sysrq-c"]


def test_hash_changes_with_the_pin_and_variant_not_with_caches(samples_copy: Path) -> None:
    before = _hash(samples_copy)
    assert _hash(samples_copy, pin="ba9876543210") != before
    assert _hash(samples_copy, variant="qemu-dump") != before
    (samples_copy / "vmcore_builder" / "__pycache__").mkdir()
    (samples_copy / "vmcore_builder" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (samples_copy / "README.md").write_text("docs do not change dumps")
    (samples_copy / "kernels.json").write_text("{}")  # only the kernel's own pin counts
    # Re-pinning code: its effect is the pin hash itself; the matrix's lists make no dump.
    (samples_copy / "vmcore_builder" / "repin.py").write_text("# rewritten\n")
    (samples_copy / "vmcore_builder" / "matrix.py").write_text("# another matrix\n")
    assert _hash(samples_copy) == before


# --- cpio ------------------------------------------------------------------


def _read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """An independent newc reader: name -> (mode, data, (rdevmajor, rdevminor))."""
    out, pos = {}, 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = data[name_start : name_start + namesize - 1].decode()
        pos = (name_start + namesize + 3) & ~3
        body = data[pos : pos + filesize]
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (fields[1], body, (fields[9], fields[10]))


def test_cpio_archive_has_parents_devices_symlinks_and_data() -> None:
    archive = Archive()
    archive.add_char_device("dev/console", 5, 1)
    archive.add_file("/etc/lab/scenario", b"oops-null\n")
    archive.add_symlink("bin/sh", "busybox")
    entries = _read_newc(archive.to_bytes())
    assert stat.S_ISDIR(entries["etc"][0]) and stat.S_ISDIR(entries["etc/lab"][0])
    mode, _, rdev = entries["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert entries["etc/lab/scenario"][1] == b"oops-null\n"
    assert stat.S_ISLNK(entries["bin/sh"][0]) and entries["bin/sh"][1] == b"busybox"
    names = list(entries)
    assert names.index("etc") < names.index("etc/lab") < names.index("etc/lab/scenario")


def test_cpio_is_reproducible() -> None:
    def build() -> bytes:
        a = Archive()
        a.add_file("b", b"2")
        a.add_file("a", b"1")
        return a.to_bytes()

    assert build() == build()


# --- module order ------------------------------------------------------------

MODULES_DEP = """\
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
"""


def test_module_load_order_puts_dependencies_first_once() -> None:
    order = [Path(p).stem for p in module_load_order(MODULES_DEP, ("virtio_pci", "virtio_blk"))]
    assert sorted(order) == sorted(set(order))
    assert order.index("virtio") < order.index("virtio_ring") < order.index("virtio_pci")
    assert order.index("virtio_pci_modern_dev") < order.index("virtio_pci")
    assert order[-1] == "virtio_blk"


def test_module_load_order_names_a_missing_module() -> None:
    with pytest.raises(BuildError, match="virtio_scsi is not in modules.dep"):
        module_load_order(MODULES_DEP, ("virtio_scsi",))


def test_module_load_order_skips_built_in_modules_and_reads_compressed_names() -> None:
    # arm64's cloud kernel has virtio_pci and virtio_blk built in; 6.12's modules are .ko.xz.
    builtin = builtin_modules("kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\n")
    assert builtin == {"virtio_pci", "virtio_blk"}
    dep = "kernel/drivers/firmware/qemu_fw_cfg.ko.xz:\n"  # modules.dep of that kernel: no virtio
    assert module_load_order(dep, ("virtio_pci", "virtio_blk"), builtin) == []
    assert module_load_order(dep, ("qemu_fw_cfg",), builtin) == ["kernel/drivers/firmware/qemu_fw_cfg.ko.xz"]
    with pytest.raises(BuildError, match="virtio_scsi is not in modules.dep"):
        module_load_order(dep, ("virtio_scsi",), builtin)
    # sid's 7.x packages have no modules.builtin: the .config says it.
    config = "CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=m\n# CONFIG_FW_CFG_SYSFS is not set\n"
    assert builtin_from_config(config) == {"virtio_pci"}


# --- facts -------------------------------------------------------------------


def test_kv_pairs_values_may_contain_spaces_and_quotes() -> None:
    assert facts.kv_pairs('pid=310 msg="walk 7" samples=7,28') == {
        "pid": "310",
        "msg": "walk 7",
        "samples": "7,28",
    }
    assert facts.kv_pairs("pid=310 cpu=0 msg=walk 7")["msg"] == "walk 7"


def test_panic_string_follows_crash_pattern_order() -> None:
    # No "Kernel panic" line (kdump ran from oops_end): crash falls back to "Oops: ".
    assert facts.panic_string(_texts(OOPS_DMESG)) == "Oops: 0000 [#1] PREEMPT SMP NOPTI"
    # "Kernel panic - " ranks before "Oops: " even when it comes later in the log.
    texts = _texts(OOPS_DMESG) + ["Kernel panic - not syncing: Fatal exception"]
    assert facts.panic_string(texts) == "Kernel panic - not syncing: Fatal exception"
    assert facts.panic_string(_texts(SYSRQ_DMESG)) == ("Kernel panic - not syncing: sysrq triggered crash")
    with pytest.raises(BuildError, match="no panic message"):
        facts.panic_string(["all quiet"])


ARM64_PANIC_TRACE = """\
[   27.324648] Kernel panic - not syncing: sysrq triggered crash
[   27.325572] CPU: 0 UID: 0 PID: 444 Comm: sh Kdump: loaded Not tainted 6.12.118+deb13-cloud-arm64 #1
[   27.326232]  dump_backtrace+0xd8/0x130
[   27.326727]  dump_stack_lvl+0x60/0x80
[   27.326851]  vpanic+0x11c/0x338
[   27.326926]  trace_suspend_resume+0x0/0x70
[   27.327002]  sysrq_handle_crash+0x20/0x28
[   27.327078]  __handle_sysrq+0xa4/0x1a8
"""


def test_panic_caller_on_arm64_skips_the_noreturn_call_artefact() -> None:
    # 6.12 arm64: panic() tail-calls vpanic(); the return address past panic's end is the next symbol.
    caller = facts.panic_caller(_texts(ARM64_PANIC_TRACE))
    assert caller == facts.Frame("sysrq_handle_crash", 0x20, 0x28, None)


def test_rip_frame_reads_arm64s_pc_line() -> None:
    texts = ["Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
             "pc : labbug_walk+0xb4/0x1d8 [labbug]", "lr : labbug_walk+0xa8/0x1d8 [labbug]"]  # fmt: skip
    assert facts.rip_frame(texts) == facts.Frame("labbug_walk", 0xB4, 0x1D8, "labbug")


def test_crash_context_with_and_without_uid() -> None:
    # 6.12 and later print the current task's UID on the CPU line.
    line = "CPU: 0 UID: 0 PID: 412 Comm: sh Kdump: loaded Not tainted 7.2.13+deb14-cloud-amd64 #1"
    assert facts.crash_context(["x", line]) == (0, 412, "sh", 1)
    assert facts.crash_context(_texts(SYSRQ_DMESG))[:3] == (0, 412, "sh")


def test_frames_from_rip_and_call_trace() -> None:
    rip = facts.rip_frame(_texts(OOPS_DMESG))
    assert rip == facts.Frame("labbug_walk", 0x1B3, 0x1D0, "labbug")
    caller = facts.panic_caller(_texts(SYSRQ_DMESG))
    assert caller == facts.Frame("sysrq_handle_crash", 0x16, 0x20, None)


def test_find_line_and_enum_names() -> None:
    assert MODULE_SOURCE.splitlines()[FAULT_LINE - 1].strip().startswith("total = dev->head->value")
    with pytest.raises(BuildError, match="found 0"):
        facts.find_line("int x;\n", "/* LABBUG-FAULT */")
    with pytest.raises(BuildError, match="found 2"):
        facts.find_line("a /* M */\nb /* M */\n", "/* M */")
    assert facts.enum_names(MODULE_SOURCE, "labbug_mode")[2] == "LABBUG_MODE_WALK"
    assert facts.enum_names("enum e { A = 4, B, /* c */ C = 0x10 };", "e") == {
        4: "A",
        5: "B",
        16: "C",
    }


# --- expected ------------------------------------------------------------------


def test_expected_oops_null_from_real_dmesg() -> None:
    exp = expected_oops_null(_texts(OOPS_DMESG), MODULE_SOURCE, lambda frame: ("labbug.c", FAULT_LINE))
    assert exp["panic"] == "Oops: 0000 [#1] PREEMPT SMP NOPTI"
    assert exp["oops_line"] == "BUG: kernel NULL pointer dereference, address: 0000000000000008"
    assert (exp["crashed_pid"], exp["crashed_comm"], exp["crashed_cpu"]) == (310, "labcrash", 0)
    assert (exp["function"], exp["file"], exp["line"]) == ("labbug_walk", "labbug.c", FAULT_LINE)
    assert exp["locals"] == {
        "mode": "LABBUG_MODE_WALK",
        "counter": 7,
        "msg": "walk 7",
        "samples": [7, 28, 63, 112],
    }
    assert exp["mutex_holder_pid"] == 102
    assert exp["d_state_pids"] == [104, 105]
    assert exp["spin_pid"] == 307 and exp["spin_cpu"] == 1
    # init + 3 threads + holder + 2 waiters + 200 sleepers + spinner + crasher
    assert exp["min_tasks"] == 1 + 3 + 1 + 2 + 200 + 1 + 1


def test_expected_oops_null_rejects_a_rip_off_the_marker() -> None:
    with pytest.raises(BuildError, match="not to the /\\* LABBUG-FAULT \\*/ marker"):
        expected_oops_null(_texts(OOPS_DMESG), MODULE_SOURCE, lambda frame: ("labbug.c", FAULT_LINE + 1))


def test_expected_rejects_guest_and_kernel_disagreeing() -> None:
    lying = OOPS_DMESG.replace("LABFACT crash pid=310", "LABFACT crash pid=311")
    with pytest.raises(BuildError, match="crashed pid: the guest reported 311"):
        expected_oops_null(_texts(lying), MODULE_SOURCE, lambda f: ("labbug.c", FAULT_LINE))


def test_expected_irq_oops_from_real_dmesg() -> None:
    seen = []

    def resolve(frame: facts.Frame) -> tuple[str, int]:
        seen.append(frame)
        return "labbug.c", IRQ_FAULT_LINE

    exp = expected_irq_oops(_texts(IRQ_DMESG), MODULE_SOURCE, resolve)
    assert seen == [facts.Frame("labbug_tick", 0x7A, 0xA0, "labbug")]
    # crash_kexec_post_notifiers: the dump is taken from panic(), so its line is the panic string.
    assert exp["panic"] == "Kernel panic - not syncing: Fatal exception in interrupt"
    assert exp["oops_line"] == "BUG: kernel NULL pointer dereference, address: 0000000000000008"
    assert (exp["crashed_pid"], exp["crashed_comm"], exp["crashed_cpu"]) == (197, "labirq", 1)
    assert (exp["function"], exp["file"], exp["line"]) == ("labbug_tick", "labbug.c", IRQ_FAULT_LINE)
    assert exp["interrupt_entry"] == "asm_sysvec_apic_timer_interrupt"
    assert exp["irq_functions"] == [
        "labbug_timer_fn",
        "__hrtimer_run_queues",
        "hrtimer_interrupt",
        "__sysvec_apic_timer_interrupt",
        "sysvec_apic_timer_interrupt",
    ]  # the unreliable "? labbug_tick" entry is skipped
    assert (exp["interrupted_function"], exp["interrupted_offset"]) == ("labbug_irq_wait", 0x29)
    assert exp["locals"] == {"ticks": 5, "irq_cpu": 1}
    assert (exp["spin_pid"], exp["spin_cpu"], exp["irq_delay_ms"]) == (194, 0, 20)
    assert exp["min_tasks"] == 1 + 100 + 1 + 1  # init, sleepers, spinner, labirq


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("RIP: 0010:labbug_irq_wait+", "RIP: 0010:labbug_irq_write+", "not labbug_irq_wait"),
        (" labbug_timer_fn+0x21", " other_fn+0x21", "labbug_timer_fn is not in"),
        ("ticks=5 irq_cpu=1", "ticks=5 irq_cpu=0", "interrupt cpu"),
        ("hardirq=1", "hardirq=0", "hard interrupt context"),
        ("</IRQ>", "</NMI>", "no '<IRQ>'"),
    ],
)
def test_expected_irq_oops_rejects_inconsistent_logs(old: str, new: str, message: str) -> None:
    assert old in IRQ_DMESG
    with pytest.raises(BuildError, match=message):
        expected_irq_oops(
            _texts(IRQ_DMESG.replace(old, new)), MODULE_SOURCE, lambda f: ("labbug.c", IRQ_FAULT_LINE)
        )


UAF_SOURCE = (SAMPLES / "guest" / "labuaf" / "labuaf.c").read_text()
UAF_FAULT_LINE = facts.find_line(UAF_SOURCE, "/* LABUAF-FAULT */")


def test_expected_list_uaf_from_its_dmesg() -> None:
    seen = []

    def resolve(frame: facts.Frame) -> tuple[str, int]:
        seen.append(frame)
        return "labuaf.c", UAF_FAULT_LINE

    exp = expected_list_uaf(_texts(UAF_DMESG), UAF_SOURCE, resolve)
    assert seen == [facts.Frame("labuaf_walk", 0x52, 0x78, "labuaf")]
    assert (exp["crashed_pid"], exp["crashed_comm"], exp["crashed_cpu"]) == (96, "sh", 0)
    assert (exp["function"], exp["file"], exp["line"], exp["module"]) == (
        "labuaf_walk",
        "labuaf.c",
        UAF_FAULT_LINE,
        "labuaf",
    )
    assert exp["oops_line"] == "BUG: kernel NULL pointer dereference, address: 0000000000000000"
    assert [(r["id"], r["cpu"]) for r in exp["requests"]] == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 1), (5, 1)]
    assert exp["freed_linked"] == {"id": 2, "address": 0xFFFF8A50C2120F00}
    assert exp["half_unlinked"] == {"id": 4, "address": 0xFFFF8A50FFF94E40, "next": 0xFFFF8A50FFF94540}
    assert exp["hits"] == {"0": 4, "1": 2}
    assert exp["device"]["reqs"] == 0xFFFFFFFFC0415028
    assert exp["replies"] == {"count": 5000, "first": 0xFFFF8A50C2120B40, "last": 0xFFFF8A50C2321600}
    # The walk counted requests 0, 1 and the freed 2, adding labuaf_values[0] + [1] before faulting.
    assert exp["locals"] == {"seen": 3, "total": 3 + 5, "cur": 0xFFFF8A50C2120F00}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("hits cpu=1 total=2", "hits cpu=1 total=3", "per-CPU request counts"),
        ("next=ffff8a50fff94540", "next=ffff8a50fff94541", "half-unlinked request's successor"),
        (
            "freed-linked id=2 addr=ffff8a50c2120f00",
            "freed-linked id=2 addr=ffff8a50c2120f08",
            "freed-linked",
        ),
        ("walk pid=96", "walk pid=97", "walking pid"),
        ("LABFACT uaf pid=96", "LABFACT uaf pid=95", "crashed pid"),
        ("req id=3 cpu=0", "req id=7 cpu=0", "not numbered"),
    ],
)
def test_expected_list_uaf_rejects_inconsistent_logs(old: str, new: str, message: str) -> None:
    assert old in UAF_DMESG
    with pytest.raises(BuildError, match=message):
        expected_list_uaf(
            _texts(UAF_DMESG.replace(old, new)), UAF_SOURCE, lambda f: ("labuaf.c", UAF_FAULT_LINE)
        )


def test_expected_list_uaf_rejects_a_rip_off_the_marker() -> None:
    with pytest.raises(BuildError, match="not to the /\\* LABUAF-FAULT \\*/ marker at labuaf.c"):
        expected_list_uaf(_texts(UAF_DMESG), UAF_SOURCE, lambda f: ("labuaf.c", UAF_FAULT_LINE - 1))


def test_expected_sysrq_c_resolves_the_panic_caller() -> None:
    seen = []

    def resolve(frame: facts.Frame) -> tuple[str, int]:
        seen.append(frame)
        return "sysrq.c", 155

    exp = expected_sysrq_c(_texts(SYSRQ_DMESG), resolve)
    assert seen == [facts.Frame("sysrq_handle_crash", 0x16, 0x20, None)]
    assert exp["panic"] == "Kernel panic - not syncing: sysrq triggered crash"
    assert exp["oops_line"] == "sysrq: Trigger a crash"
    assert (exp["crashed_pid"], exp["crashed_comm"], exp["crashed_cpu"]) == (412, "sh", 0)
    assert (exp["function"], exp["file"], exp["line"]) == ("sysrq_handle_crash", "sysrq.c", 155)
    assert exp["locals"] == {} and exp["min_tasks"] == 302


def test_expected_many_tasks_counts_threads_waiters_and_the_sysrq_crash() -> None:
    exp = expected_many_tasks(_texts(MANY_DMESG), lambda frame: ("sysrq.c", 155))
    assert exp["panic"] == "Kernel panic - not syncing: sysrq triggered crash"
    assert (exp["crashed_pid"], exp["crashed_comm"], exp["crashed_cpu"]) == (5168, "sh", 0)
    assert (exp["function"], exp["file"], exp["line"]) == ("sysrq_handle_crash", "sysrq.c", 155)
    assert (exp["many_pid"], exp["many_threads"]) == (107, 5000)
    assert exp["mutex_holder_pid"] == 97 and exp["d_state_pids"] == [99, 100]
    assert (exp["threads_max"], exp["pid_max"], exp["observed_tasks"]) == (20000, 32768, 5065)
    # init + labmany's main thread + 5000 threads + holder + 2 waiters + the shell
    assert exp["min_tasks"] == 1 + 1 + 5000 + 1 + 2 + 1


def test_expected_many_tasks_rejects_a_missing_thread_record() -> None:
    without = MANY_DMESG.replace("LABFACT many pid=107 comm=labmany threads=5000", "labmany died")
    with pytest.raises(BuildError, match="Expected one 'LABFACT many' record"):
        expected_many_tasks(_texts(without), lambda frame: ("sysrq.c", 155))


def test_console_kernel_lines_recovers_lines_after_user_fragments() -> None:
    kept = console_kernel_lines(NO_PANIC_CONSOLE).splitlines()
    assert "[   10.910748] labbug: wait pid=105 comm=labwait blocking on labbug_mutex" in kept
    assert not any(line.startswith(("LABFACT", "[guest]", "LABDUMP")) for line in kept)
    assert len(kept) == 9


def test_expected_no_panic_from_the_console_and_refusing_a_crash() -> None:
    texts = _texts(console_kernel_lines(NO_PANIC_CONSOLE))
    exp = expected_no_panic(texts)
    assert exp["panic"] is None and exp["crashed_pid"] is None and exp["stop_reason"] == "pause"
    assert exp["mutex_holder_pid"] == 103 and exp["d_state_pids"] == [105]
    assert exp["threads"] == [{"pid": 95, "tid": 97, "comm": "lt-read", "syscall": "read"}]
    assert (exp["spin_pid"], exp["spin_cpu"], exp["sleepers"], exp["observed_tasks"]) == (308, 1, 200, 266)
    # init + 1 thread + holder + 1 waiter + 200 sleepers + spinner
    assert exp["min_tasks"] == 1 + 1 + 1 + 1 + 200 + 1
    with pytest.raises(BuildError, match="has a crash in it"):
        expected_no_panic([*texts, "Kernel panic - not syncing: sysrq triggered crash"])


def test_guest_config_per_scenario() -> None:
    assert guest_config("many-tasks").memory_mib >= 2048 and not guest_config("many-tasks").host_dump
    assert guest_config("no-panic").host_dump
    assert guest_config("oops-null") == guest_config("sysrq-c")
    assert guest_config("oops-null").memory_mib == 1024 and not guest_config("oops-null").host_dump
    irq = guest_config("irq-oops")
    assert crash_cmdline(irq).endswith(" crash_kexec_post_notifiers") and not irq.host_dump
    assert "post_notifiers" not in crash_cmdline(guest_config("oops-null"))
    arm = guest_config("sysrq-c", "arm64")
    assert arm.arch == "arm64" and crash_cmdline(arm).startswith("console=ttyAMA0 ")
    qemu_dump = guest_config("sysrq-c", "arm64", "qemu-dump")
    # A panicked guest that waits for QEMU to dump it: no reboot, dumped after the panic ends.
    assert qemu_dump.host_dump and crash_cmdline(qemu_dump).endswith(" panic=0")
    assert qemu_dump.dump_marker.startswith("---[ end Kernel panic")


def test_first_boot_stops_at_the_capture_kernels_boot() -> None:
    console = (
        "[    0.000000] Linux version 6.12.118+deb13-cloud-arm64\n[    9.1] sysrq: Trigger a crash\n"
        "[    9.2] Starting crashdump kernel...\n[    0.000000] Linux version 6.12.118+deb13-cloud-arm64\n"
        "[    1.0] capture kernel line\n"
    )
    kept = first_boot(console)
    assert kept.endswith("Starting crashdump kernel...\n") and "capture kernel line" not in kept
    assert first_boot("no second boot\n") == "no second boot\n"


# --- manifest, commands, CLI ---------------------------------------------------


def test_manifest_round_trip_and_errors(tmp_path: Path) -> None:
    manifest = {
        k: "x"
        for k in (
            "vmcore", "vmcore_elf", "dmesg", "console_log", "vmlinux", "debug_info_dir",
            "module_source_dir", "kernel_release", "scenario",
        )
    }  # fmt: skip
    manifest.update(debug_info=[], expected={"crashed_pid": 1})
    write_manifest(tmp_path, manifest)
    assert load_manifest(tmp_path) == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
    del manifest["vmcore"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BuildError, match="lacks vmcore"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(BuildError, match="Corrupt sample manifest"):
        load_manifest(tmp_path)
    with pytest.raises(BuildError, match="No sample manifest"):
        load_manifest(tmp_path / "nowhere")


def test_run_reports_what_failed_with_output() -> None:
    with pytest.raises(BuildError, match=r"Cannot list things: 'sh -c .*exited with 3\nboom"):
        run(["sh", "-c", "echo boom >&2; exit 3"], what="list things")
    with pytest.raises(BuildError, match="'no-such-tool-xyz' is not installed"):
        run(["no-such-tool-xyz"], what="do it")


def test_missing_packages_lists_what_dpkg_lacks() -> None:
    assert missing_packages(["dpkg", "vmcore-dap-no-such-package"]) == ["vmcore-dap-no-such-package"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [([], "name a scenario"), (["oops-nul"], "unknown scenario oops-nul")],
)
def test_cli_rejects_bad_scenarios(argv: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SAMPLES / "make-vmcore"), *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert message in proc.stderr


# --- launch configurations ------------------------------------------------------

ADAPTER_KEYS = {
    "vmcore", "vmlinux", "debugInfo", "debugInfoDirectories", "sourceFileMap", "sourceRoot",
    "stopOnPanic",
}  # fmt: skip


@pytest.mark.parametrize("scenario", ["oops-null", "sysrq-c", "many-tasks", "no-panic", "irq-oops"])
def test_launch_configuration_fills_every_placeholder(tmp_path: Path, scenario: str) -> None:
    from sample_store import launch_configuration, load_sample

    sample_dir = tmp_path / f"{scenario}-6.1.0-57-cloud-amd64-0123456789ab"
    sample_dir.mkdir()
    manifest = {
        "scenario": scenario,
        "kernel_release": "6.1.0-56-cloud-amd64",
        "kernel_version": "6.1.192-2",
        "vmcore": "vmcore",
        "vmcore_elf": "vmcore.elf",
        "dmesg": "dmesg.txt",
        "console_log": "console.log",
        "vmlinux": "/k/dbg/usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64",
        "debug_info_dir": "/k/dbg/usr/lib/debug",
        "debug_info": [] if scenario == "sysrq-c" else ["labbug/labbug.ko"],
        "module_source_dir": "labbug",
        "expected": {},
    }
    write_manifest(sample_dir, manifest)
    sample = load_sample(sample_dir)
    assert sample.vmcore == sample_dir / "vmcore"
    launch = launch_configuration(sample, kernel_source=Path("/src/linux"))
    (config,) = launch["configurations"]
    assert (config["type"], config["request"]) == ("vmcore", "launch")
    assert ADAPTER_KEYS <= set(config)
    assert "@" not in json.dumps(launch)
    # A QEMU dump (no-panic) is one ELF file.
    assert config["vmcore"] == str(sample_dir / ("vmcore.elf" if scenario == "no-panic" else "vmcore"))
    assert config["vmlinux"] == manifest["vmlinux"]
    assert config["debugInfo"] == [str(sample_dir / p) for p in manifest["debug_info"]]
    assert config["debugInfoDirectories"] == ["/k/dbg/usr/lib/debug"]
    assert config["sourceFileMap"] == {"/build/reproducible-path/linux-6.1.192": "/src/linux"}
    assert config["sourceRoot"] == "/src/linux"
