"""openmia.engine."""
