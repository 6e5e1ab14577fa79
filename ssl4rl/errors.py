"""Errors a user can fix (bad path, unknown task, missing column): the CLI prints one line, exit 2."""


class UserError(Exception):
    pass
