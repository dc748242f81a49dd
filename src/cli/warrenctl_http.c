/* warrenctl's HTTP client: one libcurl request per call, errors in words, and the two kinds
 * of request the commands make (an answer in JSON, an answer that is only a status). */
#include "src/cli/warrenctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A reply larger than this is not something the API sends (a definitions file of a big
 * broker is tens of megabytes). */
#define CTL_REPLY_MAX (512u * 1024 * 1024)

struct sink {
    struct ctl_reply *r;
    size_t cap;
    bool too_large;
};

static size_t on_data(char *data, size_t size, size_t n, void *userp)
{
    struct sink *s = userp;
    size_t len = size * n;
    struct ctl_reply *r = s->r;

    if (r->len + len + 1 > CTL_REPLY_MAX) {
        s->too_large = true;
        return 0; /* makes libcurl stop with an error */
    }
    if (r->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        char *body;
        while (cap < r->len + len + 1)
            cap *= 2;
        if ((body = realloc(r->body, cap)) == NULL)
            return 0;
        r->body = body;
        s->cap = cap;
    }
    memcpy(r->body + r->len, data, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

void ctl_reply_free(struct ctl_reply *r)
{
    free(r->body);
    *r = (struct ctl_reply){0};
}

bool ctl_path_add(char *path, size_t size, const char *segment)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);

    if (n + 1 >= size)
        return false;
    path[n++] = '/';
    for (const unsigned char *p = (const unsigned char *)segment; *p != '\0'; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (n + (plain ? 1 : 3) >= size)
            return false;
        if (plain) {
            path[n++] = (char)*p;
        } else {
            path[n++] = '%';
            path[n++] = hex[*p >> 4];
            path[n++] = hex[*p & 15];
        }
    }
    path[n] = '\0';
    return true;
}

/* "[::1]" for an IPv6 address in a URL, the host as it is otherwise. */
static void url_host(const char *host, char *out, size_t size)
{
    if (strchr(host, ':') != NULL && host[0] != '[')
        snprintf(out, size, "[%s]", host);
    else
        snprintf(out, size, "%s", host);
}

int ctl_http(const struct ctl *c, const char *method, const char *path, const char *body,
             const char *const *headers, struct ctl_reply *out)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char url[4096], base[512], host[300], errbuf[CURL_ERROR_SIZE] = "";
    struct sink sink = {.r = out};
    CURLcode rc;
    int result = -1;

    *out = (struct ctl_reply){0};
    url_host(c->host, host, sizeof host);
    snprintf(base, sizeof base, "http://%s:%d", host, c->port);
    snprintf(url, sizeof url, "%s%s", base, path);
    if (curl == NULL) {
        fprintf(stderr, "warrenctl: cannot initialise libcurl\n");
        return -1;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, c->user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, c->password);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(c->timeout_s * 1000));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    /* The API's answers are small JSON; proxies set for the web are not for the broker. */
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hdrs = curl_slist_append(hdrs, headers[i]);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);

    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
        if (out->body == NULL)
            out->body = calloc(1, 1);
        result = out->body != NULL ? 0 : -1;
    } else if (sink.too_large) {
        fprintf(stderr, "warrenctl: the reply of %s is larger than %u bytes\n", base,
                CTL_REPLY_MAX);
    } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
        long os_errno = 0;
        curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
        fprintf(stderr, "warrenctl: cannot connect to the management API at %s: %s\n", base,
                rc == CURLE_COULDNT_RESOLVE_HOST ? "unknown host"
                : os_errno != 0                  ? strerror((int)os_errno)
                                                 : curl_easy_strerror(rc));
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        fprintf(stderr, "warrenctl: the management API at %s did not answer within %.0f s\n", base,
                c->timeout_s);
    } else {
        fprintf(stderr, "warrenctl: request to the management API at %s failed: %s\n", base,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    if (result != 0)
        ctl_reply_free(out);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    return result;
}

json_t *ctl_reply_json(const struct ctl_reply *r)
{
    json_error_t err;
    json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY, &err);

    if (j == NULL)
        fprintf(stderr,
                "warrenctl: the management API answered %ld with something that is "
                "not JSON (%s)\n",
                r->status, err.text);
    return j;
}

