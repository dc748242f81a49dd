# warrenctl: the admin CLI, a client of the management API (libcurl, jansson). It shares no
# code with the broker: the HTTP API is its only contract.
bin_PROGRAMS += src/warrenctl
src_warrenctl_SOURCES = src/cli/warrenctl.c src/cli/warrenctl.h src/cli/warrenctl_http.c \
	src/cli/warrenctl_format.c src/cli/cmd_list.c src/cli/cmd_users.c \
	src/cli/cmd_objects.c src/cli/cmd_runtime.c src/cli/cmd_access.c
src_warrenctl_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
src_warrenctl_LDADD = $(CURL_LIBS) $(JANSSON_LIBS)
