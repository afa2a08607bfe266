"""openmia.data."""
