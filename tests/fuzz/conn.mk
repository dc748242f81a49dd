# tests/fuzz: conn fragment
