"""Care: what each patient should answer and when, and whether they did.

- ``windows`` (pure): window arithmetic in the patient's time zone, the stored states and the derived statuses
  (``status_at``), the horizon.
- ``models``: ``Schedule`` and ``AssessmentOccurrence`` (stored: one per instrument per window).
- ``service``: schedules (create, list, end), occurrences (list, decline), ``extend_horizons`` (a periodic job).
- ``completion``: which measurement completes which occurrence; called by ``app.clinical.recording`` for every
  measurement stored, whatever path it came in by.
- ``sessions``: a therapy session recorded through the API, and the occurrences it makes due.
- ``adherence``: the clinic's adherence counts (in SQL) and who has not answered.
"""
