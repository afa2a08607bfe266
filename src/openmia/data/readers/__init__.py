"""openmia.data.readers."""
