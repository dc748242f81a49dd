/* The management API: the node. A Warren broker is a one-node cluster, so /api/nodes lists
 * one node, this one, with the fields of RabbitMQ's node object that Warren has a figure for
 * (memory and disk against their alarms, file descriptors, sockets); the Erlang ones
 * (processes, run queue, applications) are left out. Administrators and monitoring users
 * only, as in RabbitMQ.
 *   GET /api/nodes        [node]
 *   GET /api/nodes/name   node, or 404 for another name */
#include "build_config.h"

#include "src/mgmt/mgmt_api.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "src/base/config.h"
#include "src/broker/server.h"
#include "src/mgmt/metrics.h"

static json_t *node_json(const struct mgmt_call *c)
{
    const struct server *s = c->m->srv;
    json_t *o = json_object();
    struct rlimit rl;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char pid[32];

    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    json_object_set_new(o, "name", json_string(c->m->ctx.node));
    json_object_set_new(o, "type", json_string("disc"));
    json_object_set_new(o, "running", json_true());
    json_object_set_new(o, "being_drained", json_false());
    json_object_set_new(o, "partitions", json_array());
    json_object_set_new(o, "os_pid", json_string(pid)); /* a string in RabbitMQ too */
    json_object_set_new(o, "rates_mode", json_string("basic"));
    json_object_set_new(o, "processors", json_integer(cpus > 0 ? cpus : 1));
    json_object_set_new(o, "mem_used", json_integer((json_int_t)s->memory_used));
    json_object_set_new(o, "mem_limit", json_integer((json_int_t)s->memory_limit));
    json_object_set_new(o, "mem_alarm", json_boolean(s->alarms & ALARM_MEMORY));
    json_object_set_new(o, "mem_calculation_strategy", json_string("rss"));
    if (s->disk_free != UINT64_MAX) /* not known before the first check */
        json_object_set_new(o, "disk_free", json_integer((json_int_t)s->disk_free));
    json_object_set_new(o, "disk_free_limit", json_integer((json_int_t)s->cfg->disk_free_limit));
    json_object_set_new(o, "disk_free_alarm", json_boolean(s->alarms & ALARM_DISK));
    json_object_set_new(o, "fd_used", json_integer((json_int_t)metrics_open_fds()));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        json_object_set_new(o, "fd_total", json_integer((json_int_t)rl.rlim_cur));
    json_object_set_new(o, "sockets_used", json_integer(s->conn_count));
    return o;
}

enum MHD_Result mgmt_api_nodes(struct mgmt_call *c)
{
    json_t *arr;

    if (!c->monitor)
        return mgmt_respond_error(c, MHD_HTTP_UNAUTHORIZED, "not_authorised", "Not monitor user");
    if (c->nseg == 2) {
        if (!wire_bytes_eq_cstr(c->seg[1], c->m->ctx.node))
            return mgmt_not_found(c);
        return mgmt_respond_json(c, MHD_HTTP_OK, node_json(c));
    }
    arr = json_array();
    json_array_append_new(arr, node_json(c));
    return mgmt_respond_json(c, MHD_HTTP_OK, arr);
}
