/* Fuzz target for the paths the management UI serves (src/mgmt/ui.h): arbitrary bytes as the
 * raw path of a request. Besides crashes and sanitizer reports it checks what the rules
 * promise of every path let through: a NUL-terminated relative name that fits the buffer,
 * made of letters, digits, '-', '_', '.' and '/', with no empty segment and no segment that
 * begins with '.' (so no "." or ".."), whatever escapes the input held. */
#include "src/mgmt/ui.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static bool is_name_byte(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[300];
    char *url;
    size_t len;

    /* MHD hands over the path as a C string: the input up to its first NUL. */
    if ((url = malloc(size + 1)) == NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    memset(out, 'x', sizeof out);
    if (mgmt_ui_file_path(url, out, sizeof out) == 0) {
        check(memchr(out, '\0', sizeof out) != NULL);
        len = strlen(out);
        check(len > 0 && out[0] != '/' && out[len - 1] != '/');
        for (size_t i = 0; i < len; i++) {
            bool segment_start = i == 0 || out[i - 1] == '/';
            check(out[i] == '/' ? !segment_start : is_name_byte(out[i]));
            check(!(segment_start && out[i] == '.'));
        }
    }
    free(url);
    return 0;
}
