"""Built-in rule packs and version tables: data, shipped in the wheel as licscan._builtin_rules."""
