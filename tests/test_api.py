"""The public namespace: complete, sorted, lazy, and light to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import intentguard as ig


def test_all_is_sorted_and_matches_the_lazy_table() -> None:
    """__all__ is sorted and lists exactly the names the package exports."""
    assert ig.__all__ == sorted(ig.__all__)
    assert set(ig.__all__) == set(ig._EXPORTS)


def test_every_exported_name_resolves() -> None:
    """Every name in __all__ imports and is the object its module defines."""
    for name in ig.__all__:
        assert getattr(ig, name) is not None
    assert ig.Guard.__module__ == "intentguard.guard"


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A name the package does not export raises AttributeError naming it."""
    with pytest.raises(AttributeError, match="NoSuchThing"):
        ig.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    assert "Guard" in dir(ig)


def test_import_pulls_in_no_heavy_dependency() -> None:
    """`import intentguard` loads no framework, numpy, scikit-learn, pydantic or jsonschema."""
    code = (
        "import sys, intentguard\n"
        "heavy = {'pydantic', 'jsonschema', 'yaml', 'numpy', 'sklearn', 'langchain', 'langchain_core',"
        " 'autogen_core'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_error_tree() -> None:
    """Every error is an IntentguardError, split by who must act, as drawn in errors.py."""
    assert issubclass(ig.InvalidIntentSchema, ig.ConfigurationError)
    assert issubclass(ig.InvalidParameters, ig.ConfigurationError)
    assert issubclass(ig.GrantWideningError, ig.ConfigurationError)
    assert issubclass(ig.MissingExtraError, ig.ConfigurationError)
    assert issubclass(ig.Denied, ig.DecisionError)
    assert issubclass(ig.ConfirmationRequired, ig.DecisionError)
    assert issubclass(ig.ConfigurationError, ig.IntentguardError)
    assert issubclass(ig.DecisionError, ig.IntentguardError)
    missing = ig.MissingExtraError("Scoring", "divergence", "numpy")
    assert "pip install 'intentguard[divergence]'" in str(missing)
    assert isinstance(missing, ImportError)
