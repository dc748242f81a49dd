# Unit tests (Check). Each area owns one fragment.
include $(srcdir)/tests/unit/wire.mk
include $(srcdir)/tests/unit/exchanges.mk
include $(srcdir)/tests/unit/broker.mk
include $(srcdir)/tests/unit/repl.mk
include $(srcdir)/tests/unit/cluster.mk
include $(srcdir)/tests/unit/stream.mk

# The layering of src/ (src/local.mk): every include points down.
TESTS += tests/unit/check_layers.sh
EXTRA_DIST += tests/unit/check_layers.sh
