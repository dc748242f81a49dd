/* Fuzz target for the bound on users' regular expressions (src/base/regex.h): arbitrary bytes
 * as a POSIX extended pattern. Besides crashes and sanitizer reports it checks what the bound
 * promises: a refusal names the bound it passes, regex_compile_bounded() refuses exactly what
 * regex_check_cost() refuses, and what passes compiles within libFuzzer's memory and time
 * limits (an estimate below glibc's real cost shows up as an out-of-memory or a slow unit). */
#include "src/base/regex.h"

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

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256], why_compiling[256];
    regex_t re;
    char *ere;
    int rc;

    /* Patterns are C strings: the input up to its first NUL. */
    if ((ere = malloc(size + 1)) == NULL)
        return 0;
    memcpy(ere, data, size);
    ere[size] = '\0';
    memset(why, 'x', sizeof why);
    rc = regex_check_cost(ere, why, sizeof why);
    check(rc == 0 || rc == -1);
    if (rc == -1) {
        check(memchr(why, '\0', sizeof why) != NULL);
        check(starts_with(why, "pattern too complex: ") || starts_with(why, "pattern too long: ") ||
              strcmp(why, "back-references are not supported") == 0);
    }
    if (regex_compile_bounded(&re, ere, why_compiling, sizeof why_compiling) == 0) {
        check(rc == 0);
        /* Names are at most 255 bytes. */
        (void)regexec(&re, "amq.gen-JzTY20BRgKO-HjmUJj0wLg", 0, NULL, 0);
        (void)regexec(&re, "", 0, NULL, 0);
        regfree(&re);
    } else if (rc == -1) {
        check(strcmp(why, why_compiling) == 0);
    }
    free(ere);
    return 0;
}
