"""The example app the project was built around (a personal-assistant chat app): its
five schemas, a fixture copy of the shipped ``schemas/``. Every test reads these
(``tests/conftest.py`` points ``F2BQ_SCHEMAS_DIR`` here), so an adopter who replaces
``schemas/`` with their own files keeps the suite green; only the tests of the
shipped files themselves (the generated docs, the index file, the packaging) read
``schemas/``."""

from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent / "schemas"
