"""Builds the matching engine's native core, the engine's RESP packer and the account views' C
renderers, the engine's reply renderer and the depth checksum, and compiles the engine service's hot
pure-Python modules unchanged (``tradewire/compiled.py``); everything else about the package is in
pyproject.toml.

The extensions are optional: without a C compiler the install still succeeds, the pure engine runs
everything (``tradewire.engine.native.built()`` tells which), the transaction is packed in Python
(``tradewire.journal.wire.PACKER``), and order records and replies are rendered in Python
(``tradewire.accounts.payloads.RENDERER``, ``tradewire.journal.render.ReplyRenderer``), the
depth checksum taken in Python (``tradewire.marketdata.depth.native_checksum``), amounts written as
text in Python (``tradewire.engine.decimals.to_text``), and the hot modules run as the Python they
are.
"""

import runpy

from Cython.Build import cythonize
from setuptools import Extension, setup

HOT_MODULES = runpy.run_path("tradewire/compiled.py")["MODULES"]


def _extension(name: str, source: str) -> Extension:
    return Extension(name, [source], optional=True)


setup(
    ext_modules=[
        *cythonize(
            [
                _extension("tradewire.engine._native", "tradewire/engine/_native.pyx"),
                _extension("tradewire.journal._resp", "tradewire/journal/_resp.pyx"),
                _extension("tradewire.accounts._render", "tradewire/accounts/_render.pyx"),
                _extension("tradewire.journal._reply", "tradewire/journal/_reply.pyx"),
                _extension("tradewire.marketdata._checksum", "tradewire/marketdata/_checksum.pyx"),
                _extension("tradewire.engine._decimals", "tradewire/engine/_decimals.pyx"),
            ],
            compiler_directives={"language_level": "3"},
        ),
        *cythonize(
            [_extension(name, name.replace(".", "/") + ".py") for name in HOT_MODULES],
            # as Python runs them: annotations are not C types, functions are plain callables
            compiler_directives={"language_level": "3", "binding": False, "annotation_typing": False},
        ),
    ]
)
