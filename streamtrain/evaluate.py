"""``python -m streamtrain.evaluate``, kept so existing crontabs and scripts work: the same as ``streamtrain evaluate``.

The library code of evaluate lives in ``streamtrain.train.evaluate``.
"""

if __name__ == "__main__":
    from streamtrain.cli import entry

    raise SystemExit(entry("evaluate"))
