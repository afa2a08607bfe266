"""openmia.tasks."""
