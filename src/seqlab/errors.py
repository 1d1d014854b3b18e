"""User-facing errors.

A `UserError` is something the user can fix (a missing file, a wrong column, a checkpoint from
another task). The CLI prints its message as one sentence and exits non-zero, with no traceback.
Everything else is a bug in seqlab and keeps its traceback.
"""


class UserError(Exception):
    """An error caused by the user's input; the message says what is wrong and how to fix it."""
