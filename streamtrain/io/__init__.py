"""Raw input: the readers of labelled text (``readers``), and predict's texts (``texts``).

Who owns what: ``readers`` (a package: one reader per format, the dispatcher and the types they share),
``rejects`` (``Reject``, the reasons, ``MAX_FIELD_BYTES``), ``lines`` (the physical lines of a CSV/TSV/JSONL
file, plain or gzip, in bounded memory), ``csv_records`` (CSV records from those lines, recovering from
broken quoting) and ``texts`` (predict's input, one ``Item`` per line).
"""
