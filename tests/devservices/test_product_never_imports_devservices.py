"""The stand-ins stay out of the product: no product package imports `devservices` (the production image
does not ship it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ["rebill", "agencies", "people", "subaccounts", "billing", "phone", "phoneregistry", "pricebook",
                    "stripe_connect"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_product_module_imports_devservices():
    offenders = [
        str(path.relative_to(ROOT))
        for package in PRODUCT_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if any(name == "devservices" or name.startswith("devservices.") for name in _imports(path))
    ]
    assert offenders == []


def test_the_production_image_leaves_the_stand_ins_out():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "rm -rf devservices tests bench" in dockerfile
    assert dockerfile.rstrip().splitlines()[-1].startswith("FROM app AS production")  # the default target
