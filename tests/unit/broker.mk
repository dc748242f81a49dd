# tests/unit: broker fragment
