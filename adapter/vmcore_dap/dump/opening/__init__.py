"""Open a dump: the file's format and integrity, vmlinux and module debug info, the launch settings
and the checks a client runs before a session (:mod:`.preflight`)."""
