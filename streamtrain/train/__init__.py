"""Training and model directories: ``fit``, ``evaluate``, ``predict``, ``promote``, ``export`` and the bake-off.

Who owns what:
- the commands' library calls: ``fit`` (options and entry point), ``evaluate``, ``predict``, ``promote``
  (also the recoverable promotion step), ``export``; ``bakeoff`` is prepare's, passed in by
  ``streamtrain.prepare``.
- one version's life in fit: ``version_run`` (the stages), ``selection`` and ``tune`` (the candidates and the
  search), ``trial`` (one candidate), ``plan`` (epochs and rounds), ``rounds`` and ``loop`` (the one training
  loop), ``batches`` and ``tfdata`` (shards to batches), ``checkpoint`` (resume, early stopping),
  ``guards``, ``epoch_log``, ``tensorboard``, ``cluster`` and ``runtime``.
- the model and what is kept of it: ``models`` and ``optimizers``, ``scoring``, ``modeldir`` (the version's
  files), ``promotion`` (the guard), ``serving`` (export and check), ``report``, ``markdown``, ``plots``.

Design: docs/design/training.md, docs/design/training-speed.md, docs/design/selection.md
"""
