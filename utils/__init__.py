"""Shared helpers for the semantic segmentation course: data, models, metrics, plots, grading."""

from utils.errors import CourseError

__all__ = ["CourseError"]
__version__ = "0.1.0"
