"""The engine's public face: importable without Django, with a curated, sorted ``__all__``."""

import subprocess
import sys

import alliance as al


def test_the_engine_imports_without_django():
    code = (
        "import sys, alliance, alliance.cli; "
        "[__import__(m) for m in ('alliance.' + n for n in alliance._ENGINE_MODULES)]; "
        "sys.exit(1 if 'django' in sys.modules else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr or "importing the engine pulled in Django"


def test_all_is_sorted_and_matches_the_namespace():
    assert list(al.__all__) == sorted(al.__all__)
    public = {name for name in dir(al) if not name.startswith("_")} - {"annotations"} | {
        "__version__"
    }
    modules = {name for name in public if type(getattr(al, name)).__name__ == "module"}
    assert set(al.__all__) == public - modules


def test_every_exported_callable_has_a_docstring():
    for name in al.__all__:
        obj = getattr(al, name)
        if callable(obj):
            assert obj.__doc__, f"alliance.{name} has no docstring"
