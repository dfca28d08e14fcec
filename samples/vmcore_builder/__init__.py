"""Build real kdump vmcores of a Debian kernel crashed in QEMU (used by ``make-vmcore``).

Each module owns one step: ``kernel`` (fetch and extract Debian's packages),
``guest`` (compile the module and programs), ``initramfs`` (pack the guest),
``qemu`` (boot, crash, capture), ``facts`` (derive the manifest's ``expected``
from the dump's own dmesg), ``manifest`` (atomic write and load), ``build``
(the order of the steps and the cache).
"""
