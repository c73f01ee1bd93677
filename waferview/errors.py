"""Errors a user can fix. The CLI prints them as one line and exits 2."""


class InputError(Exception):
    """Bad input or bad usage: a file, an option, a source. The message is the whole story."""


class TraceFileError(InputError):
    """One trace file is malformed. `file` names it; the message says where and what."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason
