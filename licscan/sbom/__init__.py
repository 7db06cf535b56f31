"""SBOM writers (SPDX 2.3 through the spdx-tools model, CycloneDX 1.6) over a scan's inventory (DESIGN B6)."""
