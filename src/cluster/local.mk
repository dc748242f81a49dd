# Cluster mode (docs: CLUSTERING.md): the etcd client and the coordinator hiding it, built
# into libwarren.a. It may include base, security and store, nothing above
# (tests/unit/check_layers.sh). What links these objects also needs $(CURL_LIBS) and -lpthread.
src_libwarren_a_CPPFLAGS += $(CURL_CFLAGS)
src_libwarren_a_SOURCES += \
	src/cluster/etcd.c src/cluster/etcd.h src/cluster/etcd_internal.h \
	src/cluster/etcd_json.c \
	src/cluster/coord.c src/cluster/coord.h src/cluster/coord_internal.h src/cluster/coord_watch.c \
	src/cluster/cluster.c src/cluster/cluster.h
