"""``LazyAdam``: Adam whose update of a sparse gradient touches only the rows the batch used.

The MLP's first layer (``models.SparseDense``) gathers the kernel rows a sparse TF-IDF batch uses, so the
kernel's gradient is a ``tf.IndexedSlices`` over those few thousand rows. Keras 3's ``Adam`` applies such a
gradient densely: every step decays the moments of, and moves, all ``features`` rows, so the update, not
the input or the matmul, would be the cost of a training step, growing with the features. ``LazyAdam``
(the algorithm of TensorFlow Addons' ``LazyAdam``) updates the used rows and their two moments only; a
row's moments decay when it is used, not every step. A row listed several times (several workers' batches,
an embedding) is summed first, except for the variables declared to list each row once
(``list_rows_once``: a ``SparseDense`` kernel on one replica), where finding the repeats (``tf.unique``)
would be work for nothing. Dense gradients (the other layers) get Keras' own Adam step. Registered for
Keras serialization, so a saved model (and a 0.5 checkpoint) loads with it; a loaded one declares nothing.

Measurements: docs/design/training-speed.md
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="streamtrain")
class LazyAdam(keras.optimizers.Adam):
    """Keras' ``Adam``, lazy on ``IndexedSlices`` gradients (see the module docstring); its arguments are Adam's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.once: frozenset[int] = frozenset()  # indices of the variables whose slices list each row once

    def list_rows_once(self, variables: list[Any]) -> None:
        """Declare that the sparse gradients of ``variables`` list each row at most once.

        Their updates then take the listed rows as they are, without looking for repeats. Call it after
        ``build`` and before the step that applies gradients is traced; a gradient listing a row twice for
        such a variable would move that row by one of its listings only.

        Args:
            variables: some of the variables the optimizer was built for.
        """
        self.once = frozenset(self._get_variable_index(v) for v in variables)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Apply one gradient to one variable: Keras' Adam step for a dense one, the lazy step for slices.

        Args:
            gradient: a dense tensor, or ``tf.IndexedSlices`` (rows listed more than once are summed).
            variable: the variable updated.
            learning_rate: this step's rate.
        """
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        values = tf.cast(gradient.values, dtype)
        index = self._get_variable_index(variable)
        if index in self.once:
            rows, grad = gradient.indices, values
        else:
            rows, position = tf.unique(gradient.indices)  # a row listed several times (workers, an embedding): summed
            grad = tf.cond(
                tf.size(rows) < tf.size(gradient.indices),
                lambda: tf.math.unsorted_segment_sum(values, position, tf.shape(rows)[0]),
                lambda: values,  # each row once: ``unique`` kept them in order
            )
        m, v = self._momentums[index].value, self._velocities[index].value
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(grad)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        delta = alpha * m_rows / (tf.sqrt(v_rows) + tf.cast(self.epsilon, dtype))
        target = variable.value if isinstance(variable, keras.Variable) else variable
        # Gather and overwrite: TensorFlow's ResourceScatterSub was much slower than a ResourceScatterUpdate here
        # (docs/design/training-speed.md).
        target.scatter_update(tf.IndexedSlices(tf.gather(target, rows) - delta, rows))
