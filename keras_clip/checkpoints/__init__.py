"""Checkpoints: OpenAI's names, torch-free readers of PyTorch and safetensors files, downloads, caching."""
