"""The body-segmentation lab: prepare the student package and the hidden answers, then grade a class safely.

Submissions are entries `SUBMISSIONS/<student>/` holding either

- `masks/`: one PNG per test image with the image's file name, 0 (background) and 255 (person);
  read defensively in the grader (utils.grading.masks), no student code runs; or
- `model.keras`: a Keras 3 model of standard layers. Its config is checked against an allow-list
  before Keras sees it (utils.grading.model_check), then it runs in an isolated child process with
  time and memory limits that receives only the test images (utils.grading.runner). It gets each
  image resized to its input size as float32 in [0, 1]; its output is upsampled back and
  thresholded at 0 (logits), 0.5 (sigmoid output layer) or read as background / person (two
  softmax channels).

Scores are the mean IoU and Dice over every test image (utils.grading.scoring); the rubric
(utils.grading.rubric) pays nothing at or below the best trivial baseline, and by default sets
its bands relative to that baseline and to the reference solution's score, which
utils.grading.calibrate measures on the class's package (`lab calibrate`). Identical or
near-identical submissions are flagged (utils.grading.duplicates); the written part's points
are merged by hand (utils.grading.manual) and grades exported for Canvas or Moodle
(utils.grading.export). The gradebook
(utils.grading.gradebook) has one row per entry, flushed as each finishes; reports come in two
kinds (utils.grading.reports). A student's files are only ever read. See SECURITY.md.

Modules: prepare (the package, answers, hashes, baselines), submit (the student's side), names,
masks, model_check, runner, answers, scoring, rubric, calibrate, duplicates, gradebook, reports,
grader (the batch), manual, export.
"""

from utils.grading.answers import Answers
from utils.grading.export import export_grades
from utils.grading.gradebook import (
    GRADEBOOK_COLUMNS,
    MANUAL_COLUMNS,
    GradeRow,
    read_gradebook,
    write_gradebook,
)
from utils.grading.grader import grade_submissions
from utils.grading.manual import merge_manual
from utils.grading.masks import MAX_MASK_BYTES, MaskRefused, decode_mask, read_mask_folder
from utils.grading.model_check import (
    ALLOWED_ACTIVATIONS,
    ALLOWED_LAYERS,
    MAX_PARAMS,
    ModelRefused,
    check_keras_file,
)
from utils.grading.names import csv_cell, display_name, markdown_text
from utils.grading.prepare import prepare_lab, starter_masks
from utils.grading.rubric import (
    ABSOLUTE_EXAMPLE,
    DEFAULT_RUBRIC,
    check_rubric,
    is_relative,
    load_rubric,
    max_points,
    points_for,
    resolve_rubric,
    rubric_text,
    written_points,
)
from utils.grading.runner import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    Limits,
    RunFailed,
    predict_full_size,
    probe_sandbox,
    run_model,
)
from utils.grading.scoring import baseline_scores
from utils.grading.submit import submission_summary, write_submission

__all__ = [
    "ABSOLUTE_EXAMPLE",
    "ALLOWED_ACTIVATIONS",
    "ALLOWED_LAYERS",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_RUBRIC",
    "DEFAULT_TIMEOUT",
    "GRADEBOOK_COLUMNS",
    "MANUAL_COLUMNS",
    "MAX_MASK_BYTES",
    "MAX_PARAMS",
    "Answers",
    "GradeRow",
    "Limits",
    "MaskRefused",
    "ModelRefused",
    "RunFailed",
    "baseline_scores",
    "check_keras_file",
    "check_rubric",
    "csv_cell",
    "decode_mask",
    "display_name",
    "export_grades",
    "grade_submissions",
    "is_relative",
    "load_rubric",
    "markdown_text",
    "max_points",
    "merge_manual",
    "points_for",
    "predict_full_size",
    "prepare_lab",
    "probe_sandbox",
    "read_gradebook",
    "read_mask_folder",
    "resolve_rubric",
    "rubric_text",
    "run_model",
    "starter_masks",
    "submission_summary",
    "write_gradebook",
    "write_submission",
    "written_points",
]
