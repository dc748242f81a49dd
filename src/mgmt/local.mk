# The management API (HTTP, JSON), the Prometheus metrics and the broker operations they
# share with definitions import (ops).
src_libwarren_a_SOURCES += \
	src/mgmt/ops.c src/mgmt/ops.h \
	src/mgmt/mgmt.c src/mgmt/mgmt.h src/mgmt/mgmt_api.h \
	src/mgmt/http_limits.c src/mgmt/http_limits.h \
	src/mgmt/mgmt_users.c src/mgmt/mgmt_objects.c src/mgmt/mgmt_runtime.c \
	src/mgmt/mgmt_params.c src/mgmt/mgmt_node.c \
	src/mgmt/mgmt_json.c src/mgmt/mgmt_json.h \
	src/mgmt/mgmt_slice.c src/mgmt/mgmt_slice.h \
	src/mgmt/mgmt_stats.c src/mgmt/mgmt_stats.h \
	src/mgmt/mgmt_defs.c src/mgmt/mgmt_defs.h \
	src/mgmt/metrics.c src/mgmt/metrics.h
