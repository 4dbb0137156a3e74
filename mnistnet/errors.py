"""Domain errors. The CLI turns each into a one-line message and an exit code.

Exit codes used by the whole tool (documented in the README):

0 success, 1 failure (bad data or model file, download failed, training
diverged), 2 usage error, 3 ``evaluate`` below ``--min-accuracy``,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

EXIT_FAILURE = 1
EXIT_BELOW_THRESHOLD = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class MnistnetError(Exception):
    """Base class of every expected failure; its message is shown as is.

    Library code speaks of settings in words ("the learning rate") and names
    the setting's key in ``setting`` (``"lr"``); the command line adds the
    flag that sets it (``--lr``), a Python caller the keyword.
    """

    def __init__(self, message, *, setting=None):
        super().__init__(message)
        self.setting = setting


class IdxFormatError(MnistnetError):
    """An IDX file is malformed (the message names the file and the problem)."""


class DatasetError(MnistnetError):
    """A dataset is unknown, incomplete, or fails verification."""


class DownloadError(DatasetError):
    """Every mirror failed for a file (the message lists each and why)."""


class ConfigError(MnistnetError):
    """A config file or option value is wrong (the message names the key)."""


class ModelFileError(MnistnetError):
    """A saved model file is unreadable, foreign or inconsistent."""


class DivergenceError(MnistnetError):
    """Training produced a non-finite loss or non-finite weights."""
