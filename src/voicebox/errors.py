"""Our own exception types: each carries a one-line message a user can act on."""


class VoiceboxError(Exception):
    """Base class: the CLI prints its message on one line and exits non-zero."""

    exit_code = 1


class AudioError(VoiceboxError):
    """Audio that cannot be read, decoded or written."""

    exit_code = 2


class InputError(VoiceboxError):
    """Arguments or text that cannot be used as given."""

    exit_code = 2


class EngineError(VoiceboxError):
    """A bundled engine is missing or failed to load."""

    exit_code = 3


class NotReadyError(VoiceboxError):
    """A feature that is not available yet (for example a model without a checkpoint)."""

    exit_code = 4


class VoiceboxWarning(UserWarning):
    """Work that went ahead but may disappoint (for example a very short clone reference); the CLI
    prints it as one `warning:` line, library callers get it through the `warnings` module."""
