/* The management web UI's files (www/ in the source tree), served on the management port at
 * every path outside /api/. The UI is static: HTML, CSS and JavaScript modules that run in
 * the browser and call the API with the user's basic credentials, as RabbitMQ's UI does, so
 * its files need no credentials and hold nothing secret.
 *
 * Where the files are: management.ui_dir when it is set; otherwise where `make install` put
 * them (WARREN_UI_DIR, PREFIX/share/warren/www), or, when that is missing, the www/ of the
 * source tree warrend was built from (WARREN_SOURCE_UI_DIR), so that a warrend run from its
 * build tree shows the UI too.
 *
 * What is served: GET and HEAD of a regular file below that directory whose path is made of
 * segments of letters, digits, '-', '_' and '.' that do not begin with '.' ("/" is
 * index.html). A path with a ".." segment, a hidden name, a backslash or a control byte,
 * before or after percent-decoding, is refused with 400 before any file is looked at; any
 * other method with 405. Files are sent as they are on disk, with their Content-Type, an
 * ETag and "Cache-Control: no-cache" (the browser keeps a copy and asks each time whether it
 * is still current: a 304 costs a few bytes, and an upgraded UI is seen at once), and
 * headers that keep the pages from being framed or their types guessed. */
#ifndef WARREN_SRC_MGMT_UI_H
#define WARREN_SRC_MGMT_UI_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct config;

/* The directory the files are taken from, as the comment above says, into out (size bytes).
 * False when it is not a directory (out still names it). */
bool mgmt_ui_dir(const struct config *cfg, char *out, size_t size);

/* Logs where the UI's files are taken from, or that they are missing (then / answers 404). */
void mgmt_ui_announce(const struct config *cfg);

/* Whether a request head for a UI path may go on: false after answering 405 to a method
 * other than GET and HEAD (at the head, so that no body of an anonymous request is read). */
bool mgmt_ui_accepts(struct MHD_Connection *conn, const char *method, enum MHD_Result *answered);

/* Answers the request for url (the raw path, percent-escapes as sent) with its file, 304,
 * 400, 404 or 405. */
enum MHD_Result mgmt_ui_serve(const struct config *cfg, struct MHD_Connection *conn,
                              const char *url, const char *method);

/* The path of url below the UI's directory (percent-decoded, "index.html" for "/"), into
 * out. Returns 0, or -1 for a path refused as above. For the unit tests. */
int mgmt_ui_file_path(const char *url, char *out, size_t size);

#endif
