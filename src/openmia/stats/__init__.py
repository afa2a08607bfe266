"""openmia.stats."""
