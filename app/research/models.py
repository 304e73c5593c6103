"""Tables of the research domain (none yet)."""
