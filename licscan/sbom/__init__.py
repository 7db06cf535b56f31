"""SBOM writers (SPDX 2.3 through the spdx-tools model, CycloneDX 1.6) over a scan's inventory.

    doc = build_spdx(inventory, records, namespace_seed=..., creator_org="Example Corp", created=None)
    write(doc, "spdx-json", "sbom.spdx.json")
    write(build_cyclonedx(inventory, records, creator_org="Example Corp"), "cyclonedx-json", "sbom.cdx.json")

Both formats render one format-neutral :class:`licscan.sbom.nodes.Plan`; ``created=None`` takes
``SOURCE_DATE_EPOCH`` when set, so the same input gives byte-identical output.
"""

from __future__ import annotations

from licscan.sbom.api import FORMATS, build_cyclonedx, build_plan_for, build_spdx, render, write

__all__ = ["FORMATS", "build_cyclonedx", "build_plan_for", "build_spdx", "render", "write"]
