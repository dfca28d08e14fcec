"""Open a dump: the file's format and integrity, vmlinux and module debug info, launch configuration."""
