"""``python -m streamtrain.prepare``, kept so existing crontabs and scripts work: the same as ``streamtrain prepare``.

The library code of prepare lives in ``streamtrain.dataset.prepare``.
"""

if __name__ == "__main__":
    from streamtrain.cli import run_command

    raise SystemExit(run_command("prepare"))
