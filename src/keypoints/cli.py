"""Entry-point plumbing: user mistakes end as one line on stderr, never a traceback."""

import functools
import sys

from keypoints.errors import KeypointsError


def friendly_errors(main):
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except KeypointsError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper
