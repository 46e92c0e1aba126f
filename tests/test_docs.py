"""The examples in docstrings and in the README run and print what they claim."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import factorise.lab
import factorise.svd

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", [factorise.lab, factorise.svd])
def test_docstring_examples(module: object) -> None:
    failures, tried = doctest.testmod(module, raise_on_error=False)  # type: ignore[arg-type]
    assert tried > 0 and failures == 0


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README should show the library in use"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})  # noqa: S102 - our own README


def test_readme_quick_start_matches_ci() -> None:
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in text, "the README's test command must be the one .ci/run runs"
