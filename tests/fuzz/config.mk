# tests/fuzz: config fragment
