# The management API (HTTP, JSON), the Prometheus metrics and the broker operations they
# share with definitions import (ops).
src_libwarren_a_SOURCES += \
	src/mgmt/ops.c src/mgmt/ops.h \
	src/mgmt/mgmt.c src/mgmt/mgmt.h src/mgmt/mgmt_api.h \
	src/mgmt/http_limits.c src/mgmt/http_limits.h \
	src/mgmt/mgmt_users.c src/mgmt/mgmt_objects.c src/mgmt/mgmt_runtime.c \
	src/mgmt/mgmt_params.c src/mgmt/mgmt_node.c src/mgmt/mgmt_cluster.c \
	src/mgmt/mgmt_json.c src/mgmt/mgmt_json.h \
	src/mgmt/mgmt_slice.c src/mgmt/mgmt_slice.h \
	src/mgmt/mgmt_stats.c src/mgmt/mgmt_stats.h \
	src/mgmt/mgmt_defs.c src/mgmt/mgmt_defs.h \
	src/mgmt/metrics.c src/mgmt/metrics.h \
	src/mgmt/ui.c src/mgmt/ui.h

# Where src/mgmt/ui.c finds the web UI's files (www/local.mk installs them): as installed,
# or else in the source tree this warrend was built from.
src_libwarren_a_CPPFLAGS += -DWARREN_UI_DIR='"$(pkgdatadir)/www"' \
	-DWARREN_SOURCE_UI_DIR='"$(abs_top_srcdir)/www"'
	src/mgmt/metrics.c src/mgmt/metrics.h
# Topic permissions and user limits; the health checks but alarms.
src_libwarren_a_SOURCES += src/mgmt/mgmt_access.c src/mgmt/mgmt_health.c
