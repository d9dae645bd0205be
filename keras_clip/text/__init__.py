"""Texts: CLIP's in-graph tokenizer (cleaning, byte-pair encoding), prompt templates, class names."""
