"""openmia.bench."""
