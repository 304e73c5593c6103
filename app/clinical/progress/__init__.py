"""Expected response and progress: is a patient on the path the clinic's own completed courses predict?

Pure modules (no database, no web; in the import-linter "pure" contract): ``expected`` (the expected-response model
after Finch, Lambert & Schaalje 2001: its form, its fit, its band) and ``status`` (a course's status at each
measurement, from an expected-response table or, without one, from a rule built only from reliable change and the
instrument's cut-off). The database side: ``models`` (the stored tables), ``tables`` (fitting, loading and reading
them), ``service`` (a patient's progress, and ``progress_for_patients`` for many) and ``alerts`` (the
``not_on_track`` alert raised when a new measurement turns a course). The method and its minimums are described in
``docs/progress.md``.
"""
