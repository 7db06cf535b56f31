"""Readers that state facts about bytes: ELF, ar, PE, fatbin, cubin, PTX. They never judge (docs/architecture.md)."""
