"""Point every Colab badge, clone command and GitHub link of the course at one repository and ref."""

from __future__ import annotations

import re
from pathlib import Path

from utils import course
from utils.errors import CourseError

_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
_SKIP = {".git", "data", "runs", "__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache"}


def course_files(root: Path = course.ROOT) -> list[Path]:
    """Return the notebooks, Markdown files and course settings that carry links, sorted."""
    found = [
        p
        for p in root.rglob("*")
        if p.suffix in {".ipynb", ".md"} and p.is_file() and not _SKIP.intersection(p.relative_to(root).parts)
    ]
    return sorted([*found, root / "utils" / "course.py"])


def rewrite_text(text: str, old_repo: str, old_ref: str, repo: str, ref: str) -> str:
    """Return text with the old repository and ref replaced in badges, clone commands and links."""
    old, new = re.escape(old_repo), repo
    text = re.sub(
        rf"colab\.research\.google\.com/github/{old}/blob/{re.escape(old_ref)}/",
        f"colab.research.google.com/github/{new}/blob/{ref}/",
        text,
    )
    text = re.sub(rf"github\.com/{old}/(blob|tree)/{re.escape(old_ref)}/", rf"github.com/{new}/\1/{ref}/", text)
    text = re.sub(rf"--branch {re.escape(old_ref)} https://github\.com/{old}\.git", f"--branch {ref} https://github.com/{new}.git", text)
    text = re.sub(rf"github\.com/{old}(?=[\"'/)\s.#]|$)", f"github.com/{new}", text)
    text = re.sub(r'^REPO = "[^"]*"$', f'REPO = "{repo}"', text, flags=re.M)
    text = re.sub(r'^REF = "[^"]*"$', f'REF = "{ref}"', text, flags=re.M)
    return text


def rewrite_links(repo: str, ref: str | None = None, root: Path = course.ROOT) -> list[Path]:
    """Rewrite every link from the current REPO/REF to `repo`/`ref`; return the files changed."""
    ref = ref or course.REF
    if not _REPO_RE.match(repo):
        raise CourseError(course.say(f"--repo {repo!r} is not OWNER/NAME, e.g. --repo my-school/semantic-segmentation",
                                     f"--repo {repo!r} no tiene la forma OWNER/NAME; por ejemplo, "
                                     "--repo my-school/semantic-segmentation"))
    if not _REF_RE.match(ref) or ".." in ref:
        raise CourseError(course.say(f"--ref {ref!r} is not a branch or tag name, e.g. --ref main or --ref v1.0",
                                     f"--ref {ref!r} no es un nombre de rama ni de etiqueta; por ejemplo, "
                                     "--ref main o --ref v1.0"))
    settings = (root / "utils" / "course.py").read_text(encoding="utf-8")
    old_repo = re.search(r'^REPO = "([^"]*)"$', settings, flags=re.M).group(1)
    old_ref = re.search(r'^REF = "([^"]*)"$', settings, flags=re.M).group(1)
    changed = []
    for path in course_files(root):
        text = path.read_text(encoding="utf-8")
        new = rewrite_text(text, old_repo, old_ref, repo, ref)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed
