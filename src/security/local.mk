# Users, vhosts and permissions (auth), and TLS through OpenSSL.
src_libwarren_a_SOURCES += \
	src/security/auth.c src/security/auth.h \
	src/security/tls.c src/security/tls.h
