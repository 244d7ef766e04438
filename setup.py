"""Builds the matching engine's native core; everything else about the package is in pyproject.toml.

The extension is optional: without a C compiler the install still succeeds and the pure engine runs
everything (``tradewire.engine.native.built()`` tells which).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("tradewire.engine._native", ["tradewire/engine/_native.pyx"], optional=True)],
        compiler_directives={"language_level": "3"},
    )
)
