"""LoRA Studio core: everything that trains, reads and writes LoRAs. Never imports Qt."""

__version__ = "0.1.0"
