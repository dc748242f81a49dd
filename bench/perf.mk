# bench: perf fragment
