"""Every docstring example in the engine runs (STYLE.md: examples are doctests, run in CI).

Module test files may also run their own module's examples; this file makes sure none is missed,
including in modules added later.
"""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import alliance

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(alliance.__path__, prefix="alliance.")
    if not name.startswith("alliance.cli")  # commands are tested through their CLI tests
)


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_each_engine_module_run(name):
    module = importlib.import_module(name)
    with np.printoptions(legacy="1.25"):
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
        )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
