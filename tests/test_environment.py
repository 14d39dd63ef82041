"""environment.yml (for conda users) must list exactly what pyproject.toml installs for `make test`."""

import tomllib

import yaml
from lanelab.config import repo_root


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return set(project["dependencies"]) | set(extras["test"]) | set(extras["browser"])


def _environment_pip_requirements() -> set[str]:
    env = yaml.safe_load((repo_root() / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml should have exactly one pip: section"
    return {r for r in pip_sections[0] if not r.startswith("-e")}


def test_environment_yml_mirrors_pyproject():
    missing = _pyproject_requirements() - _environment_pip_requirements()
    extra = _environment_pip_requirements() - _pyproject_requirements()
    assert not missing and not extra, f"environment.yml drifted: missing {sorted(missing)}, extra {sorted(extra)}"


def test_environment_yml_installs_the_kit_and_python_311():
    env = yaml.safe_load((repo_root() / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip
