"""The one error type of the harness: a fetch, build or boot set-up step that cannot go on."""


class RealKvmError(Exception):
    """A step of the harness failed; the message says which and why."""
