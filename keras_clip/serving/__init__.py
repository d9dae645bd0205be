"""Serving: SavedModel export for TensorFlow Serving, embedding image collections, and search."""
