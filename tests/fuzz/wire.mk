# tests/fuzz: wire fragment
