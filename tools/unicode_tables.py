"""Write the serving graph's Unicode tables, built from this Python's ``unicodedata``, into the package.

    .venv/bin/python tools/unicode_tables.py

``streamtrain/serve/tables/NAME-UNIDATA_VERSION.npz`` (``serve.codepoints.write``): read instead of built
(about 1 s per process) when the running Python's Unicode is that version. Run it when a new Python's
Unicode should ship built; ``tests/serve/test_codepoints.py`` checks every shipped table against a fresh build.
"""

from __future__ import annotations

from streamtrain.serve.codepoints import SHIPPED, write

if __name__ == "__main__":
    for path in write(SHIPPED):
        print(f"{path} ({path.stat().st_size:,} bytes)")
