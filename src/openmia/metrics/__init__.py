"""openmia.metrics."""
