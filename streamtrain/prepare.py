"""``python -m streamtrain.prepare``, kept so existing crontabs and scripts work: the same as ``streamtrain prepare``.

The library code of prepare lives in ``streamtrain.dataset.prepare``.
"""

if __name__ == "__main__":
    from streamtrain.cli import entry

    raise SystemExit(entry("prepare"))
