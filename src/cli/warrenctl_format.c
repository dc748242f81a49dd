/* warrenctl's output: tables for people, JSON and tab-separated lines for scripts, and the
 * lines that tell people what was done. */
#include "src/cli/warrenctl.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const json_t *ctl_lookup(const json_t *obj, const char *path)
{
    char key[256];
    const char *dot;

    while (obj != NULL && (dot = strchr(path, '.')) != NULL) {
        size_t n = (size_t)(dot - path);
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_is_object(obj) ? json_object_get(obj, key) : NULL;
        path = dot + 1;
    }
    return json_is_object(obj) ? json_object_get(obj, path) : NULL;
}

char *ctl_value_text(const json_t *v)
{
    char buf[64];

    if (v == NULL || json_is_null(v))
        return strdup("");
    if (json_is_string(v))
        return strndup(json_string_value(v), json_string_length(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof buf, "%g", json_real_value(v));
        return strdup(buf);
    }
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "true" : "false");
    /* A list of words (a user's tags) reads best as "a,b". */
    if (json_is_array(v)) {
        size_t i, len = 0;
        json_t *item;
        bool words = true;
        char *out;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item) || strchr(json_string_value(item), ',') != NULL)
                words = false;
            else
                len += json_string_length(item) + 1;
        }
        if (words && (out = calloc(1, len + 1)) != NULL) {
            json_array_foreach(v, i, item)
            {
                if (i > 0)
                    strcat(out, ",");
                strcat(out, json_string_value(item));
            }
            return out;
        }
    }
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Display width of UTF-8 text: one per code point (names are mostly ASCII). */
static size_t text_width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    }
    return w;
}

/* A cell for a table or a line: no line breaks or tabs inside. */
static void flatten(char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
    }
}

void ctl_print_rows(const struct ctl *c, const json_t *rows, const struct ctl_column *cols,
                    size_t ncols)
{
    size_t nrows = json_array_size(rows);
    char **cells;
    size_t *width;

    if (c->format == CTL_FORMAT_JSON) {
        json_t *out = json_array();
        for (size_t r = 0; r < nrows; r++) {
            json_t *o = json_object();
            for (size_t k = 0; k < ncols; k++) {
                const json_t *v = ctl_lookup(json_array_get(rows, r), cols[k].path);
                json_object_set_new(o, cols[k].name, v ? json_deep_copy(v) : json_null());
            }
            json_array_append_new(out, o);
        }
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        putchar('\n');
        json_decref(out);
        return;
    }
    cells = calloc(nrows * ncols + 1, sizeof *cells);
    width = calloc(ncols + 1, sizeof *width);
    if (cells == NULL || width == NULL) {
        free(cells);
        free(width);
        fprintf(stderr, "warrenctl: out of memory\n");
        return;
    }
    for (size_t k = 0; k < ncols; k++)
        width[k] = text_width(cols[k].name);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t k = 0; k < ncols; k++) {
            char *t = ctl_value_text(ctl_lookup(json_array_get(rows, r), cols[k].path));
            size_t w;
            if (t == NULL)
                t = strdup("");
            flatten(t);
            cells[r * ncols + k] = t;
            w = text_width(t);
            if (w > width[k])
                width[k] = w;
        }
    }
    if (c->format == CTL_FORMAT_TABLE) {
        for (size_t k = 0; k < ncols; k++)
            printf("%s%-*s", k ? "  " : "", k + 1 < ncols ? (int)width[k] : 0, cols[k].name);
        putchar('\n');
    }
    for (size_t r = 0; r < nrows; r++) {
        for (size_t k = 0; k < ncols; k++) {
            const char *t = cells[r * ncols + k];
            if (c->format == CTL_FORMAT_TSV) {
                printf("%s%s", k ? "\t" : "", t);
            } else {
                /* printf pads by bytes; pad by display width for non-ASCII names. */
                printf("%s%s", k ? "  " : "", t);
                if (k + 1 < ncols)
                    printf("%*s", (int)(width[k] - text_width(t)), "");
            }
        }
        putchar('\n');
    }
    for (size_t i = 0; i < nrows * ncols; i++)
        free(cells[i]);
    free(cells);
    free(width);
}

void ctl_say(const struct ctl *c, const char *fmt, ...)
{
    va_list ap;

    if (c->quiet || c->format == CTL_FORMAT_JSON)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}
