"""Every notebook in ``notebooks/`` runs from top to bottom without error.

Each notebook is executed with nbclient in a fresh ``python3`` kernel whose working directory is a
temporary folder (files the notebook writes land there). jupyter_client starts the ``python3`` kernel
spec with the interpreter running the tests (it replaces a kernel command's ``python`` by
``sys.executable``), so the kernel sees the same environment as pytest. Brax notebooks take a minute or
two on a CPU, mostly compiling.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 600


# Notebooks kept without stored outputs (others, e.g. 02, are committed executed on purpose).
CLEAN_NOTEBOOKS = ("01_map_elites_brax.ipynb", "03_learned_behaviour_spaces.ipynb", "04_serene_stax_sparse_rewards.ipynb",
                   "05_benchmarking_emitters.ipynb")


def test_notebooks_have_no_stored_outputs():
    for path in (p for p in NOTEBOOKS if p.name in CLEAN_NOTEBOOKS):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has stored outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] in ("python", "python3", sys.executable), (
        f"the python3 kernel spec starts {spec.argv[0]!r}, not this interpreter ({sys.executable})"
    )
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell and traceback, on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
