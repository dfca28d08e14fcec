"""A private APT per Debian suite, in the cache: package look-ups for re-pinning, and downloads.

The system's apt sources and lists are never used nor changed: each suite gets
``$CACHE/apt/<suite>/`` with its own ``sources.list``, lists, package cache and an empty
dpkg status, for amd64 and arm64, so a look-up answers for that suite alone however old
the host's lists are. Downloads need no lists at all: a pin names each package's pool path
and SHA-256 (``pins.py``), and :func:`download_pinned` fetches exactly that file with
``apt-helper`` (APT's own acquire code: proxy settings, retries) and checks the hash.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .common import BuildError, cache_root, progress, run

__all__ = [
    "ARCHIVES",
    "PackageRecord",
    "PinnedFileGone",
    "download_pinned",
    "is_served",
    "mirror_of",
    "private_apt",
]

#: Suite -> (archive, distribution) pairs it is made of. bullseye's and bookworm's fixes come
#: from their -security and -updates suites; sid is one suite.
ARCHIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "bullseye": (
        ("debian", "bullseye"),
        ("debian", "bullseye-updates"),
        ("debian-security", "bullseye-security"),
    ),
    "bookworm": (
        ("debian", "bookworm"),
        ("debian", "bookworm-updates"),
        ("debian-security", "bookworm-security"),
    ),
    "trixie": (("debian", "trixie"), ("debian", "trixie-updates"), ("debian-security", "trixie-security")),
    "sid": (("debian", "sid"),),
}

_ARCHITECTURES = ("amd64", "arm64")
_SYSTEM_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
_DEFAULT_MIRRORS = {
    "debian": "http://deb.debian.org/debian",
    "debian-security": "http://deb.debian.org/debian-security",
}
#: Lists younger than this are not fetched again by a look-up (a re-pin always refreshes).
_LISTS_MAX_AGE_S = 3600


class PinnedFileGone(BuildError):
    """The archive no longer serves a pinned package file."""


@dataclass(frozen=True)
class PackageRecord:
    """One package as a suite's Packages index describes it."""

    name: str
    version: str
    architecture: str
    filename: str
    sha256: str
    size: int
    depends: str
    archive: str


def mirror_of(archive: str) -> str:
    """Return the base URL of ``archive`` (``debian`` or ``debian-security``), as the host uses it.

    Read from the host's deb822 sources so a proxy-only or local mirror keeps working;
    Debian's own host names otherwise.
    """
    try:
        text = _SYSTEM_SOURCES.read_text()
    except OSError:
        text = ""
    for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M):
        if uri.rstrip("/").endswith("/" + archive):
            return uri.rstrip("/")
    return _DEFAULT_MIRRORS[archive]


def _apt_env(conf: Path) -> dict[str, str]:
    return dict(os.environ, APT_CONFIG=str(conf), DEBIAN_FRONTEND="noninteractive", LC_ALL="C")


