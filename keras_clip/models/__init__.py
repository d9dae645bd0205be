"""The CLIP model, zero-shot classification on it, and the table of released models (`presets`)."""
