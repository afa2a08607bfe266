"""openmia.transforms."""
