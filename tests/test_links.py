import pytest

from utils.errors import CourseError
from utils.links import rewrite_links

BADGE = "https://colab.research.google.com/github/old-owner/course/blob/main/notebooks/L.ipynb"


def make_course(tmp_path):
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "course.py").write_text('REPO = "old-owner/course"\nREF = "main"\n', encoding="utf-8")
    nb = tmp_path / "notebooks" / "L.ipynb"
    nb.parent.mkdir()
    nb.write_text(
        '{"cells": [{"source": ["[![Open In Colab](b.svg)](' + BADGE + ')\\n",'
        ' "!git clone --depth 1 --branch main https://github.com/old-owner/course.git /content/course"]}]}',
        encoding="utf-8",
    )
    (tmp_path / "README.md").write_text("See https://github.com/old-owner/course and https://github.com/old-owner/other.\n", encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.md").write_text("https://github.com/old-owner/course\n", encoding="utf-8")
    return tmp_path


def test_rewrites_badges_clone_and_settings(tmp_path):
    root = make_course(tmp_path)
    changed = rewrite_links("my-school/seg", "v2", root=root)
    assert {p.name for p in changed} == {"course.py", "L.ipynb", "README.md"}
    nb = (root / "notebooks" / "L.ipynb").read_text(encoding="utf-8")
    assert "colab.research.google.com/github/my-school/seg/blob/v2/notebooks/L.ipynb" in nb
    assert "--branch v2 https://github.com/my-school/seg.git" in nb
    assert "old-owner" not in nb
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "github.com/my-school/seg and" in readme and "old-owner/other" in readme
    assert 'REPO = "my-school/seg"' in (root / "utils" / "course.py").read_text(encoding="utf-8")
    assert "old-owner" in (root / "data" / "x.md").read_text(encoding="utf-8")  # data/ is never touched


def test_rewrite_is_repeatable(tmp_path):
    root = make_course(tmp_path)
    rewrite_links("a/b", "main", root=root)
    assert rewrite_links("a/b", "main", root=root) == []
    rewrite_links("old-owner/course", "main", root=root)
    assert BADGE in (root / "notebooks" / "L.ipynb").read_text(encoding="utf-8")


@pytest.mark.parametrize("repo", ["noslash", "a/b/c", "../x", "a b/c"])
def test_bad_repo_is_refused(tmp_path, repo):
    root = make_course(tmp_path)
    before = (root / "README.md").read_text(encoding="utf-8")
    with pytest.raises(CourseError, match="OWNER/NAME"):
        rewrite_links(repo, root=root)
    assert (root / "README.md").read_text(encoding="utf-8") == before


def test_repository_links_point_at_the_configured_repo():
    from utils import course
    from utils.links import course_files

    for path in course_files():
        text = path.read_text(encoding="utf-8")
        if "colab.research.google.com/github/" in text:
            assert f"colab.research.google.com/github/{course.REPO}/blob/{course.REF}/" in text, path
