"""The wheel and the sdist, built as pip builds them, hold what a user and a packager need.

The distributions are built once (``python -m build``: the sdist, then the wheel from
that sdist, so the sdist is shown to build) from a copy of the tree, so the build
leaves no ``*.egg-info`` or ``build/`` in the checkout. The sdist's own tests then run
against the wheel installed in a fresh virtual environment.
"""

from __future__ import annotations

import ast
import email
import email.message
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Folders of the checkout the sdist carries whole: what the README links to
#: (docs, examples), and what its test suite needs to run (tests, testlab, scripts).
SDIST_FOLDERS = ("docs", "examples", "tests", "testlab", "scripts", "benchmarks")
SDIST_FILES = ("LICENSE", "README.md", "pyproject.toml", "conftest.py", "lab.toml.example", "MANIFEST.in")

#: Runtime dependencies the package needs without importing them, and why.
UNIMPORTED_RUNTIME = {
    "pytest-asyncio": "the plugin hands async tests that are not on otto's loop to it",
}

#: What the package imports only inside the function that uses it, when it is installed.
OPTIONAL_INTEGRATIONS = {
    "pytest-xdist": "the plugin's scheduler, made only when pytest-xdist distributes a run",
    "allure-python-commons": "reports attach each test's commands to Allure when allure-pytest is there",
    "redis": "leases kept in Redis: the 'redis' extra",
}

#: Classifiers a user filters PyPI by; the Python versions are the ones requires-python admits.
REQUIRED_CLASSIFIERS = {
    "Framework :: Pytest",
    "Operating System :: POSIX",
    "Programming Language :: Python :: 3.11",
    "Typing :: Typed",
}


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


def _ignore(folder: str, names: list[str]) -> set[str]:
    """What a checkout may hold besides its sources: virtual environments, caches, builds."""
    return {
        n
        for n in names
        if n.startswith(".") or n in ("__pycache__", "build", "dist") or n.endswith(".egg-info")
    }


