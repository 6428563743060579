"""The one error type of the model pipeline: the CLI prints its message and exits non-zero."""


class PipelineError(Exception):
    """A problem the user can fix (a config value, a data file, a failed gate), named in the message."""
