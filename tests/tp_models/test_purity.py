"""`tp_models` is the pure domain: it imports no orchestration or storage library, so it runs
(and is tested) anywhere numpy and torch do."""

from __future__ import annotations

import ast
from pathlib import Path

import tp_models

FORBIDDEN = {"prefect", "prefect_dask", "dask", "distributed", "zarr", "numcodecs", "mlflow"}
FORBIDDEN_FIRST_PARTY = {"flows", "tasks", "storage", "bench"}  # the floors above the domain


def imported_modules(source: Path) -> set[str]:
    """Top-level names of every module a source file imports (anywhere in it, lazily too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value).split(".")[0])
    return names


def test_tp_models_imports_no_prefect_dask_zarr_or_mlflow():
    sources = sorted(Path(tp_models.__file__).parent.rglob("*.py"))
    assert len(sources) > 20
    offenders = {
        f"{path.relative_to(Path(tp_models.__file__).parent)}: {sorted(bad)}"
        for path in sources
        if (bad := imported_modules(path) & (FORBIDDEN | FORBIDDEN_FIRST_PARTY))
    }
    assert not offenders
    everything = set().union(*(imported_modules(path) for path in sources))
    assert {"numpy", "torch", "scipy"} <= everything  # the scan does see imports


def test_the_scan_finds_lazy_and_dotted_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import numpy as np\n"
        "def f():\n"
        "    import dask.array\n"
        "    from zarr.storage import LocalStore\n"
        "    return importlib.import_module('mlflow.pyfunc')\n"
        "from . import sibling\n"
    )
    assert imported_modules(source) == {"numpy", "dask", "zarr", "mlflow"}
