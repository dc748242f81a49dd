# tests/unit: wire fragment
