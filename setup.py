"""Package layout only (everything else is in pyproject.toml): the top-level plugins/ and resources/ folders
install under unique import names, studio_plugins and studio_resources. pyproject's package discovery cannot
map a folder to another name, so the list is built here."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["studio", "studio.*"]), "studio_plugins", "studio_resources"],
    package_dir={"studio_plugins": "plugins", "studio_resources": "resources"},
)
