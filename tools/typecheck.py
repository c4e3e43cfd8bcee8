"""Type-check the hhar_stream package as it is installed, and report errors at their sources.

The package maps top-level folders into itself (pyproject's ``package-dir``: ``producer/`` is
``hhar_stream.producer``), and an editable install finds them with an import hook that mypy
cannot follow. So this lays out the installed package as a tree of links to the sources
(``build/typecheck/``), runs ``mypy -p hhar_stream`` over it with the configuration in
pyproject.toml, and prints each error with the path of the source file it is in.

Usage: ``python tools/typecheck.py [extra mypy arguments]``; exit code is mypy's.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
TOP = "hhar_stream"
MODULE_SUFFIXES = (".py", ".pyi")
MODULE_FILES = ("py.typed",)
LOCATION = re.compile(r"^(?P<path>[^:\s]+\.pyi?)(?P<rest>:.*)$")


def source_dir(package: str, package_dir: dict[str, str]) -> Path:
    """The folder that holds `package`'s modules, as setuptools maps it.

    Args:
        package: a dotted package name listed in ``[tool.setuptools] packages``.
        package_dir: the ``[tool.setuptools.package-dir]`` table.
    """
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        mapped = package_dir.get(".".join(parts[:cut]))
        if mapped is not None:
            return ROOT / mapped / Path(*parts[cut:])
    return ROOT / Path(*parts)


def lay_tree() -> dict[str, str]:
    """Link every module of the installed package into TREE.

    Returns:
        Each link's path relative to ROOT, mapped to its source's path relative to ROOT.
    """
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools.get("package-dir", {})
    shutil.rmtree(TREE, ignore_errors=True)
    sources: dict[str, str] = {}
    for package in setuptools["packages"]:
        folder = TREE / Path(*package.split("."))
        folder.mkdir(parents=True, exist_ok=True)
        for source in sorted(source_dir(package, package_dir).iterdir()):
            if source.suffix in MODULE_SUFFIXES or source.name in MODULE_FILES:
                link = folder / source.name
                link.symlink_to(source)
                sources[str(link.relative_to(ROOT))] = str(source.relative_to(ROOT))
    return sources


def at_sources(report: str, sources: dict[str, str]) -> str:
    """Rewrite the paths at the start of mypy's lines from the tree's links to the sources."""
    lines = []
    for line in report.splitlines():
        found = LOCATION.match(line)
        if found and found["path"] in sources:
            line = sources[found["path"]] + found["rest"]
        lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""


def main(argv: list[str]) -> int:
    """Lay the tree, run mypy over the package and print its report with source paths."""
    sources = lay_tree()
    os.chdir(ROOT)
    os.environ["MYPYPATH"] = str(TREE.relative_to(ROOT))
    stdout, stderr, status = api.run(["-p", TOP, *argv])
    sys.stdout.write(at_sources(stdout, sources))
    sys.stderr.write(at_sources(stderr, sources))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
