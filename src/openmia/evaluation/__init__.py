"""openmia.evaluation."""
