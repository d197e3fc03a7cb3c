"""The code behind `scripts/` that tests and other programs import: emulators, sample data,
deploy steps. Installed by `pip install -e .[dev]` only: setup.py declares it for editable
installs, so neither the sdist Beam ships to Dataflow workers nor a wheel contains it.

Import it as ``devtools.<module>``; ``scripts/<module>.py`` is the same program's entry
point (``python scripts/<module>.py --help``).
"""

from pathlib import Path

#: The checkout devtools runs from (it is only ever installed in editable mode).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The example app's schemas, a fixture copy of the shipped ``schemas/`` (the tests read
#: it too, as ``tests.support.example_app.SCHEMAS``). The demo and the benchmark seed
#: that app's documents, so they read these whatever an adopter put in ``schemas/``.
EXAMPLE_SCHEMAS = REPO_ROOT / "tests" / "support" / "example_app" / "schemas"


def example_app_env() -> dict[str, str]:
    """The environment that points every command (the sync, ``status``, the scripts, in
    process or as a subprocess) at :data:`EXAMPLE_SCHEMAS`."""
    from pipelines.convert.table_spec import SCHEMAS_DIR_ENV

    return {SCHEMAS_DIR_ENV: str(EXAMPLE_SCHEMAS)}
