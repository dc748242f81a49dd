# Unit tests (Check). Each area owns one fragment.
include $(srcdir)/tests/unit/wire.mk
include $(srcdir)/tests/unit/exchanges.mk
include $(srcdir)/tests/unit/broker.mk
