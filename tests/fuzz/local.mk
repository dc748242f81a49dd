# Fuzz targets. Each area owns one fragment.
include $(srcdir)/tests/fuzz/wire.mk
include $(srcdir)/tests/fuzz/config.mk
include $(srcdir)/tests/fuzz/conn.mk
include $(srcdir)/tests/fuzz/regex.mk
include $(srcdir)/tests/fuzz/ui_path.mk
include $(srcdir)/tests/fuzz/repl.mk
include $(srcdir)/tests/fuzz/etcd_json.mk
include $(srcdir)/tests/fuzz/proxy_header.mk
include $(srcdir)/tests/fuzz/stream_log.mk
