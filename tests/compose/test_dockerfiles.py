"""The images, checked without a Docker engine: pinned base images, the Python and Java the
README states, the Kafka image of the project's jars, and the package `make setup` installs."""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .project import REPO_ROOT, ComposeProject, Dockerfile
from .rehearsal import KAFKA_IMAGE, KAFKA_TOOLS

README = (REPO_ROOT / "README.md").read_text()
DOCKERFILES = sorted((REPO_ROOT / "docker").glob("*.Dockerfile"))


def test_every_image_is_built_from_the_docker_folder_or_pinned() -> None:
    project = ComposeProject.load()
    built = set(project.built_images().values())
    assert built == set(DOCKERFILES)
    images = [
        service.image
        for service in project.services.values()
        if service.image not in project.built_images()
    ]
    images += [Dockerfile.parse(path).base for path in DOCKERFILES]
    for image in images:
        # A version tag (digits; v3.5.0 as Prometheus writes it), never latest or a bare name.
        assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+[\w.-]*", image), image


def test_python_and_java_are_the_readmes() -> None:
    python = re.search(r"Python (\d+\.\d+)", README).group(1)
    java = re.search(r"^\| Java \| (\d+) \|", README, re.M).group(1)
    assert f"Python {python}, a Java {java} runtime" in README
    for path in DOCKERFILES:
        image = Dockerfile.parse(path)
        assert image.base.startswith(f"python:{python}."), path.name
        installed = re.findall(r"openjdk-(\d+)-", " ".join(image.runs))
        assert set(installed) <= {java}, path.name
    processor = Dockerfile.parse(REPO_ROOT / "docker" / "processor.Dockerfile")
    assert re.findall(r"openjdk-(\d+)-jre", " ".join(processor.runs)) == [java]
    # Debian 13 (trixie) has no openjdk-17: the base names its Debian release.
    assert processor.base.endswith("-bookworm")
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert f'requires-python = ">={python}"' in pyproject


def test_kafka_image_is_the_version_of_the_projects_jars() -> None:
    """The rehearsal stands the image's broker and tools in with the project's jars."""
    version = re.search(
        r"<kafka.version>([\d.]+)</kafka.version>",
        (REPO_ROOT / "tools" / "kafka" / "pom.xml").read_text(),
    ).group(1)
    images = {
        service.image
        for service in ComposeProject.load().services.values()
        if service.image.startswith(f"{KAFKA_IMAGE}:")
    }
    assert images == {f"{KAFKA_IMAGE}:{version}"}
    assert f"| Apache Kafka (broker, tools) | {version} " in README


def test_the_mapped_kafka_tools_are_in_the_jars() -> None:
    libs = REPO_ROOT / ".hhar" / "kafka" / "libs"
    classes = set()
    for jar in libs.glob("*.jar"):
        with zipfile.ZipFile(jar) as archive:
            classes |= {
                name.removesuffix(".class").replace("/", ".")
                for name in archive.namelist()
                if name.endswith(".class")
            }
    missing = {script: main for script, main in KAFKA_TOOLS.items() if main not in classes}
    assert not missing


def built_package(context: Path, out: Path) -> Path:
    """What `pip install` puts in site-packages from `context`: setuptools' build_py."""
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            "import setuptools; setuptools.setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(out),
        ],
        cwd=context,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda path: path.name)
def test_the_image_installs_the_package_make_setup_installs(path: Path, tmp_path: Path) -> None:
    """The files the Dockerfile copies before `pip install .` build the same package as the
    checkout (`make setup` installs the checkout): no folder of pyproject's package-dir left
    out."""
    image = Dockerfile.parse(path)
    assert any(re.search(r"pip install .*\s\.$", run) for run in image.runs)
    context = tmp_path / "image" / image.workdir.lstrip("/")
    context.mkdir(parents=True)
    for sources, destination in image.copies:
        target = context / destination
        for source in sources:
            # Docker copies a folder's contents into the destination, a file into it.
            if (REPO_ROOT / source).is_dir():
                shutil.copytree(REPO_ROOT / source, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO_ROOT / source, target)
    checkout = tmp_path / "checkout"
    shutil.copytree(
        REPO_ROOT,
        checkout,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".hhar", "data", "build", "*.egg-info", "__pycache__"
        ),
    )
    installed = built_package(context, tmp_path / "from-image")
    expected = built_package(checkout, tmp_path / "from-checkout")
    comparison = filecmp.dircmp(installed, expected, ignore=["__pycache__"])
    assert _differences(comparison) == []


def _differences(comparison: filecmp.dircmp) -> list[str]:
    found = [*comparison.left_only, *comparison.right_only, *comparison.diff_files]
    for sub in comparison.subdirs.values():
        found += _differences(sub)
    return found
