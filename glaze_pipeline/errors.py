"""One exception tree: everything glaze raises on purpose derives from `GlazeError`.

`UserFacingError` is what a person can act on: its message says what to do. The
edges (the CLI, the sensors, the API) catch it once and show the sentence, not a
traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class GlazeError(Exception):
    """Base of every error glaze raises on purpose."""


class UserFacingError(GlazeError):
    """A problem the user can fix; the message is one sentence that says how."""
