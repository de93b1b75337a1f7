"""spikeformers: spiking transformers for event and image data."""

__version__ = "0.1.0"
