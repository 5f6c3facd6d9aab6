"""Errors whose message is meant for the analyst, not the developer.

Pages show a :class:`UserError` as a plain message; anything else is a bug and is logged with its traceback on the
server while the page shows a short apology. Keeping that split in the backend means the CLI prints the same
messages the app shows.
"""


class UserError(ValueError):
    """Something the user can fix: a bad file, an empty label set, a folder that is not a model."""


class DataError(UserError):
    """A dataset could not be read or does not have what the task needs."""


class LabelError(UserError):
    """A label set is empty, has duplicates, or does not fit the chosen mode."""


class ModelError(UserError):
    """A model could not be found, loaded, or used for the requested role."""


class TemplateError(UserError):
    """A prompt template is malformed or names placeholders the data does not have."""


class TrainingError(UserError):
    """Training settings or training data do not allow a run."""
