/* The management API's view of the cluster (src/cluster/cluster.h): Warren's own endpoints,
 * RabbitMQ has no equivalent of a leader.
 *
 *   GET /api/health/checks/leader   200 {"status":"ok"} on the node that serves clients (the
 *                                   leader, or a single node); 503 {"status":"failed",
 *                                   "reason":...} on a follower: for load balancers and
 *                                   probes that must reach the leader
 *   GET /api/cluster/status         the cluster as this node sees it (roles, epoch, in-sync
 *                                   set, followers' lag on the leader); {"enabled":false} on
 *                                   a single node (warrenctl cluster_status prints it)
 *   POST /api/cluster/transfer-leadership
 *                                   administrators, on the leader: a planned switchover
 *                                   (cluster_transfer_leadership); 204, or 409 with the
 *                                   reason (a follower, or nobody in sync to take over)
 *
 * It also gives /api/nodes (mgmt_node.c) the cluster's members: the leader lists every
 * member it knows, each named warren@<cluster.node_id> as mgmt.c names this node. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/util.h"
#include "src/broker/server.h"
#include "src/cluster/cluster.h"
#include "src/mgmt/mgmt_api.h"

enum MHD_Result mgmt_api_health_leader(struct mgmt_call *c)
{
    bool ok;
    json_t *j = cluster_leader_health_json(c->m->srv->cluster, &ok);

    return mgmt_respond_json(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, j);
}

enum MHD_Result mgmt_api_cluster_status(struct mgmt_call *c)
{
    const struct cluster *cl = c->m->srv->cluster;

    if (cl == NULL)
        return mgmt_respond_json(c, MHD_HTTP_OK, json_pack("{s:b}", "enabled", 0));
    return mgmt_respond_json(c, MHD_HTTP_OK, cluster_status_json(cl));
}

enum MHD_Result mgmt_api_cluster_transfer(struct mgmt_call *c)
{
    struct cluster *cl = c->m->srv->cluster;
    char err[200];

    if (!c->admin)
        return mgmt_access_refused(c);
    if (cl == NULL)
        return mgmt_respond_error(c, MHD_HTTP_CONFLICT, "bad_request",
                                  "this node is not in a cluster (cluster.enabled is false)");
    if (cluster_transfer_leadership(cl, err, sizeof err) != 0)
        return mgmt_respond_error(c, MHD_HTTP_CONFLICT, "bad_request", "%s", err);
    return mgmt_respond_empty(c, MHD_HTTP_NO_CONTENT);
}

static int by_name(const void *a, const void *b)
{
    const json_t *const *x = a, *const *y = b;

    return strcmp(json_string_value(json_object_get(*x, "name")),
                  json_string_value(json_object_get(*y, "name")));
}

/* A member this node knows only by the leader's view of it: the fields of RabbitMQ's node
 * object that are known (a node that is not connected is not "running" as far as the leader
 * can tell), and the cluster's own. lag is NULL when unknown (an in-sync member never seen). */
static json_t *member_json(const char *node_id, bool running, bool in_sync, const json_t *lag)
{
    char name[200];

    snprintf(name, sizeof name, "warren@%s", node_id);
    return json_pack("{s:s, s:s, s:b, s:s, s:b, s:O}", "name", name, "type", "disc", "running",
                     running, "cluster_role", "follower", "in_sync", in_sync, "lag_bytes",
                     lag != NULL ? lag : json_null());
}

bool mgmt_cluster_nodes(const struct server *srv, json_t *self, json_t *nodes)
{
    const struct cluster *cl = srv->cluster;
    json_t *st, *isr, *followers, *f, *id, **sorted;
    const char *me;
    size_t i, k, n;

    if (cl == NULL)
        return false;
    st = cluster_status_json(cl);
    isr = json_object_get(st, "isr");
    followers = json_object_get(st, "followers");
    me = cluster_node_id(cl);
    json_object_set_new(self, "cluster_role", json_string(cluster_role_name(cluster_role(cl))));
    json_object_set_new(self, "in_sync", json_false());
    json_array_foreach(isr, i, id)
    {
        if (strcmp(json_string_value(id), me) == 0)
            json_object_set_new(self, "in_sync", json_true());
    }
    json_object_set_new(self, "lag_bytes", json_integer(0));
    json_array_append(nodes, self);
    json_array_foreach(followers, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (name == NULL || strcmp(name, me) == 0)
            continue;
        json_array_append_new(nodes,
                              member_json(name, json_is_true(json_object_get(f, "connected")),
                                          json_is_true(json_object_get(f, "in_sync")),
                                          json_object_get(f, "lag_bytes")));
    }
    /* In-sync members the leader has not seen since it was elected still belong to the
     * cluster (they may lead next). */
    json_array_foreach(isr, i, id)
    {
        bool seen = strcmp(json_string_value(id), me) == 0;
        json_array_foreach(followers, k, f)
        {
            seen = seen || json_equal(json_object_get(f, "name"), id);
        }
        if (!seen)
            json_array_append_new(nodes, member_json(json_string_value(id), false, true, NULL));
    }
    json_decref(st);
    /* In name order, as RabbitMQ lists its nodes. */
    n = json_array_size(nodes);
    sorted = xcalloc(n > 0 ? n : 1, sizeof *sorted);
    for (i = 0; i < n; i++)
        sorted[i] = json_incref(json_array_get(nodes, i));
    qsort(sorted, n, sizeof *sorted, by_name);
    json_array_clear(nodes);
    for (i = 0; i < n; i++)
        json_array_append_new(nodes, sorted[i]);
    free(sorted);
    return true;
}
