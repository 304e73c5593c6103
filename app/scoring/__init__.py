"""Pure scoring core: instrument definitions as data, and one function that scores answers against them.

Nothing here knows about HTTP, databases or the clock; import-linter enforces it.
"""

SCORER_VERSION = "1.0.0"
"""Version of the scoring engine; stored with every measurement beside the definition version."""
