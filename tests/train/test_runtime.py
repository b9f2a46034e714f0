"""TensorFlow's start-up: Keras loads without the modules it would import for features streamtrain never uses,
and those modules import normally afterwards."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from streamtrain.train.runtime import UNUSED_BY_KERAS, import_tensorflow
import_tensorflow()
import keras
print(sorted(m for m in UNUSED_BY_KERAS if m in sys.modules))
import matplotlib.pyplot, sklearn.linear_model
print(sorted(m for m in UNUSED_BY_KERAS if sys.modules.get(m) is not None))
"""


def test_keras_loads_without_sklearn_and_pyplot_which_import_afterwards():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.splitlines() == ["[]", "['matplotlib.pyplot', 'sklearn']"], out.stderr
