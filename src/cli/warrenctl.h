/* warrenctl: the admin CLI, a client of the management HTTP API (src/mgmt/mgmt.h). Shared parts:
 * the connection settings, the HTTP client (warrenctl_http.c) and the output formats
 * (warrenctl_format.c). Commands live in warrenctl.c. */
#ifndef WARREN_SRC_CLI_WARRENCTL_H
#define WARREN_SRC_CLI_WARRENCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit statuses. */
enum {
    CTL_OK = 0,
    CTL_ERROR = 1, /* the broker is down, refused the request, or the object is missing */
    CTL_USAGE = 2, /* the command line is wrong */
};

enum ctl_format {
    CTL_FORMAT_TABLE, /* aligned columns with a header line */
    CTL_FORMAT_JSON,  /* the API's JSON, for scripts */
    CTL_FORMAT_TSV,   /* tab-separated, no header: what `rabbitmqctl -q` prints */
};

struct ctl {
    char host[256];
    int port;
    char user[256];
    char password[256];
    char vhost[256];
    enum ctl_format format;
    bool quiet; /* no "Listing queues ..." line */
    double timeout_s;
};

/* A reply: the HTTP status (0 when no reply came) and the body. */
struct ctl_reply {
    long status;
    char *body; /* NUL-terminated; free it */
    size_t len;
};

/* Sends method path (percent-encoding is the caller's: see ctl_path) with body (NULL: none)
 * and fills *out. Returns 0 when a reply came, whatever its status; -1 after printing why
 * none came ("cannot connect to the management API at http://host:port: Connection
 * refused"). */
int ctl_http(const struct ctl *c, const char *method, const char *path, const char *body,
             const char *const *headers, struct ctl_reply *out);
void ctl_reply_free(struct ctl_reply *r);

/* Appends one percent-encoded path segment ("/" becomes %2F, as vhost names need) to path
 * (size bytes). False if it does not fit. */
bool ctl_path_add(char *path, size_t size, const char *segment);

/* The reply's JSON body, or NULL (with a message printed) when it is not JSON. */
json_t *ctl_reply_json(const struct ctl_reply *r);

/* Prints why a request failed, from its status and the API's {"error", "reason"}:
 * what names the object ("queue 'q' in vhost '/'"). Returns CTL_ERROR. */
int ctl_report_error(const struct ctl *c, const struct ctl_reply *r, const char *what);

/* ---- Output ---------------------------------------------------------------------------- */

/* A column: the name shown and where its value is in an object (a dotted path, e.g.
 * "message_stats.publish_details.rate"). */
struct ctl_column {
    const char *name;
    const char *path;
};

/* Prints rows (a JSON array of objects) with the given columns in c's format. */
void ctl_print_rows(const struct ctl *c, const json_t *rows, const struct ctl_column *cols,
                    size_t ncols);
/* The value at a dotted path of obj, or NULL. */
const json_t *ctl_lookup(const json_t *obj, const char *path);
/* A value as text: strings as they are, numbers, true/false, other values as compact JSON,
 * null and missing values as "". Returns a string to free. */
char *ctl_value_text(const json_t *v);

#endif
