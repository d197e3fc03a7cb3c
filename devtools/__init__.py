"""The code behind `scripts/` that tests and other programs import: emulators, sample data,
deploy steps. Installed by `pip install -e .[dev]` only: setup.py declares it for editable
installs, so neither the sdist Beam ships to Dataflow workers nor a wheel contains it.

Import it as ``devtools.<module>``; ``scripts/<module>.py`` is the same program's entry
point (``python scripts/<module>.py --help``).
"""

from pathlib import Path

#: The checkout devtools runs from (it is only ever installed in editable mode).
REPO_ROOT = Path(__file__).resolve().parent.parent
