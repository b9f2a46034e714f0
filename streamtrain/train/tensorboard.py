"""TensorBoard event files of a trial: its configuration and per-round scalars (``TensorBoardLog``).

``TensorBoardLog`` is a Keras callback that writes, with TensorFlow's own summary writer (no graph, no
profile, unlike Keras' ``TensorBoard`` callback): at its first train begin the run's configuration as a
Markdown table (summary ``config``, text, step 0); at every round's end each numeric value of the logs
(``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``) as a scalar at step ``round + 1``, numbered from 1
as in ``history.json``, then a flush, so a killed run loses nothing logged. The events carry the metadata
of TensorBoard's ``scalars`` and ``text`` plugins, exactly what ``tf.summary.scalar`` and
``tf.summary.text`` write, without the ``tensorboard`` package (TensorFlow 2.21 no longer installs it);
viewing them needs it: ``pip install tensorboard; tensorboard --logdir M/versions``. A resumed trial, in a
new process, adds event files to the same directory, its steps continuing where the commit it resumed
left off; TensorBoard reads them as one run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras

CONFIG_TAG = "config"


class TensorBoardLog(keras.callbacks.Callback):
    """Write ``config`` once and every round's scalars as TensorBoard events under ``log_dir``.

    Args:
        log_dir: the event files' directory (made at the first train begin).
        config: the run's configuration (``fit_config.json``'s document).
    """

    def __init__(self, log_dir: Path, config: dict) -> None:
        super().__init__()
        self.log_dir = Path(log_dir)
        self.config = dict(config)
        self._writer: Any = None  # a tf.summary.SummaryWriter while training
        self._config_written = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Open the event file, and write the configuration the first time.

        Args:
            logs: Keras' logs (unused).
        """
        import tensorflow as tf

        if self._writer is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        if not self._config_written:
            with self._writer.as_default():
                tf.summary.write(CONFIG_TAG, tf.constant(config_markdown(self.config)), step=0, metadata=_meta("text"))
            self._writer.flush()
            self._config_written = True

    def on_epoch_end(self, round_: int, logs: dict | None = None) -> None:
        """Write the round's numbers at step ``round_ + 1`` and flush.

        Args:
            round_: the 0-based round that ended.
            logs: its metrics; values that are not one number are skipped.
        """
        import tensorflow as tf

        if self._writer is None:  # a round outside fit's train begin / end (not done by Keras): open now
            self.on_train_begin()
        assert self._writer is not None
        with self._writer.as_default():
            for name, value in sorted((logs or {}).items()):
                number = _scalar(value)
                if number is not None:
                    tf.summary.write(name, tf.constant(number, tf.float32), step=round_ + 1, metadata=_meta("scalars"))
        self._writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        """Close the event file (``close``).

        Args:
            logs: Keras' logs (unused).
        """
        self.close()

    def close(self) -> None:
        """Flush and close the event file; the next train begin opens a new one in the same directory."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def config_markdown(config: dict) -> str:
    """The configuration as a two-column Markdown table (TensorBoard's text tab renders Markdown).

    Args:
        config: option -> value; values are shown as JSON, ``|`` escaped.

    Returns:
        The table, one row per option in name order.
    """
    lines = ["| option | value |", "|---|---|"]
    for key in sorted(config):
        value = json.dumps(config[key], default=str, ensure_ascii=False).replace("|", "\\|")
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines)


def _scalar(value: Any) -> float | None:
    """A log value as a float, or None when it is not one number (Keras may log other things)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def _meta(plugin: str) -> Any:
    """The summary metadata ``tf.summary.scalar`` (plugin ``scalars``) or ``tf.summary.text`` (``text``) writes."""
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    meta.data_class = summary_pb2.DATA_CLASS_SCALAR if plugin == "scalars" else summary_pb2.DATA_CLASS_TENSOR
    return meta
