/* Configuration: minimal first version, completed in later commits. */
#include "src/config.h"

#include <stdio.h>
#include <string.h>

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
}

int config_parse(struct config *c, const char *name, const char *text, char *err, size_t err_size)
{
    (void)c;
    (void)text;
    snprintf(err, err_size, "%s: not implemented", name);
    return -1;
}

int config_load(struct config *c, const char *path, char *err, size_t err_size)
{
    return config_parse(c, path, "", err, err_size);
}

bool config_is_loopback_user(const struct config *c, const char *user)
{
    (void)c;
    (void)user;
    return false;
}
