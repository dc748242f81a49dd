/* Recovery at start (recovery.c): the durable definitions and persistent messages of the
 * data directory brought back into the broker. */
#ifndef WARREN_SRC_BROKER_RECOVERY_H
#define WARREN_SRC_BROKER_RECOVERY_H

#include <stddef.h>

struct hmap;
struct persist;

/* Creates the durable exchanges, queues, bindings and policies again in the vhosts
 * (name -> struct vhost, created already from the user database) and gives the queues their
 * messages; then the store starts reporting durability (persist_start). Returns 0 (also with
 * p NULL: no data directory), or -1 with the reason in err. A definition that cannot be
 * created again is logged and skipped. */
int recovery_run(struct persist *p, struct hmap *vhosts, char *err, size_t err_size);

#endif
