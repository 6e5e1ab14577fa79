"""Errors a user can fix (bad path, unknown task, missing column): the CLI prints one line, exit 2;
and the skip of one source item, which a build counts and goes on."""


class UserError(Exception):
    pass


class SkipItem(Exception):
    """A source item (an image, a graph node) that cannot become a puzzle; `reason` is counted in the manifest."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
