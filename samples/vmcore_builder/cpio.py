"""Write initramfs archives in the kernel's "newc" cpio format, without root.

Writing the archive ourselves lets it contain /dev/console (a device node) and
root-owned files without mknod or fakeroot, and makes it byte-for-byte
reproducible (fixed inode numbers and mtimes).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Archive"]

_MAGIC = b"070701"


@dataclass
class _Entry:
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


@dataclass
class Archive:
    """An in-memory file tree, written out as a newc cpio archive."""

    entries: dict[str, _Entry] = field(default_factory=dict)

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), _Entry(stat.S_IFDIR | 0o755))

    def add_dir(self, path: str, perm: int = 0o755) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = _Entry(stat.S_IFDIR | perm)

    def add_file(self, path: str, data: bytes, perm: int = 0o644) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = _Entry(stat.S_IFREG | perm, data)

    def add_host_file(self, path: str, source: Path, perm: int | None = None) -> None:
        """Copy ``source`` (symlinks followed) to ``path``, keeping its permissions by default."""
        mode = source.stat().st_mode
        self.add_file(path, source.read_bytes(), stat.S_IMODE(mode) if perm is None else perm)

    def add_symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = _Entry(stat.S_IFLNK | 0o777, target.encode())

    def add_char_device(self, path: str, major: int, minor: int, perm: int = 0o600) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = _Entry(stat.S_IFCHR | perm, rdev=(major, minor))

    def __contains__(self, path: str) -> bool:
        return path.strip("/") in self.entries

    def to_bytes(self) -> bytes:
        """Serialise: parents before children, then the TRAILER!!! record."""
        out = bytearray()
        for ino, name in enumerate(sorted(self.entries), start=1):
            _write_record(out, ino, name, self.entries[name])
        _write_record(out, 0, "TRAILER!!!", _Entry(0))
        return bytes(out)

    def write(self, dest: Path) -> None:
        dest.write_bytes(self.to_bytes())


def _pad4(out: bytearray) -> None:
    out.extend(b"\0" * (-len(out) % 4))


def _write_record(out: bytearray, ino: int, name: str, entry: _Entry) -> None:
    encoded = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (
        ino, entry.mode, 0, 0, nlink, 0, len(entry.data),
        0, 0, entry.rdev[0], entry.rdev[1], len(encoded), 0,
    )  # fmt: skip
    out.extend(_MAGIC + b"".join(b"%08X" % f for f in fields))
    out.extend(encoded)
    _pad4(out)
    out.extend(entry.data)
    _pad4(out)
