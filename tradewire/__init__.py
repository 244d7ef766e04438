"""tradewire: a crypto-exchange core whose heart is real-time messaging."""

__version__ = "0.1.0"

import os as _os

from tradewire import compiled as _compiled

if _os.environ.get(_compiled.SWITCH) == "0":  # the hot modules from their sources, built or not
    _compiled.prefer_sources()
