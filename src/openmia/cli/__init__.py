"""openmia.cli."""