int ctl_report_error(const struct ctl *c, const struct ctl_reply *r, const char *what)
{
    json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    const json_t *reason = json_is_object(j) ? json_object_get(j, "reason") : NULL;
    char *reason_text = reason != NULL ? ctl_value_text(reason) : NULL;

    switch (r->status) {
    case 401:
        if (reason_text != NULL && strcmp(reason_text, "Access refused.") == 0)
            fprintf(stderr, "warrenctl: access refused to user '%s'%s%s\n", c->user,
                    what ? " for " : "", what ? what : "");
        else if (reason_text != NULL && strcmp(reason_text, "Not administrator user") == 0)
            fprintf(stderr,
                    "warrenctl: access refused to user '%s': only administrators may do "
                    "this\n",
                    c->user);
        else if (reason_text != NULL && strcmp(reason_text, "Not management user") == 0)
            fprintf(stderr,
                    "warrenctl: user '%s' may not use the management API (it needs the "
                    "tag administrator, monitoring, policymaker or management)\n",
                    c->user);
        else if (reason_text != NULL &&
                 strcmp(reason_text, "User not authorised to access virtual host") == 0)
            fprintf(stderr,
                    "warrenctl: access refused to user '%s': no permissions in vhost "
                    "'%s'\n",
                    c->user, c->vhost);
        else
            fprintf(stderr,
                    "warrenctl: the management API refused the credentials of user '%s'%s%s\n",
                    c->user, reason_text ? ": " : "", reason_text ? reason_text : "");
        break;
    case 403:
        fprintf(stderr, "warrenctl: user '%s' is not allowed to do this%s%s\n", c->user,
                reason_text ? ": " : "", reason_text ? reason_text : "");
        break;
    case 404:
        if (what != NULL)
            fprintf(stderr, "warrenctl: %s not found\n", what);
        else
            fprintf(stderr, "warrenctl: not found%s%s\n", reason_text ? ": " : "",
                    reason_text ? reason_text : "");
        break;
    case 400:
        if (reason_text != NULL && strcmp(reason_text, "vhost_or_user_not_found") == 0 &&
            what != NULL) {
            fprintf(stderr, "warrenctl: %s not found\n", what);
            break;
        }
        /* The broker's reasons name the object themselves. */
        fprintf(stderr, "warrenctl: the broker refused: %s\n", reason_text ? reason_text : r->body);
        break;
    default:
        fprintf(stderr, "warrenctl: the management API answered HTTP %ld%s%s\n", r->status,
                reason_text ? ": " : "", reason_text ? reason_text : "");
    }
    free(reason_text);
    json_decref(j);
    return CTL_ERROR;
}

/* ---- Requests -------------------------------------------------------------------------- */

/* A request (body: JSON or NULL) whose answer is JSON: that JSON, or NULL after printing
 * why. what names the object for a 404. */
json_t *ctl_request_json(const struct ctl *c, const char *method, const char *path,
                         const json_t *body, const char *what, int *rc)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct ctl_reply r;
    json_t *j;
    int failed;

    *rc = CTL_ERROR;
    failed = ctl_http(c, method, path, text, NULL, &r);
    free(text);
    if (failed)
        return NULL;
    if (r.status != 200) {
        ctl_report_error(c, &r, what);
        ctl_reply_free(&r);
        return NULL;
    }
    j = ctl_reply_json(&r);
    ctl_reply_free(&r);
    if (j != NULL)
        *rc = CTL_OK;
    return j;
}

json_t *ctl_get_json(const struct ctl *c, const char *path, const char *what, int *rc)
{
    return ctl_request_json(c, "GET", path, NULL, what, rc);
}

/* A request whose answer is a status (201/204 success). */
int ctl_send_request(const struct ctl *c, const char *method, const char *path, const json_t *body,
                     const char *const *headers, const char *what, long *status)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct ctl_reply r;
    int rc;

    if (ctl_http(c, method, path, text, headers, &r) != 0) {
        free(text);
        return CTL_ERROR;
    }
    free(text);
    if (status != NULL)
        *status = r.status;
    rc = r.status >= 200 && r.status < 300 ? CTL_OK : ctl_report_error(c, &r, what);
    ctl_reply_free(&r);
    return rc;
}
