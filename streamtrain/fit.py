"""``python -m streamtrain.fit``, kept so existing crontabs and scripts work: the same as ``streamtrain fit``.

The library code of fit lives in ``streamtrain.train.fit``.
"""

if __name__ == "__main__":
    from streamtrain.cli import entry

    raise SystemExit(entry("fit"))
