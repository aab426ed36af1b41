"""Errors the pipeline raises on purpose, split by whether retrying can help."""


class PipelineError(Exception):
    """Base of the errors a stage raises deliberately."""


class DataError(PipelineError):
    """The input itself is unusable: retrying cannot help, so the stage fails at once."""


class ConfigError(PipelineError):
    """Pipeline parameters or the candidate grid are invalid."""


class TrainingFailedError(PipelineError):
    """A candidate failed for good, so the run has nothing complete to select from."""
