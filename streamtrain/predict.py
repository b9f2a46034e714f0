"""``python -m streamtrain.predict``, kept so existing crontabs and scripts work: the same as ``streamtrain predict``.

The library code of predict lives in ``streamtrain.train.predict``.
"""

if __name__ == "__main__":
    from streamtrain.cli import entry

    raise SystemExit(entry("predict"))
