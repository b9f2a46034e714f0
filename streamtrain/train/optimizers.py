"""``LazyAdam``: Adam whose update of a sparse gradient touches only the rows the batch used.

The MLP's first layer multiplies a sparse TF-IDF batch by a ``features x
units`` kernel; Keras computes that with ``embedding_lookup_sparse``, so the
kernel's gradient is a ``tf.IndexedSlices`` over the few thousand feature
rows present in the batch. Keras 3's ``Adam`` applies such a gradient
densely: every step decays the moments of, and moves, all ``features`` rows.
That made the update, not the input or the matmul, the cost of a training
step, and it grows with the number of features.

``LazyAdam`` (the algorithm of TensorFlow Addons' ``LazyAdam``) updates the
used rows and their two moments only; a row's moments decay when it is used,
not every step. Dense gradients (the other layers) get Keras' own Adam step.
Registered for Keras serialization, so a saved model loads with it.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="streamtrain")
class LazyAdam(keras.optimizers.Adam):
    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        values = tf.cast(gradient.values, dtype)
        rows, position = tf.unique(gradient.indices)  # a row listed several times (workers, an embedding): summed
        grad = tf.cond(
            tf.size(rows) < tf.size(gradient.indices),
            lambda: tf.math.unsorted_segment_sum(values, position, tf.shape(rows)[0]),
            lambda: values,  # each row once (``SparseDense`` on one worker): ``unique`` kept them in order
        )
        index = self._get_variable_index(variable)
        m, v = self._momentums[index].value, self._velocities[index].value
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(grad)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        delta = alpha * m_rows / (tf.sqrt(v_rows) + tf.cast(self.epsilon, dtype))
        target = variable.value if isinstance(variable, keras.Variable) else variable
        # Gather and overwrite: TensorFlow's ResourceScatterSub took 5x the time of a ResourceScatterUpdate here.
        target.scatter_update(tf.IndexedSlices(tf.gather(target, rows) - delta, rows))
