# The PROXY protocol v1 header a follower's relay sends and the leader reads
# (src/cluster/proxy_header.h).
src_libwarren_a_SOURCES += \
	src/cluster/proxy_header.c src/cluster/proxy_header.h
