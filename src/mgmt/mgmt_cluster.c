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
 *                                   reason (a follower, or nobody in sync to take over) */
#include <jansson.h>

#include "src/broker/server.h"
#include "src/cluster/cluster.h"
#include "src/mgmt/mgmt_api.h"

enum MHD_Result mgmt_api_health_leader(struct mgmt_call *c)
{
    const struct cluster *cl = c->m->srv->cluster;
    json_t *j = json_object();
    char reason[200];

    if (cl == NULL || cluster_role(cl) == CLUSTER_LEADER) {
        json_object_set_new(j, "status", json_string("ok"));
        return mgmt_respond_json(c, MHD_HTTP_OK, j);
    }
    snprintf(reason, sizeof reason, "node %s is not the leader (it is %s)", cluster_node_id(cl),
             cluster_role_name(cluster_role(cl)));
    json_object_set_new(j, "status", json_string("failed"));
    json_object_set_new(j, "reason", json_string(reason));
    return mgmt_respond_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, j);
}

enum MHD_Result mgmt_api_cluster_status(struct mgmt_call *c)
{
    const struct cluster *cl = c->m->srv->cluster;
    json_t *j;

    if (cl == NULL) {
        j = json_object();
        json_object_set_new(j, "enabled", json_false());
        return mgmt_respond_json(c, MHD_HTTP_OK, j);
    }
    j = cluster_status_json(cl);
    json_object_set_new(j, "enabled", json_true());
    return mgmt_respond_json(c, MHD_HTTP_OK, j);
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
