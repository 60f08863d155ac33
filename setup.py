"""The packages, found in the folders rather than listed (pyproject.toml holds the rest).

``kfpkit`` is src/kfpkit without ``kfpkit.testing`` (test stand-ins, not shipped: the images
install this wheel); ``kfpkit.components`` is components/ and ``kfpkit.pipelines`` is
pipelines/ (``package-dir`` in pyproject.toml); tests/ folders are left out everywhere.
"""

from setuptools import find_packages, setup

NOT_SHIPPED = ["kfpkit.testing", "kfpkit.testing.*", "*.tests", "*.tests.*"]


def packages_under(folder: str, name: str) -> list[str]:
    return [name] + [f"{name}.{p}" for p in find_packages(folder, exclude=NOT_SHIPPED)]


setup(
    packages=find_packages("src", exclude=NOT_SHIPPED)
    + packages_under("components", "kfpkit.components")
    + packages_under("pipelines", "kfpkit.pipelines")
)
