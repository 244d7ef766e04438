"""Builds the matching engine's native core, the engine's RESP packer and the account views' C
renderers, the engine's reply renderer and the depth checksum; everything else about the package is
in pyproject.toml.

The extensions are optional: without a C compiler the install still succeeds, the pure engine runs
everything (``tradewire.engine.native.built()`` tells which), the transaction is packed in Python
(``tradewire.journal.wire.PACKER``), and order records and replies are rendered in Python
(``tradewire.accounts.payloads.RENDERER``, ``tradewire.journal.render.ReplyRenderer``), and
the depth checksum taken in Python (``tradewire.marketdata.depth.native_checksum``).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension("tradewire.engine._native", ["tradewire/engine/_native.pyx"], optional=True),
            Extension("tradewire.journal._resp", ["tradewire/journal/_resp.pyx"], optional=True),
            Extension("tradewire.accounts._render", ["tradewire/accounts/_render.pyx"], optional=True),
            Extension("tradewire.journal._reply", ["tradewire/journal/_reply.pyx"], optional=True),
            Extension("tradewire.marketdata._checksum", ["tradewire/marketdata/_checksum.pyx"], optional=True),
        ],
        compiler_directives={"language_level": "3"},
    )
)