class PrivateApt:
    """APT for one suite, configured under ``root`` (created on first use)."""

    def __init__(self, suite: str, root: Path) -> None:
        if suite not in ARCHIVES:
            raise BuildError(f"Unknown Debian suite '{suite}' (known: {', '.join(ARCHIVES)})")
        self.suite = suite
        self.root = root
        self.conf = root / "apt.conf"
        self._indexes: dict[str, dict[str, list[PackageRecord]]] = {}

    def _write_config(self) -> None:
        for sub in ("lists/partial", "cache/archives/partial", "etc"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        lines = [f"deb {mirror_of(archive)} {dist} main" for archive, dist in ARCHIVES[self.suite]]
        (self.root / "etc" / "sources.list").write_text("\n".join(lines) + "\n")
        archs = " ".join(f'"{a}";' for a in _ARCHITECTURES)
        self.conf.write_text(
            f'Dir::State::Lists "{self.root}/lists";\n'
            f'Dir::State::status "{self.root}/status";\n'
            f'Dir::Cache "{self.root}/cache";\n'
            f'Dir::Etc::SourceList "{self.root}/etc/sources.list";\n'
            'Dir::Etc::SourceParts "/nonexistent";\n'
            'Dir::Etc::Preferences "/nonexistent";\n'
            'Dir::Etc::PreferencesParts "/nonexistent";\n'
            f"APT::Architectures {{ {archs} }};\n"
            # sid's InRelease may be past its Valid-Until on a mirror; the signature still counts.
            'Acquire::Check-Valid-Until "false";\n'
            'Acquire::Languages "none";\n'
            'APT::Sandbox::User "root";\n'
        )

    def update(self, *, force: bool = False) -> None:
        """Fetch the suite's lists (signed indexes, checked by apt) unless fresh enough."""
        self._write_config()
        stamp = self.root / "updated"
        if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < _LISTS_MAX_AGE_S:
            return
        progress(f"refreshing the package lists of {self.suite} (private apt in {self.root})")
        run(
            ["apt-get", "update", "-q"],
            what=f"refresh the package lists of Debian {self.suite} (is the Debian registry reachable?)",
            env=_apt_env(self.conf),
            timeout=900,
        )
        stamp.touch()

    def package_names(self, prefix: str) -> list[str]:
        """Names of every package starting with ``prefix`` in the suite."""
        names = set()
        for arch in _ARCHITECTURES:
            names.update(n for n in self._index(arch) if n.startswith(prefix))
        return sorted(names)

    def _index(self, arch: str) -> dict[str, list[PackageRecord]]:
        """Every package of the suite for ``arch`` (and ``all``), read once from the signed lists
        apt fetched (one ``apt-helper cat-file`` per index; thousands of ``apt-cache show`` calls
        would take minutes)."""
        if arch in self._indexes:
            return self._indexes[arch]
        index: dict[str, list[PackageRecord]] = {}
        for lists in sorted((self.root / "lists").glob(f"*_binary-{arch}_Packages*")):
            text = run(["/usr/lib/apt/apt-helper", "cat-file", lists], what=f"read {lists.name}")
            for stanza in text.split("\n\n"):
                rec = _record(stanza)
                if rec is not None:
                    index.setdefault(rec.name, []).append(rec)
        if not index:
            raise BuildError(f"No package lists for {arch} in {self.root / 'lists'} (apt-get update failed?)")
        self._indexes[arch] = index
        return index

    def versions(self, name: str, arch: str) -> list[PackageRecord]:
        """Every version of ``name`` for ``arch`` the suite's lists hold (the suite and its updates)."""
        return list(self._index(arch).get(name, []))

    def show(self, name: str, arch: str) -> PackageRecord:
        """The newest version of ``name`` for ``arch`` (raises BuildError when unknown)."""
        records = self._index(arch).get(name)
        if not records:
            raise BuildError(f"No package {name} for {arch} in Debian {self.suite}")
        return max(records, key=lambda r: _VersionKey(r.version))


def _record(stanza: str) -> PackageRecord | None:
    fields = dict(re.findall(r"^([A-Za-z0-9-]+): ?(.*)$", stanza, re.M))
    if "Package" not in fields or "Filename" not in fields:
        return None
    filename = fields["Filename"]
    return PackageRecord(
        name=fields["Package"],
        version=fields["Version"],
        architecture=fields["Architecture"],
        filename=filename,
        sha256=fields["SHA256"],
        size=int(fields["Size"]),
        depends=", ".join(d for d in (fields.get("Pre-Depends"), fields.get("Depends")) if d),
        # The security archive's pool is pool/updates/… (bookworm-security, trixie-security).
        archive="debian-security" if filename.startswith("pool/updates/") else "debian",
    )


class _VersionKey:
    """Order Debian versions as dpkg does (only called when a suite has several versions)."""

    def __init__(self, version: str) -> None:
        self.version = version

    def __lt__(self, other: _VersionKey) -> bool:
        return (
            subprocess.run(
                ["dpkg", "--compare-versions", self.version, "lt", other.version], check=False
            ).returncode
            == 0
        )


def private_apt(suite: str) -> PrivateApt:
    """Return the private APT of ``suite`` under ``$CACHE/apt/<suite>``."""
    return PrivateApt(suite, cache_root() / "apt" / suite)


def is_served(archive: str, filename: str) -> bool:
    """Whether the archive serves ``filename`` now (an HTTP HEAD request; nothing is downloaded).

    A suite's index can name files its mirror no longer keeps (superseded security updates):
    a re-pin only picks files that are really there.
    """
    request = urllib.request.Request(f"{mirror_of(archive)}/{filename}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False
    except OSError as e:
        raise BuildError(f"Cannot reach the Debian archive ({mirror_of(archive)}): {e}") from None


def download_pinned(archive: str, filename: str, sha256: str, dest: Path, what: str) -> Path:
    """Download ``<mirror of archive>/<filename>`` to ``dest`` and check its SHA-256.

    :param what: names the package and version in the error, e.g. ``linux-image-…-dbg 6.1.192-3``.
    :raises PinnedFileGone: the archive does not serve the file (any more).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    url = f"{mirror_of(archive)}/{filename}"
    try:
        run(
            ["/usr/lib/apt/apt-helper", "-o", "APT::Sandbox::User=root", "download-file", url, partial,
             f"SHA256:{sha256}"],
            what=f"download {what}",
            timeout=1800,
        )  # fmt: skip
    except BuildError as e:
        partial.unlink(missing_ok=True)
        text = str(e)
        if re.search(r"\b404\b|Not Found", text):
            raise PinnedFileGone(f"The Debian archive no longer serves {what} ({url})") from None
        if "mismatch" in text.lower():
            raise BuildError(
                f"{what}: the downloaded file does not match the pinned SHA-256 {sha256}"
            ) from None
        raise
    partial.rename(dest)
    return dest
