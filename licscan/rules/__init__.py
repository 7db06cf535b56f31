"""Rule packs: loading, validation and evaluation of rules/*.yaml over scan facts.

The version tables that the binary readers use live in rules/toolkit/ and are loaded by licscan.knowledge.
"""
