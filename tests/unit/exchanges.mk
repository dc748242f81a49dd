# tests/unit: exchanges fragment
