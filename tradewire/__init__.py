"""tradewire: a crypto-exchange core whose heart is real-time messaging."""

__version__ = "0.1.0"
