"""openmia.losses."""
