"""Small shared helpers: atomic file writes and L2 normalisation."""
