"""Builds the Cython hot path ``tierchain._hot`` (metadata lives in pyproject.toml).

Environment switches:
  TIERCHAIN_DEBUG=1     bounds checks, C asserts, -O0 -g, Cython line tracing
  TIERCHAIN_ANNOTATE=1  write ext/cython/*.html (``cython -a``) next to the sources
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("TIERCHAIN_DEBUG") == "1"

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "initializedcheck": debug,
    "cdivision": True,
    "embedsignature": True,
}
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if debug:
    directives["linetrace"] = True
    macros += [("CYTHON_TRACE_NOGIL", "1")]
    compile_args = ["-O0", "-g", "-UNDEBUG"]
else:
    compile_args = ["-O3"]

extensions = [
    Extension(
        "tierchain._hot",
        ["ext/cython/_hot.pyx"],
        include_dirs=[numpy.get_include(), "ext/cython"],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("TIERCHAIN_ANNOTATE") == "1",
    )
)