def _skip_generated(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo") or "results" in path.parts


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """An sdist and a wheel built from a copy of the checkout, as ``python -m build`` makes them."""
    base = tmp_path_factory.mktemp("dists")
    tree = base / "tree"
    shutil.copytree(ROOT, tree, ignore=_ignore)
    out = base / "out"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"python -m build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (sdist,) = out.glob("pytest_otto-*.tar.gz")
    (wheel,) = out.glob("pytest_otto-*-py3-none-any.whl")
    return Dists(sdist, wheel)


def _wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(zf.read(name))


def _sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as tf:
        return {m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile() and "/" in m.name}


def _checkout_files(folder: str) -> set[str]:
    return {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and not _skip_generated(p.relative_to(ROOT))
    }


def test_wheel_holds_every_module_and_data_file_of_the_package(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as zf:
        names = set(zf.namelist())
    package = {n for n in names if not n.startswith("pytest_otto-")}
    assert package == _checkout_files("pytest_otto"), "the wheel's package differs from pytest_otto/"
    assert "pytest_otto/py.typed" in package
    assert "pytest_otto-0.1.0.dist-info/licenses/LICENSE" in names
    entry_points = zipfile.ZipFile(dists.wheel).read("pytest_otto-0.1.0.dist-info/entry_points.txt").decode()
    assert "[pytest11]" in entry_points and "otto = pytest_otto.plugin" in entry_points


def test_metadata_declares_spdx_license_classifiers_and_python(dists: Dists) -> None:
    meta = _wheel_metadata(dists.wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["License"] is None, "the deprecated free-text License field is set"
    classifiers = set(meta.get_all("Classifier") or [])
    assert classifiers >= REQUIRED_CLASSIFIERS, REQUIRED_CLASSIFIERS - classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert not any(c.startswith("License :: ") for c in classifiers), (
        "SPDX expressions replace License classifiers"
    )
    assert meta["Requires-Python"] == ">=3.11"
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def _third_party_imports(paths: list[Path], *, lazy: bool | None = None) -> set[str]:
    """Top-level names of the absolute imports in ``paths`` that are not the standard library's.

    ``lazy`` False: only imports run when a module loads (its top level, an ``if``, a
    ``try``); True: only those inside a function, run when it is called; None: both.
    """
    names: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node, in_function in _imports(tree, in_function=False):
            if lazy is None or lazy == in_function:
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    local = {"pytest_otto", "testlab", "tests", "benchmarks", "conftest"}
    return {n for n in names if n not in sys.stdlib_module_names and n not in local}


def _imports(node: ast.AST, *, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        yield from _imports(child, in_function=inner)


def _distributions(modules: set[str]) -> set[str]:
    """The installed distributions that provide ``modules`` (test_behaviour and the like are local)."""
    providers = importlib.metadata.packages_distributions()
    return {_normalize(providers[m][0]) for m in modules if m in providers}


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _requirements(meta: email.message.Message, extra: str | None) -> set[str]:
    found = set()
    for req in meta.get_all("Requires-Dist") or []:
        spec, _, marker = req.partition(";")
        in_extra = f'extra == "{extra}"' in marker if extra else not marker.strip()
        if in_extra:
            found.add(_normalize(spec.split("<")[0].split(">")[0].split("=")[0].split("[")[0].strip()))
    return found


def test_runtime_dependencies_are_what_the_package_imports(dists: Dists) -> None:
    sources = sorted((ROOT / "pytest_otto").rglob("*.py"))
    loaded = _distributions(_third_party_imports(sources, lazy=False))
    declared = _requirements(_wheel_metadata(dists.wheel), None)
    assert declared == loaded | set(UNIMPORTED_RUNTIME), (
        f"declared {sorted(declared)}, imported on load {sorted(loaded)} (+ {sorted(UNIMPORTED_RUNTIME)})"
    )
    assert "pexpect" not in declared, "pexpect is used by the tests only"
    optional = _distributions(_third_party_imports(sources, lazy=True)) - declared
    assert optional == set(OPTIONAL_INTEGRATIONS), f"imported when called, not declared: {sorted(optional)}"


def test_what_the_tests_import_is_declared_in_the_test_extra(dists: Dists) -> None:
    sources = [
        ROOT / "conftest.py",
        *sorted((ROOT / "tests").rglob("*.py")),
        *sorted((ROOT / "testlab").rglob("*.py")),
    ]
    imported = _distributions(_third_party_imports(sources))
    meta = _wheel_metadata(dists.wheel)
    declared = _requirements(meta, None) | _requirements(meta, "test")
    assert imported <= declared, f"imported by the tests but not declared: {sorted(imported - declared)}"
    assert "pexpect" in _requirements(meta, "test")


def test_sdist_carries_docs_examples_tests_and_the_lab_example(dists: Dists) -> None:
    names = _sdist_names(dists.sdist)
    for folder in SDIST_FOLDERS:
        missing = _checkout_files(folder) - names
        assert not missing, f"the sdist lacks {sorted(missing)}"
    for name in SDIST_FILES:
        assert name in names, f"the sdist lacks {name}"
    assert _checkout_files("pytest_otto") <= names
    with tarfile.open(dists.sdist) as tf:
        script = next(m for m in tf.getmembers() if m.name.endswith("/scripts/test"))
        assert script.mode & 0o111, "scripts/test lost its executable bit"


def test_sdist_tests_run_against_the_wheel_in_a_fresh_venv(dists: Dists, tmp_path: Path) -> None:
    """Unpacked, the sdist's suite collects whole and its local-host tests pass on the installed wheel.

    The fresh venv gets the wheel and nothing else; its dependencies come from this
    environment through a path entry (whose editable install of pytest-otto stays out:
    path entries' own .pth files are not read).
    """
    with tarfile.open(dists.sdist) as tf:
        tf.extractall(tmp_path, filter="data")  # 3.11.4+
    (tree,) = tmp_path.glob("pytest_otto-*")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import site; print(site.getsitepackages()[0])"], text=True
        ).strip()
    )
    outer = [p for p in sys.path if p.endswith("site-packages")]
    (site / "outer-deps.pth").write_text("\n".join(outer) + "\n")
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "-q",
        "--no-deps",
        str(dists.wheel),
    ]
    subprocess.run(pip, check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OTTO_TEST"))}
    where = subprocess.check_output(
        [str(python), "-c", "import pytest_otto; print(pytest_otto.__file__)"],
        env=env,
        cwd=tmp_path,
        text=True,
    )
    assert Path(where.strip()).is_relative_to(venv), f"pytest_otto came from {where}"

    def pytest(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(python), "-m", "pytest", "-q", "-p", "no:xdist", *args]
        done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    count = re.search(r"(\d+) tests? collected", pytest("--collect-only").stdout)
    assert count and int(count[1]) > 300, count
    summary = pytest("examples/", "tests/test_result.py", "docs/local.md").stdout.splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, summary
