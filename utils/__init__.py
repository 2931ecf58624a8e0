"""Shared helpers for the semantic segmentation course: data, models, metrics, plots, grading."""

import os

# TensorFlow's start-up chatter (CUDA probes, CPU instruction notes) hides what the lesson prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from utils import quiet  # noqa: E402

quiet.install()  # and the lines TensorFlow 2.21 prints before that variable applies (utils/quiet.py)

from utils.course import set_language  # noqa: E402
from utils.errors import CourseError  # noqa: E402

__all__ = ["CourseError", "set_language"]
__version__ = "0.1.0"
