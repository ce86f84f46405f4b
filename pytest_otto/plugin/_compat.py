"""Every use of private pytest and pytest-asyncio API by the plugin, in one place.

Each function here reads something neither project offers publicly; when one of them
changes, this module is the one place to fix, and ``tests/test_plugin_compat.py``
fails first, naming what moved. Keep it small: anything a public hook can do does
not belong here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

__all__ = ["fixture_loop_scope", "ini_is_set", "item_fixture_defs", "scope_scheduling"]


def ini_is_set(config: pytest.Config, name: str) -> bool:
    """The user gave ini option ``name`` (in a config file or with ``-o``).

    pytest has no public way to tell a value the user set from the default, and
    pytest-asyncio's ``asyncio_default_test_loop_scope`` defaults to a real value
    (``function``), so ``getini`` cannot tell either.
    """
    inicfg = getattr(config, "_inicfg", None)  # pytest >= 9: file values and -o overrides
    if inicfg is None:  # pytest 8
        overrides = getattr(config, "_override_ini", None) or ()
        if any(str(o).split("=", 1)[0].strip() == name for o in overrides):
            return True
        inicfg = config.inicfg
    return name in inicfg


def item_fixture_defs(item: pytest.Item) -> Mapping[str, Sequence[Any]]:
    """Fixture name -> its definitions (the one in effect last) for a collected test function.

    pytest keeps them private (``Function._fixtureinfo``); the plugin needs the fixture
    functions to tell async fixtures and their loop scopes. Empty for other items.
    """
    if not isinstance(item, pytest.Function):
        return {}
    defs: Mapping[str, Sequence[Any]] = item._fixtureinfo.name2fixturedefs
    return defs


def fixture_loop_scope(func: object) -> str | None:
    """The ``loop_scope`` pytest-asyncio recorded on an async fixture function, if any.

    ``@pytest_asyncio.fixture(loop_scope=...)`` stores it as ``func._loop_scope``.
    """
    scope = getattr(func, "_loop_scope", None)
    return None if scope is None else str(scope)


@functools.cache
def scope_scheduling() -> type[Any]:
    """pytest-xdist's ``LoadScopeScheduling``, with the scope of a test given by ``scope_of``.

    The class is public (``xdist.scheduler``, made by the public hook
    ``pytest_xdist_make_scheduler``), but the method that names a test's scope,
    ``_split_scope(nodeid)``, is private: pytest-xdist's own ``loadfile`` and
    ``loadgroup`` schedulers override it the same way. Imported when called: pytest-xdist
    is optional.
    """
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ScopeScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def scope_of(self, nodeid: str) -> str:
            return nodeid

        def _split_scope(self, nodeid: str) -> str:
            return self.scope_of(nodeid)

    return ScopeScheduling
