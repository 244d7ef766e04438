"""tradewire: a crypto-exchange core whose heart is real-time messaging."""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("TRADEWIRE_COMPILED") == "0":  # tradewire/compiled.py: the hot modules' sources
    from tradewire.compiled import prefer_sources as _prefer_sources

    _prefer_sources()
