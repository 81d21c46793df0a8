"""One definition of each name the stack, the Lambdas, the CLI and the instance agent share
(lambdas/spotyard_lambda/names.py): no other source spells a tag name out, and the agent's
copy, which runs on the instance without the package, is equal to the module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from spotyard_lambda import names

from tests.agent import agent
from tests.conftest import ROOT

NAMES_MODULE = ROOT / "lambdas" / "spotyard_lambda" / "names.py"
INSTANCE_DIR = ROOT / "instance"
AGENT = INSTANCE_DIR / "spotyard_agent.py"
SOURCES = ["__main__.py", "components", "stack", "instance", "lambdas", "spotyard", "bench", "scripts"]
TAGS = sorted({value for key, value in vars(names).items() if key.endswith("_TAG")} | {names.SSH_TAG_PREFIX})
# The agent's copy: its BUSY_TAG constant and the tag names it spells out (it runs on the
# instance without the package; a change to it would change every fleet's user data).
AGENT_CONSTANTS = ("BUSY_TAG",)
AGENT_SPELLS = ("STACK_TAG", "FLEET_TAG", "BUSY_TAG")


def _source_files() -> list[Path]:
    files = []
    for entry in SOURCES:
        path = ROOT / entry
        files += (
            [path]
            if path.is_file()
            else sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        )
    return files


def _python_literals(path: Path) -> list[str]:
    """The string literals of a Python file (f-strings' constant parts included), docstrings aside."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _shell_code(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]


def _spelled_tags(text: str) -> set[str]:
    """The tag names `text` spells out (`spotyard:fleet`, not the config key `spotyard:fleets.x`)."""
    return {tag for tag in TAGS if re.search(re.escape(tag) + (r"(?![\w.])" if not tag.endswith("-") else ""), text)}


def test_the_tag_names_are_distinct_and_in_the_spotyard_namespace():
    tags = [value for key, value in vars(names).items() if key.endswith("_TAG")]
    assert len(tags) == len(set(tags)) and all(tag.startswith("spotyard:") for tag in tags)


def test_no_source_spells_a_tag_name_outside_the_names_module():
    spelled = {}
    for path in _source_files():
        if path in (NAMES_MODULE, AGENT):
            continue
        if path.suffix == ".py":
            texts = _python_literals(path)
        elif path.suffix == ".sh" or path.parent == INSTANCE_DIR:
            texts = _shell_code(path)
        else:
            continue
        found = set().union(*map(_spelled_tags, texts)) if texts else set()
        if found:
            spelled[str(path.relative_to(ROOT))] = sorted(found)
    assert spelled == {}


def test_the_agent_spells_only_the_tags_of_its_copy():
    assert set().union(*map(_spelled_tags, _python_literals(AGENT))) == {getattr(names, n) for n in AGENT_SPELLS}


@pytest.mark.parametrize("name", AGENT_CONSTANTS)
def test_the_agents_copy_equals_the_names_module(name):
    assert getattr(agent, name) == getattr(names, name)


def test_the_bootstrap_names_the_host_as_the_dns_registrar_names_the_instance():
    bootstrap = (INSTANCE_DIR / "bootstrap.sh").read_text()
    assert f'hostnamectl set-hostname "{names.instance_name("${SPOTYARD_FLEET}", "${instance_id}")}"' in bootstrap


def test_the_tag_condition_scopes_by_each_tag_on_the_service():
    assert names.tag_condition({names.FLEET_TAG: "web", names.STACK_TAG: "p/s"}, "autoscaling") == {
        "StringEquals": {
            "autoscaling:ResourceTag/spotyard:fleet": "web",
            "autoscaling:ResourceTag/spotyard:stack": "p/s",
        }
    }


def test_a_fleets_parameters_live_under_the_stacks_path():
    assert (
        names.fleet_parameter("spotyard", "dev", "workers", names.AUTOSCALER_PARAMETER)
        == "/spotyard/dev/workers/autoscaler"
    )
    assert names.fleet_parameter("spotyard", "dev", "workers", names.AMI_PARAMETER).startswith(
        f"/{names.stack_tag_value('spotyard', 'dev')}/"
    )
