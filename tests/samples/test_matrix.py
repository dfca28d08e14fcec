"""The kernel matrix and its pins: the pin file as committed, re-pin rules, sample names, variants.

No QEMU. One test asks Debian's archive for a file that is not there, to see the error a user
gets when a pinned package has been replaced.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
if str(SAMPLES) not in sys.path:
    sys.path.insert(0, str(SAMPLES))

from vmcore_builder.common import SCENARIOS, BuildError  # noqa: E402
from vmcore_builder.dumpplan import dump_plan  # noqa: E402
from vmcore_builder.kernel import _download, kernel_pin  # noqa: E402
from vmcore_builder.manifest import write_manifest  # noqa: E402
from vmcore_builder.matrix import (  # noqa: E402
    DEFAULT_KERNEL,
    KERNEL_LINES,
    check_known,
    matrix_samples,
)
from vmcore_builder.pins import PIN_FILE, load_pins, pin_hash  # noqa: E402
from vmcore_builder.repin import first_alternatives  # noqa: E402

pytestmark = pytest.mark.timeout(120)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def test_every_kernel_of_the_matrix_is_pinned_with_checksums() -> None:
    default, pins = load_pins()
    assert default == DEFAULT_KERNEL
    assert list(pins) == list(KERNEL_LINES)
    for kid, pin in pins.items():
        line = KERNEL_LINES[kid]
        assert (pin.suite, pin.arch, pin.flavour, pin.series) == (
            line.suite,
            line.arch,
            line.flavour,
            line.series,
        )
        assert pin.release.endswith(f"-{pin.flavour}") and line.release_pattern().fullmatch(
            f"linux-image-{pin.release}-dbg"
        )
        roles = {p.role for p in pin.packages}
        assert {"image", "dbg", "headers", "headers-common", "kbuild"} <= roles, kid
        for p in (*pin.packages, *pin.tools):
            assert _SHA256.fullmatch(p.sha256) and p.size > 0, p
            assert (
                p.filename.startswith("pool/")
                and p.filename.endswith(f"/{p.file}")
                and p.file.endswith(".deb")
            )
            assert p.archive in ("debian", "debian-security")
        exact = [p for p in pin.packages if p.role in ("image", "modules", "dbg", "headers", "source")]
        assert [p.version for p in exact] == [pin.version] * len(exact), kid
        # linux-kbuild-5.10 is one package for every 5.10 ABI: the headers want ">= their version".
        for p in pin.package("kbuild"):
            newer = subprocess.run(["dpkg", "--compare-versions", p.version, "ge", pin.version], check=False)
            assert newer.returncode == 0, (p.version, pin.version)
    # The host's own kernel builds with the host's gcc; the others with their suite's (and arm64
    # with its userland from arm64 packages).
    assert pins["deb12-6.1-amd64"].tools == ()
    for kid in ("deb11-5.10-amd64", "deb13-6.12-amd64", "sid-7-amd64"):
        names = {p.name for p in pins[kid].tools}
        assert "binutils" in names and any(re.fullmatch(r"gcc-\d+", n) for n in names), kid
        assert all(p.arch in ("amd64", "all") for p in pins[kid].tools)
    arm = pins["deb13-6.12-arm64"]
    guest = {p.name: p.arch for p in arm.tools if p.role == "guest"}
    assert {"busybox-static", "kexec-tools", "makedumpfile"} <= set(guest) and guest[
        "makedumpfile"
    ] == "arm64"
    assert any(p.name.startswith("gcc-14-aarch64-linux-gnu") for p in arm.tools)
    # sid's 7.x kernel is split: the image's vmlinuz and its modules are packaged apart.
    assert {p.role for p in pins["sid-7-amd64"].packages} >= {"image", "modules"}
    # kbuild's programs run on this host: always amd64.
    assert [p.arch for p in arm.packages if p.role == "kbuild"] == ["amd64"]


def test_pin_hash_follows_every_package_checksum() -> None:
    pin = kernel_pin()
    assert kernel_pin(None) == kernel_pin(DEFAULT_KERNEL) == pin
    changed = dataclasses.replace(pin.packages[0], sha256="0" * 64)
    other = dataclasses.replace(pin, packages=(changed, *pin.packages[1:]))
    assert pin_hash(pin) == pin_hash(kernel_pin(DEFAULT_KERNEL)) != pin_hash(other)


@pytest.mark.parametrize(
    ("kernel", "name", "release"),
    [
        ("deb12-6.1-amd64", "linux-image-6.1.0-57-cloud-amd64-dbg", "6.1.0-57-cloud-amd64"),
        ("deb12-6.1-amd64", "linux-image-6.12.118+deb12-cloud-amd64-dbg", None),  # 6.12, not 6.1
        ("deb11-5.10-amd64", "linux-image-6.1.0-0.deb11.52-cloud-amd64-dbg", None),  # a backport
        ("deb11-5.10-amd64", "linux-image-5.10.0-46-cloud-amd64-dbg", "5.10.0-46-cloud-amd64"),
        ("sid-7-amd64", "linux-image-7.2.13+deb14-cloud-amd64-dbg", "7.2.13+deb14-cloud-amd64"),
        ("deb13-6.12-arm64", "linux-image-6.12.118+deb13-cloud-arm64-dbg", "6.12.118+deb13-cloud-arm64"),
        ("deb13-6.12-arm64", "linux-image-6.12.118+deb13-cloud-amd64-dbg", None),  # another flavour
    ],
)
def test_repin_follows_the_kernel_line_only(kernel: str, name: str, release: str | None) -> None:
    m = KERNEL_LINES[kernel].release_pattern().fullmatch(name)
    assert (m.group(1) if m else None) == release


def test_repin_reads_first_alternatives_of_depends() -> None:
    depends = (
        "linux-base (>= 4.12~), gcc-14 | gcc-14-for-host, libc6:any (>= 2.38), linux-kbuild-6.12.118+deb13"
    )
    assert first_alternatives(depends) == [
        ("linux-base", None),
        ("gcc-14", None),
        ("libc6", "any"),
        ("linux-kbuild-6.12.118+deb13", None),
    ]


def test_matrix_samples_cover_every_kernel_in_make_test() -> None:
    everything = matrix_samples()
    labels = [s.label for s in everything]
    assert len(labels) == len(set(labels))
    make_test = matrix_samples(make_test_only=True)
    assert {s.kernel for s in make_test} == set(KERNEL_LINES)
    assert {s.scenario for s in make_test if s.kernel == DEFAULT_KERNEL} == set(SCENARIOS)
    for kernel in KERNEL_LINES:
        assert {"sysrq-c", "oops-null"} <= {s.scenario for s in everything if s.kernel == kernel}
    assert "sysrq-c@sid-7-amd64+lossy-d31" in labels and "sysrq-c@deb13-6.12-arm64+qemu-dump" in labels
    assert any(s.scenario == "many-tasks" and s.kernel != DEFAULT_KERNEL for s in everything)


def test_dump_plans_and_unknown_requests() -> None:
    assert dump_plan(DEFAULT_KERNEL).dump_level == 31 and not dump_plan(DEFAULT_KERNEL).raw_elf
    assert dump_plan("sid-7-amd64").lossy_d31 and dump_plan("sid-7-amd64").dump_level == 23
    assert dump_plan("deb13-6.12-arm64").raw_elf
    with pytest.raises(BuildError, match="Unknown kernel 'deb10"):
        check_known("oops-null", "deb10-4.19-amd64", None)
    with pytest.raises(BuildError, match="no lossy-d31 variant .only sid's"):
        check_known("sysrq-c", DEFAULT_KERNEL, "lossy-d31")
    with pytest.raises(BuildError, match="Unknown sample variant 'lossy'"):
        check_known("sysrq-c", "sid-7-amd64", "lossy")


def test_sample_dirs_name_kernel_and_variant() -> None:
    from vmcore_builder.build import sample_dir_for

    default = sample_dir_for("oops-null")
    assert default == sample_dir_for("oops-null", DEFAULT_KERNEL)
    assert default.name.startswith(f"oops-null-{kernel_pin().release}-")
    lossy = sample_dir_for("sysrq-c", "sid-7-amd64", "lossy-d31")
    assert lossy == sample_dir_for("sysrq-c", "sid-7-amd64")  # a file of the same guest run
    qemu = sample_dir_for("sysrq-c", "deb13-6.12-arm64", "qemu-dump")
    assert qemu.name.startswith("sysrq-c+qemu-dump-6.12.") and qemu != sample_dir_for(
        "sysrq-c", "deb13-6.12-arm64"
    )


def test_a_package_the_archive_no_longer_serves_names_it_and_the_repin_command(tmp_path: Path) -> None:
    pin = kernel_pin()
    gone = dataclasses.replace(
        pin.packages[0],
        filename=pin.packages[0].filename.replace(pin.version, "0.0.0-0"),
    )
    with pytest.raises(BuildError) as err:
        _download(pin, tmp_path, (gone,))
    message = str(err.value)
    assert f"no longer serves {gone.name} {gone.version}" in message
    assert f"samples/pin-kernels {pin.id}" in message
    assert not list(tmp_path.iterdir())  # nothing half-downloaded is left


def test_load_sample_variant_is_the_lossy_file_of_the_same_run(tmp_path: Path) -> None:
    from sample_store import SampleError, load_sample

    manifest = {
        "scenario": "sysrq-c", "kernel": "sid-7-amd64", "arch": "amd64", "variant": None,
        "dump_format": "kdump-compressed", "kernel_release": "7.2.13+deb14-cloud-amd64",
        "vmcore": "vmcore", "vmcore_elf": "vmcore.elf", "dmesg": "dmesg.txt", "console_log": "console.log",
        "vmlinux": "/k/vmlinux", "debug_info_dir": "/k", "debug_info": [], "module_source_dir": "labbug",
        "variants": {"lossy-d31": "vmcore-d31"}, "expected": {},
    }  # fmt: skip
    write_manifest(tmp_path, manifest)
    good, lossy = load_sample(tmp_path), load_sample(tmp_path, "lossy-d31")
    assert (good.vmcore.name, good.variant) == ("vmcore", None)
    assert (lossy.vmcore.name, lossy.variant, lossy.vmcore_elf.name) == (
        "vmcore-d31",
        "lossy-d31",
        "vmcore.elf",
    )
    assert (lossy.kernel, lossy.arch, lossy.dump_format) == ("sid-7-amd64", "amd64", "kdump-compressed")
    with pytest.raises(SampleError, match="has no 'qemu-dump' variant"):
        load_sample(tmp_path, "qemu-dump")


def test_the_pin_file_is_what_pin_kernels_writes(tmp_path: Path) -> None:
    from vmcore_builder.pins import save_pins

    default, pins = load_pins()
    save_pins(default, pins, tmp_path / "kernels.json")
    assert json.loads((tmp_path / "kernels.json").read_text()) == json.loads(PIN_FILE.read_text())
