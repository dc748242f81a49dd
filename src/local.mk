# The broker. libwarren.a holds every module but main, so unit tests and the connection
# fuzz target link the real code.
noinst_LIBRARIES += src/libwarren.a
src_libwarren_a_SOURCES = \
	src/log.c src/log.h \
	src/config.c src/config.h
