"""The repository's promises to a new user: the README's Quick start is what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands():
    """The commands of the README's Quick start block (comments dropped)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line]


def make_recipe(target: str) -> list[str]:
    """The commands of a Makefile target."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_quick_start_is_two_make_targets_the_demo_then_the_tests():
    assert quick_start_commands() == ["make demo", "make test"]
    assert make_recipe("demo") == ["$(VENV)/bin/spikeformers train"]
    assert make_recipe("test") == ["$(VENV)/bin/python -m pytest -q"]


def test_ci_runs_the_readme_test_command():
    _, tests = quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in [line.strip() for line in ci if not line.lstrip().startswith("#")]


def test_readme_model_zoo_table_is_the_registry():
    from spikeformers.models.registry import zoo_table

    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- zoo:start -->\n", 1)[1].split("<!-- zoo:end -->", 1)[0]
    assert table.strip() == zoo_table().strip(), "regenerate with: spikeformers models --markdown"


def test_readme_data_table_lists_every_registered_data_set_with_format_split_and_source():
    from spikeformers.data import list_datasets

    section = (ROOT / "README.md").read_text().split("## Data\n", 1)[1]
    table = next(chunk for chunk in section.split("\n\n") if chunk.strip().startswith("| name |"))
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])}
    assert set(list_datasets()) <= named, f"add rows for {sorted(set(list_datasets()) - named)}"
    assert all(len([cell for cell in row.split("|")[1:-1] if cell.strip()]) == 4 for row in rows), \
        "each row gives the name, its format, its split and its source"


def test_every_kernel_source_ships_in_the_package():
    """The C++ kernels are compiled on the user's machine from their sources: a wheel without them
    would silently fall back to the slow paths."""
    import tomllib

    package = ROOT / "src" / "spikeformers"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["spikeformers"]
    sources = sorted(package.rglob("*.cpp"))
    assert sources, "no kernel sources found"
    for source in sources:
        relative = source.relative_to(package)
        assert any(relative.match(pattern) for pattern in patterns), f"{relative} is not in package-data"


def test_readme_neuron_table_is_the_registry():
    from spikeformers.cli.neurons import markdown_table

    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- neurons:start -->\n", 1)[1].split("<!-- neurons:end -->", 1)[0]
    assert table.strip() == markdown_table().strip(), "regenerate with: spikeformers neurons --markdown"
