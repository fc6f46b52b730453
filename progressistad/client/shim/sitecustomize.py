"""Start-up shim of `progressista run -- CMD`: a Python program's tqdm bars report as the command's children.

Python imports this at start-up because `progressista run` puts its directory
first on PYTHONPATH. It installs the tqdm patch when the program first imports
tqdm (a program without bars pays nothing), takes progressistad from beside
this file (the program's own environment may lack it), then runs the
sitecustomize that the rest of the path holds, as Python would have.
Standard library only, and it never raises on its own account.
"""

import importlib.util
import os
import sys
from importlib.machinery import PathFinder

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
"""The directory holding the progressistad package this shim belongs to."""


class _PatchOnTqdmImport:
    """A meta path finder that lets the first `import tqdm` run, then installs the patch."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "tqdm":
            return None
        sys.meta_path.remove(cls)
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is not None and hasattr(loader, "exec_module"):
            run_module = loader.exec_module

            def exec_module(module):
                run_module(module)
                _install_patch()

            loader.exec_module = exec_module
        return spec


def _install_patch():
    try:
        if "progressistad" not in sys.modules:
            spec = PathFinder.find_spec("progressistad", [ROOT])
            package = importlib.util.module_from_spec(spec)
            sys.modules["progressistad"] = package
            spec.loader.exec_module(package)
        import logging

        from progressistad.client import patch

        patch.install()
        # The wrapper says once when the daemon is away; the program's bars stay quiet about it.
        quiet = logging.getLogger("progressistad.client")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    except Exception:  # an interpreter too old, a broken install: the program runs unreported
        pass


def _chain():
    """Run the next sitecustomize on the path, which this module shadows."""
    others = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != HERE]
    spec = PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


sys.meta_path.insert(0, _PatchOnTqdmImport)
_chain()
