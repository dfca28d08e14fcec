"""Error classes shared by every layer.

They live outside :mod:`vmcore_dap.dap` so that :mod:`vmcore_dap.dump` can raise them without knowing
anything about the protocol; the DAP channel turns them into ``success: false`` responses.

Messages follow one form: "<what failed>: <why> (<what to do>)", written for a person, never a Python
repr.
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "UserError",
    "NotAvailable",
    "ReadOnlyError",
    "InvalidArguments",
    "SettingError",
    "Cancelled",
    "StaleReference",
]


class AdapterError(Exception):
    """Base of the errors the adapter expects and reports as written.

    :param message: one sentence for the user.
    :param show_user: whether a client should pop the message up (``body.error.showUser``).
    """

    error_id = 1000
    show_user = True

    def __init__(self, message: str, *, show_user: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if show_user is not None:
            self.show_user = show_user


class UserError(AdapterError):
    """Bad launch configuration, bad expression, mismatching vmlinux: the user can act on it."""

    error_id = 1001


class InvalidArguments(UserError):
    """A request whose arguments are missing or of the wrong type."""

    error_id = 1002


class SettingError(UserError):
    """A launch setting that cannot be used: the file it names is missing, of the wrong kind, or
    does not match the dump.

    The message names the setting as the launch configuration spells it (``'vmlinux'``), never where
    it is written: the dump layer is used from shells and batch reports as well. The protocol
    boundary that received the setting says where it lives (:meth:`located`).

    :param setting: the setting at fault (``vmcore``, ``vmlinux``, ``debugInfo`` …).
    """

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting

    def located(self, place: str) -> SettingError:
        """The same error, its setting placed: "(check 'vmlinux')" → "(check 'vmlinux' in launch.json)".

        The place follows the last mention of the setting (the hint at the end of the message). A
        message that does not mention it (a truncated file: the fix is not in the settings) is kept.
        """
        quoted = f"'{self.setting}'"
        at = self.message.rfind(quoted)
        if at < 0:
            return self
        end = at + len(quoted)
        return SettingError(f"{self.message[:end]} in {place}{self.message[end:]}", self.setting)


class StaleReference(UserError):
    """A thread id, frame id or variables reference that this session never handed out."""

    error_id = 1003
    show_user = False


class NotAvailable(AdapterError):
    """Something the dump legitimately lacks (no source, optimized out): reported quietly."""

    error_id = 1004
    show_user = False


class ReadOnlyError(UserError):
    """A request that would resume or modify the target: a crash dump is frozen for ever."""

    error_id = 1005

    def __init__(self, command: str) -> None:
        super().__init__(f"{command}: the vmcore is read-only: a crash dump cannot be resumed or modified")


class Cancelled(AdapterError):
    """The client cancelled the request (DAP ``cancel``) while it ran or waited."""

    error_id = 1006
    show_user = False

    def __init__(self, command: str = "request") -> None:
        super().__init__(f"{command}: cancelled")
