"""tests/conftest.py's ordering: container tests run last, tests on a wall-clock deadline just before them,
the rest in collection order (tests/container_image.py says why)."""
from __future__ import annotations

import os

import pytest

from tests.conftest import REPO

pytest_plugins = ["pytester"]


def test_container_tests_run_last_and_deadline_tests_just_before(pytester: pytest.Pytester, monkeypatch) -> None:
    pytester.makeconftest("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    pytester.makeini("[pytest]\nmarkers =\n    container: c\n    deadline: d\n")
    pytester.makepyfile(
        test_a="import pytest\n"
               "@pytest.mark.container\ndef test_image(): pass\n"
               "def test_first(): pass\n"
               "@pytest.mark.deadline\ndef test_budget(): pass\n"
               "def test_second(): pass\n",
        test_b="import pytest\npytestmark = pytest.mark.container\ndef test_stages(): pass\n",
        test_c="def test_third(): pass\n",
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    ids = [line for line in result.stdout.lines if "::" in line]
    assert [i.split("::")[1] for i in ids] == ["test_first", "test_second", "test_third", "test_budget",
                                               "test_image", "test_stages"]
