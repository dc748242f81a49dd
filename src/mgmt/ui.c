/* The management web UI's static files (src/mgmt/ui.h). */
#include "build_config.h"

#include "src/mgmt/ui.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/config.h"
#include "src/base/log.h"
#include "src/base/util.h"

/* Set by src/mgmt/local.mk from the install prefix and the source tree. */
#ifndef WARREN_UI_DIR
#define WARREN_UI_DIR "/usr/local/share/warren/www"
#endif
#ifndef WARREN_SOURCE_UI_DIR
#define WARREN_SOURCE_UI_DIR ""
#endif

/* The longest path below the directory a file of ours has; anything longer is no file of
 * ours. */
#define UI_PATH_MAX 255

/* The pages talk to their own origin only, may not be framed (a click-jacked "Delete" would
 * act with the operator's credentials) and run no inline script. */
#define UI_CSP                                                                                     \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

/* A scanner trying paths would write a log line per try: the first refused path of a minute
 * is logged, the others are counted, and the count goes with the next line. */
#define UI_REFUSAL_LOG_INTERVAL_US (60ull * 1000 * 1000)

static struct {
    uint64_t logged_us; /* when the last line was written; 0 never */
    uint64_t unlogged;  /* refusals since then */
} refusals;

static void log_refusal(const char *url)
{
    uint64_t now = now_us();

    if (refusals.logged_us != 0 && now - refusals.logged_us < UI_REFUSAL_LOG_INTERVAL_US) {
        refusals.unlogged++;
        return;
    }
    if (refusals.unlogged > 0)
        log_warn(NULL,
                 "management UI: refused the path '%.200s' (and %llu other paths since the "
                 "previous line: one line a minute)",
                 url, (unsigned long long)refusals.unlogged);
    else
        log_warn(NULL, "management UI: refused the path '%.200s'", url);
    refusals.logged_us = now;
    refusals.unlogged = 0;
}

static bool is_directory(const char *path)
{
    struct stat st;

    return path[0] != '\0' && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool mgmt_ui_dir(const struct config *cfg, char *out, size_t size)
{
    if (cfg->management_ui_dir[0] != '\0') {
        snprintf(out, size, "%s", cfg->management_ui_dir);
        return is_directory(out);
    }
    if (!is_directory(WARREN_UI_DIR) && is_directory(WARREN_SOURCE_UI_DIR)) {
        snprintf(out, size, "%s", WARREN_SOURCE_UI_DIR);
        return true;
    }
    snprintf(out, size, "%s", WARREN_UI_DIR);
    return is_directory(out);
}

void mgmt_ui_announce(const struct config *cfg)
{
    char dir[sizeof cfg->management_ui_dir];

    if (mgmt_ui_dir(cfg, dir, sizeof dir))
        log_info(NULL, "management UI: serving the files of %s", dir);
    else
        log_warn(NULL, "management UI: %s is not a directory; / answers 404 (management.ui_dir)",
                 dir);
}

/* ---- Paths ----------------------------------------------------------------------------- */

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static bool is_name_byte(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
}

int mgmt_ui_file_path(const char *url, char *out, size_t size)
{
    size_t n = 0;
    bool segment_start = true;

    if (url[0] != '/' || size == 0)
        return -1;
    url++;
    if (url[0] == '\0') {
        snprintf(out, size, "index.html");
        return strlen("index.html") < size ? 0 : -1;
    }
    /* Decoded first, then checked: "%2e%2e" and "%2f" are refused as ".." and "/" are. */
    for (size_t i = 0; url[i] != '\0'; i++) {
        char ch = url[i];
        int hi, lo;

        if (ch == '%') {
            if ((hi = hex_digit(url[i + 1])) < 0 || (lo = hex_digit(url[i + 2])) < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= size || n >= UI_PATH_MAX)
            return -1;
        if (ch == '/') {
            if (segment_start) /* "//" or a trailing "/": no file has an empty name */
                return -1;
            segment_start = true;
        } else if (!is_name_byte(ch) || (segment_start && ch == '.')) {
            /* No "." or ".." segment, no hidden file, nothing the shell or the file system
             * reads specially: only the names the UI's files have. */
            return -1;
        } else {
            segment_start = false;
        }
        out[n++] = ch;
    }
    if (segment_start)
        return -1;
    out[n] = '\0';
    return 0;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"ico", "image/x-icon"},
        {"json", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');

    if (dot != NULL && strchr(dot, '/') == NULL) {
        for (size_t i = 0; i < ARRAY_LEN(types); i++) {
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
        }
    }
    return "application/octet-stream";
}

/* ---- Answers --------------------------------------------------------------------------- */

static void add_common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Content-Security-Policy", UI_CSP);
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    add_common_headers(r);
    ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static bool is_read_method(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

bool mgmt_ui_accepts(struct MHD_Connection *conn, const char *method, enum MHD_Result *answered)
{
    if (is_read_method(method))
        return true;
    *answered = respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    return false;
}

/* Whether the client's If-None-Match names etag (or is "*"). */
static bool client_has(struct MHD_Connection *conn, const char *etag)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");

    return h != NULL && (strcmp(h, "*") == 0 || strstr(h, etag) != NULL);
}

enum MHD_Result mgmt_ui_serve(const struct config *cfg, struct MHD_Connection *conn,
                              const char *url, const char *method)
{
    char dir[sizeof cfg->management_ui_dir], rel[UI_PATH_MAX + 1], path[sizeof dir + sizeof rel];
    char etag[64];
    struct MHD_Response *r;
    enum MHD_Result ok;
    struct stat st;
    int fd;

    if (!is_read_method(method))
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    if (mgmt_ui_file_path(url, rel, sizeof rel) != 0) {
        log_refusal(url);
        return respond_text(conn, MHD_HTTP_BAD_REQUEST, "Bad Request: not a path of the UI\n");
    }
    if (!mgmt_ui_dir(cfg, dir, sizeof dir))
        return respond_text(conn, MHD_HTTP_NOT_FOUND,
                            "Not Found: the management UI is not installed (management.ui_dir)\n");
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) >= sizeof path)
        return respond_text(conn, MHD_HTTP_NOT_FOUND, "Not Found\n");
    /* Non-blocking: a FIFO put there must not stop the loop; a symbolic link is not
     * followed, and anything but a regular file is not served. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        else if (errno != ENOENT && errno != ENOTDIR)
            log_warn(NULL, "management UI: cannot open %s: %s", path, strerror(errno));
        return respond_text(conn, MHD_HTTP_NOT_FOUND, "Not Found\n");
    }
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    if (client_has(conn, etag)) {
        close(fd);
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (r == NULL)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        ok = MHD_queue_response(conn, MHD_HTTP_NOT_MODIFIED, r);
        MHD_destroy_response(r);
        return ok;
    }
    /* MHD owns fd from here (and closes it), and sends the file with sendfile(). */
    r = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
    if (r == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(rel));
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    add_common_headers(r);
    ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}
