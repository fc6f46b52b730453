"""Package metadata for progressistad: the daemon, its dashboard and the client."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "progressistad" / "__init__.py").read_text()).group(1)

setup(
    name="progressistad",
    version=VERSION,
    description="A push gateway for progress bars: a daemon, a live dashboard and a tqdm client",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["progressistad", "progressistad.*"]) + ["progressistad.static"],
    package_dir={"progressistad.static": "static"},
    package_data={"progressistad.static": ["*.html", "*.css", "*.js", "*.svg", "*.ico", "*.png"]},
    install_requires=[
        "tornado>=6.2",
        "marshmallow>=3.18",
        "configargparse>=1.5.3",
        "sdnotify>=0.3.1",
        "tqdm>=4.64",
    ],
    extras_require={
        "redis": ["redis>=4.3"],
        # Notification routes whose scheme no built-in sink handles (progressistad.alerts).
        "apprise": ["apprise"],
    },
    entry_points={
        "console_scripts": [
            "progressistad=progressistad.daemon.main:main",
            "progressista=progressistad.client.cli:main",
        ],
    },
    classifiers=[
        "Environment :: No Input/Output (Daemon)",
        "Framework :: Tornado",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Monitoring",
    ],
)
