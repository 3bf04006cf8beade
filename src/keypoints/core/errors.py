"""The one exception type for mistakes a user can make (bad paths, bad CSV rows, bad images).

Entry points print its message as a single line instead of a traceback.
"""


class KeypointsError(Exception):
    """A user-fixable problem; the message names the file, row or key at fault and the fix."""
