"""Make the tqdm entry points remote-aware: `install()` swaps in reporting subclasses, `uninstall()` undoes it."""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Dict, List, Tuple

from progressistad.client.remote import make_remote_tqdm

TARGETS: Tuple[Tuple[str, str], ...] = (
    ("tqdm", "tqdm"),
    ("tqdm.std", "tqdm"),
    ("tqdm.asyncio", "tqdm"),
    ("tqdm.autonotebook", "tqdm"),
    ("tqdm.notebook", "tqdm"),
    ("tqdm.auto", "tqdm"),
    ("tqdm.contrib.concurrent", "tqdm_auto"),
)
"""(module, attribute) pairs holding a tqdm class; tqdm.trange and tqdm.auto.trange look these up.

The `tqdm_notebook` and `tqdm_asyncio` names stay: older tqdm calls `super(tqdm_notebook, self)`.
"""

RANGE_TARGETS = (("tqdm.notebook", "tnrange"), ("tqdm.notebook", "trange"),
                 ("tqdm.asyncio", "tarange"), ("tqdm.asyncio", "trange"))
"""Range shortcuts that build their bar through those kept names: replaced by reporting ones."""

DEFAULT_HOLDERS = ("tqdm.contrib", "tqdm.contrib.concurrent", "tqdm.contrib.itertools")
"""Modules whose functions take `tqdm_class=<tqdm.auto class>` as a keyword default."""

_originals: Dict[Tuple[str, str], Any] = {}
_patched_defaults: List[Tuple[Any, str, type]] = []
_defaults: Dict[str, Any] = {}
_remote_for: Dict[type, type] = {}


def install(**defaults: Any) -> None:
    """Replace every tqdm entry point with a reporting subclass; `defaults` preset remote options.

    Calling it again is harmless; new `defaults` are merged into the earlier ones.
    """
    if defaults and {**_defaults, **defaults} != _defaults:
        _defaults.update(defaults)
        _remote_for.clear()
    # Import every entry point before patching, so none subclasses an already patched class.
    modules = {name: _import(name) for name, _ in TARGETS}
    for module_name, attr in TARGETS:
        module = modules[module_name]
        current = getattr(module, attr, None) if module is not None else None
        if not isinstance(current, type):
            continue
        base = _originals.get((module_name, attr), current)
        if getattr(base, "_is_progressista_remote", False):
            continue
        if base not in _remote_for:
            _remote_for[base] = make_remote_tqdm(base, **_defaults)
        _originals.setdefault((module_name, attr), base)
        setattr(module, attr, _remote_for[base])
    for module_name, attr in RANGE_TARGETS:
        module = modules[module_name]
        if module is not None and callable(getattr(module, attr, None)):
            _originals.setdefault((module_name, attr), getattr(module, attr))
            setattr(module, attr, _reporting_range(module.tqdm))
    _patch_keyword_defaults()


def _reporting_range(cls: type) -> Any:
    def trange(*args: Any, **kwargs: Any) -> Any:
        """`cls(range(*args), **kwargs)`: a reporting bar over a range."""
        return cls(range(*args), **kwargs)
    return trange


def _patch_keyword_defaults() -> None:
    for function, name, original in _patched_defaults:
        function.__kwdefaults__[name] = original
    _patched_defaults.clear()
    for module_name in DEFAULT_HOLDERS:
        module = _import(module_name)
        for function in list(vars(module).values()) if module is not None else ():
            for name, value in (getattr(function, "__kwdefaults__", None) or {}).items():
                if isinstance(value, type) and value in _remote_for:
                    _patched_defaults.append((function, name, value))
                    function.__kwdefaults__[name] = _remote_for[value]


def uninstall() -> None:
    """Put the original tqdm classes back."""
    for (module_name, attr), original in list(_originals.items()):
        module = _import(module_name)
        if module is not None:
            setattr(module, attr, original)
    for function, name, original in _patched_defaults:
        function.__kwdefaults__[name] = original
    _patched_defaults.clear()
    _originals.clear()
    _defaults.clear()
    _remote_for.clear()


def installed() -> bool:
    """Whether install() is in effect."""
    return bool(_originals)


def _import(name: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:  # an optional entry point that cannot load here
        return None
