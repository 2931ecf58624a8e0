"""The one exception type the course raises for bad input it can name."""


class CourseError(Exception):
    """Expected bad input: the message names the file or case and says what to do.

    The command line prints the message on one line and exits non-zero; notebooks show it as is.
    """
