"""Re-pin the matrix's kernels: the newest version of each kernel line, and the packages it needs.

Run by ``samples/pin-kernels [KERNEL_ID…]``. For each kernel it refreshes that suite's private
lists (``apt.py``), picks the newest ``linux-image-<release>-dbg`` of the kernel's series and
flavour, and records every package a sample build downloads, with its pool path and SHA-256:

- the image (``-unsigned`` when there is one; sid's 7.x split ``linux-binary-unsigned`` +
  ``linux-modules``), the ``-dbg`` package, ``linux-headers-<release>`` and what it depends on
  among ``linux-headers-*`` / ``linux-kbuild-*`` (kbuild always for amd64: it runs on this host);
Only files the archive really serves are pinned (a suite's index can name superseded files its
mirror no longer keeps): the newest release whose every package is there wins.

- ``tools``: the compiler the kernel's headers call, from the kernel's own suite, with every
  library it needs (a kernel of another suite than the host's), and for arm64 the cross
  compiler, the static C library and the guest's userland (busybox, kexec, makedumpfile).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .apt import PackageRecord, PrivateApt, is_served, private_apt
from .common import BuildError, progress
from .matrix import HOST_SUITE, KernelLine
from .pins import KernelPin, PinnedPackage

__all__ = ["GUEST_PACKAGES", "dependency_closure", "first_alternatives", "pin_kernel"]

#: The guest userland of a kernel whose architecture is not the host's (arm64).
GUEST_PACKAGES = ("busybox-static", "kexec-tools", "makedumpfile")

#: Packages a closure never needs: package-management and init glue, not run by the builder.
_SKIP = frozenset(
    {
        "debconf", "debconf-2.0", "dpkg", "perl-base", "init-system-helpers", "lsb-base", "adduser",
        "sysvinit-utils", "kdump-tools", "libc-bin", "tar", "coreutils", "awk", "mawk", "bash",
        "install-info", "usrmerge", "base-files", "linux-base", "pahole", "libc-dev-bin",
        "gcc-for-host", "cpp-for-host", "python3", "kmod", "dracut", "initramfs-tools",
    }
)  # fmt: skip

_DEP_NAME = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]+)(?::(\w+))?")


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release.split("-cloud")[0]))


def _pinned(role: str, rec: PackageRecord) -> PinnedPackage:
    return PinnedPackage(
        role=role,
        name=rec.name,
        version=rec.version,
        arch=rec.architecture,
        archive=rec.archive,
        filename=rec.filename,
        sha256=rec.sha256,
        size=rec.size,
    )


def first_alternatives(depends: str) -> list[tuple[str, str | None]]:
    """``a (>= 1) | b, c:any`` -> [("a", None), ("c", "any")]: the first of each alternative."""
    names = []
    for clause in depends.split(","):
        m = _DEP_NAME.match(clause.split("|")[0])
        if m:
            names.append((m.group(1), m.group(2)))
    return names


def _exists(apt: PrivateApt, name: str, arch: str) -> PackageRecord | None:
    try:
        return apt.show(name, arch)
    except BuildError:
        return None


def dependency_closure(apt: PrivateApt, roots: Iterable[str], arch: str, role: str) -> list[PinnedPackage]:
    """``roots`` and everything they depend on (first alternatives), for ``arch``, pinned with
    ``role``; virtual packages and :data:`_SKIP` are left out. (crash_builds.py pins crash's
    libraries with it too.)"""
    seen: dict[str, PinnedPackage] = {}
    todo = [(r, arch) for r in roots]
    while todo:
        name, want = todo.pop()
        if name in _SKIP or name in seen:
            continue
        rec = _exists(apt, name, want)
        if rec is None:
            continue  # virtual (e.g. libc-dev), provided by a package already in the closure
        seen[name] = _pinned(role, rec)
        for dep, qualifier in first_alternatives(rec.depends):
            todo.append((dep, "amd64" if qualifier == "amd64" else arch))
    return sorted(seen.values(), key=lambda p: p.name)


def _kernel_packages(apt: PrivateApt, line: KernelLine, release: str) -> list[PinnedPackage]:
    arch = line.arch
    found: list[PinnedPackage] = []
    unsigned = _exists(apt, f"linux-image-{release}-unsigned", arch)
    if unsigned is not None:
        found.append(_pinned("image", unsigned))
    elif (binary := _exists(apt, f"linux-binary-unsigned-{release}", arch)) is not None:
        # 7.x: linux-image-<rel> is a meta-package; vmlinuz and modules are packaged apart.
        found.append(_pinned("image", binary))
        found.append(_pinned("modules", apt.show(f"linux-modules-{release}", arch)))
    else:
        found.append(_pinned("image", apt.show(f"linux-image-{release}", arch)))
    found.append(_pinned("dbg", apt.show(f"linux-image-{release}-dbg", arch)))
    headers = apt.show(f"linux-headers-{release}", arch)
    found.append(_pinned("headers", headers))
    # The patched source tree the -dbg package's DWARF names (sourceRoot of the launch configs).
    source = f"linux-source-{'.'.join(release.split('.')[:2])}"
    found += [_pinned("source", r) for r in apt.versions(source, "amd64") if r.version == found[0].version][
        :1
    ]
    for dep, _ in first_alternatives(headers.depends):
        if dep.startswith("linux-headers-"):
            found.append(_pinned("headers-common", apt.show(dep, arch)))
        elif dep.startswith("linux-kbuild-"):
            found.append(_pinned("kbuild", apt.show(dep, "amd64")))  # host tools: run here
    return found


def _compiler_roots(line: KernelLine, headers_depends: str) -> list[str]:
    """The gcc the headers call (``gcc-14``, ``gcc-16-for-host``, via ``linux-compiler-gcc-10-x86``)."""
    gcc = None
    for dep, _ in first_alternatives(headers_depends):
        m = re.fullmatch(r"(?:gcc-(\d+)(?:-for-host)?|linux-compiler-gcc-(\d+)-\w+)", dep)
        if m:
            gcc = m.group(1) or m.group(2)
    if gcc is None:
        raise BuildError(f"linux-headers of {line.id} names no gcc-N to build modules with")
    if line.arch == "arm64":
        return [f"gcc-{gcc}-aarch64-linux-gnu", "binutils-aarch64-linux-gnu", "libc6-dev-arm64-cross"]
    return [f"gcc-{gcc}", "binutils"]


def pin_kernel(line: KernelLine) -> KernelPin:
    """Pin the newest kernel of ``line`` (refreshing the suite's private lists first)."""
    apt = private_apt(line.suite)
    apt.update(force=True)
    pattern = line.release_pattern()
    releases = [m.group(1) for n in apt.package_names("linux-image-") if (m := pattern.fullmatch(n))]
    if not releases:
        raise BuildError(
            f"No linux-image-{line.series}.*-{line.flavour}-dbg in Debian {line.suite} "
            f"(the kernel line of {line.id} is gone from the archive: change its series in matrix.py)"
        )
    packages: list[PinnedPackage] = []
    for release in sorted(releases, key=_release_key, reverse=True):
        packages = _kernel_packages(apt, line, release)
        gone = [p.name for p in packages if not is_served(p.archive, p.filename)]
        if not gone:
            break
        progress(f"{line.id}: {release} is in the index but the archive does not serve {', '.join(gone)}")
    else:
        raise BuildError(
            f"The Debian archive serves no complete {line.series} {line.flavour} kernel for {line.id}"
        )
    progress(f"{line.id}: newest served is {release}")
    version = next(p.version for p in packages if p.role == "dbg")
    tools: list[PinnedPackage] = []
    if line.suite != HOST_SUITE or line.arch != "amd64":
        headers = apt.show(f"linux-headers-{release}", line.arch)
        kbuild = [p.name for p in packages if p.role == "kbuild"]
        # The kbuild tools (fixdep, modpost, objtool) are the suite's too: their libraries come along.
        roots = [*_compiler_roots(line, headers.depends), *kbuild]
        tools += [p for p in dependency_closure(apt, roots, "amd64", "compiler") if p.name not in kbuild]
    if line.arch != "amd64":
        tools += dependency_closure(apt, GUEST_PACKAGES, line.arch, "guest")
    gone = [f"{p.name} {p.version}" for p in tools if not is_served(p.archive, p.filename)]
    if gone:
        raise BuildError(
            f"The Debian archive does not serve {', '.join(gone)} (needed to build {line.id}'s guest)"
        )
    return KernelPin(
        id=line.id,
        suite=line.suite,
        arch=line.arch,
        flavour=line.flavour,
        series=line.series,
        release=release,
        version=version,
        packages=tuple(packages),
        tools=tuple(tools),
    )
