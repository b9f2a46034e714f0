"""``python -m streamtrain COMMAND ...``: the same as the ``streamtrain`` command."""

if __name__ == "__main__":
    from streamtrain.cli import entry

    raise SystemExit(entry())
