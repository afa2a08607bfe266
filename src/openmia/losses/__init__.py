"""Loss functions, one module per task family."""
