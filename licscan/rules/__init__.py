"""Rule packs: loading, validation and evaluation of rules/*.yaml over scan facts (DESIGN A1, B4).

The version tables that the binary readers use live in rules/toolkit/ and are loaded by licscan.knowledge.
"""
