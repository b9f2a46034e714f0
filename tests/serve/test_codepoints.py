"""The Unicode tables shipped in ``serve/tables/`` are what this Python builds (``serve.codepoints``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from streamtrain.serve import codepoints


@pytest.mark.parametrize("name", sorted(codepoints.MAPPINGS))
def test_the_shipped_table_equals_a_fresh_build(name):
    path = codepoints.SHIPPED / f"{name}-{codepoints.UNIDATA_VERSION}.npz"
    if not path.is_file():
        pytest.skip(f"no table ships for Unicode {codepoints.UNIDATA_VERSION}: it is built at run time")
    shipped, built = codepoints.table(name), codepoints.build_table(codepoints.MAPPINGS[name])
    for field in dataclasses.fields(codepoints.CodepointTable):
        assert np.array_equal(getattr(shipped, field.name), getattr(built, field.name)), field.name
        assert getattr(shipped, field.name).dtype == getattr(built, field.name).dtype, field.name
