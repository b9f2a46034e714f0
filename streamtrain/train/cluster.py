"""Which worker this process is, and the ``tf.distribute`` strategy that joins it to the others (``Cluster``).

A multi-worker fit is described the way TensorFlow describes it: the
``TF_CONFIG`` environment variable, one JSON document per process,
``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker",
"index": i}}`` (a ``"chief"`` job, if given, is worker 0). Without it, or
with one worker, fit is a one-process cluster. Worker 0 is the chief: the
only one that reads and writes the model directory.

``Cluster.strategy()`` makes ``MultiWorkerMirroredStrategy`` for several
workers and TensorFlow's default strategy for one, so ``train.loop`` runs
the same code either way. Before the strategy exists it configures
TensorFlow's coordination service (heartbeats: a worker that dies or loses
the network fails the others' next collective within
``HEARTBEAT_SECONDS``), and afterwards it re-installs the SIGTERM handler
the coordination agent replaces with its own (which only logs), so SIGTERM
still ends a worker as it ends any command (exit 143, no partial output).
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from typing import Any

from streamtrain.errors import UsageError

HEARTBEAT_SECONDS = 10  # TensorFlow's default: a silent peer fails the cluster after this long (a dead one sooner)


@dataclass(frozen=True)
class Cluster:
    """The workers of a fit and this process's place among them; the default is a one-process cluster."""

    workers: tuple[str, ...] = ()  # host:port of each worker, chief first; empty: one process, no network
    index: int = 0

    @property
    def size(self) -> int:
        """The number of workers (1 for one process)."""
        return max(len(self.workers), 1)

    @property
    def chief(self) -> bool:
        """Whether this is worker 0, the one that reads and writes the model directory."""
        return self.index == 0

    @property
    def name(self) -> str:
        """How logs and errors name this process: ``worker 1`` (of a multi-worker run), else empty."""
        return f"worker {self.index}" if self.size > 1 else ""

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Cluster:
        """The cluster ``TF_CONFIG`` describes.

        Args:
            environ: the environment to read (``os.environ`` when None).

        Returns:
            The cluster; a one-process cluster without ``TF_CONFIG`` or with one worker.

        Raises:
            UsageError: ``TF_CONFIG`` is not a description of ``chief`` and ``worker`` jobs with this task in it.
        """
        text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
        if not text:
            return cls()
        try:
            doc = json.loads(text)
            jobs = doc["cluster"]
            hosts = [*jobs.get("chief", []), *jobs.get("worker", [])]
            task = doc["task"]
            index = int(task["index"]) + (len(jobs.get("chief", [])) if task["type"] == "worker" else 0)
            if task["type"] not in ("chief", "worker") or set(jobs) - {"chief", "worker"}:
                raise ValueError("only 'chief' and 'worker' jobs are supported")
            if not 0 <= index < len(hosts):
                raise ValueError(f"task index {task['index']} is not in the cluster")
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"TF_CONFIG is not a cluster description streamtrain can use: {exc}") from exc
        return cls(tuple(hosts), index) if len(hosts) > 1 else cls()

    def tf_config(self) -> str:
        """``TF_CONFIG`` for this worker (what ``from_env`` reads back)."""
        return json.dumps({"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": self.index}})

    def strategy(self) -> Any:
        """The ``tf.distribute`` strategy that joins this process to the other workers.

        For several workers it configures TensorFlow's coordination service first, and re-installs the SIGTERM
        handler the coordination agent replaces.

        Returns:
            ``MultiWorkerMirroredStrategy`` (once every worker has started), or the default strategy for one
            process.
        """
        import tensorflow as tf

        if self.size == 1:
            return tf.distribute.get_strategy()
        from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2  # TensorFlow's own message type
        from tensorflow.python.eager import context

        handler = signal.getsignal(signal.SIGTERM)
        context.context().configure_coordination_service(
            service_type="standalone",
            service_leader="/job:worker/replica:0/task:0",
            heartbeat_timeout_in_ms=HEARTBEAT_SECONDS * 1000,
            coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=self.size)],
        )
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"worker": list(self.workers)}),
            task_type="worker",
            task_id=self.index,
            rpc_layer="grpc",
        )
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)
        return strategy
