/* The coordinator (src/cluster/coord.c) against a real etcd member: the secret, node
 * registration, election and its epochs, fenced isr and transfer writes, observing the
 * leader (its absence included), revoking another node's lease, and the gated renewal.
 * Every test uses its own cluster name, so they share one etcd member. */
#define _GNU_SOURCE
#include "src/cluster/coord.h"

#include <check.h>
#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/log.h"
#include "src/base/util.h"
#include "src/cluster/etcd.h"
#include "tests/unit/etcd_fixture.h"

static struct etcd_cluster single;
static struct ev_loop *loop;

/* ---- A node as the tests see it ------------------------------------------------------------- */

#define MAX_SEEN 16

struct node {
    const char *id;
    struct coord *c;
    bool beat; /* heartbeat from the loop (as warrend's ev_prepare will) */
    bool ready, lost, elected, deposed;
    int64_t lease, epoch, deposed_epoch;
    double ready_at, lost_at;
    char lost_reason[200];
    /* on_leader */
    size_t n_leaders;
    bool leaders_got[MAX_SEEN + 1];
    char leader_id[MAX_SEEN][32]; /* "" = no leader */
    int64_t leader_epoch[MAX_SEEN], leader_lease[MAX_SEEN];
    /* on_isr */
    size_t n_isrs;
    bool isrs_got[MAX_SEEN + 1];
    int64_t isr_epoch[MAX_SEEN];
    char isr_members[MAX_SEEN][64];
    /* on_transfer */
    size_t n_transfers;
    bool transfers_got[MAX_SEEN + 1];
    char transfer_target[MAX_SEEN][32];
};

static struct node *nodes[8];
static size_t n_nodes;
static ev_prepare beat_watcher;

static void on_prepare(struct ev_loop *l, ev_prepare *w, int revents)
{
    size_t i;

    (void)l;
    (void)w;
    (void)revents;
    for (i = 0; i < n_nodes; i++)
        if (nodes[i]->beat && nodes[i]->c != NULL)
            coord_heartbeat(nodes[i]->c);
}

static void on_ready(void *ctx, int64_t lease)
{
    struct node *n = ctx;

    n->ready = true;
    n->ready_at = mono_s();
    n->lease = lease;
}

static void on_lease_lost(void *ctx, const char *reason)
{
    struct node *n = ctx;

    n->lost = true;
    n->lost_at = mono_s();
    snprintf(n->lost_reason, sizeof(n->lost_reason), "%s", reason);
}

static void on_elected(void *ctx, int64_t epoch)
{
    struct node *n = ctx;

    n->elected = true;
    n->epoch = epoch;
}

static void on_deposed(void *ctx, int64_t epoch)
{
    struct node *n = ctx;

    n->deposed = true;
    n->deposed_epoch = epoch;
}

static void on_leader(void *ctx, const struct coord_leader *l)
{
    struct node *n = ctx;
    size_t i = n->n_leaders;

    if (i == MAX_SEEN)
        return;
    snprintf(n->leader_id[i], 32, "%s", l != NULL && l->node_id != NULL ? l->node_id : "");
    n->leader_epoch[i] = l != NULL ? l->epoch : 0;
    n->leader_lease[i] = l != NULL ? l->lease_id : 0;
    n->n_leaders++;
    n->leaders_got[n->n_leaders] = true;
}

static void on_isr(void *ctx, const struct coord_isr *isr)
{
    struct node *n = ctx;
    size_t i = n->n_isrs, k;

    if (i == MAX_SEEN)
        return;
    n->isr_epoch[i] = isr->epoch;
    n->isr_members[i][0] = '\0';
    for (k = 0; k < isr->n_members; k++) {
        strncat(n->isr_members[i], k ? "," : "", 63 - strlen(n->isr_members[i]));
        strncat(n->isr_members[i], isr->members[k], 63 - strlen(n->isr_members[i]));
    }
    n->n_isrs++;
    n->isrs_got[n->n_isrs] = true;
}

static void on_transfer(void *ctx, int64_t epoch, const char *target)
{
    struct node *n = ctx;
    size_t i = n->n_transfers;

    (void)epoch;
    if (i == MAX_SEEN)
        return;
    snprintf(n->transfer_target[i], 32, "%s", target ? target : "");
    n->n_transfers++;
    n->transfers_got[n->n_transfers] = true;
}

static const struct coord_callbacks callbacks = {
    .on_ready = on_ready,
    .on_lease_lost = on_lease_lost,
    .on_elected = on_elected,
    .on_deposed = on_deposed,
    .on_leader = on_leader,
    .on_isr = on_isr,
    .on_transfer = on_transfer,
};

/* Starts node id of cluster name and waits until it is registered. */
static void node_start(struct node *n, const char *cluster, const char *id, unsigned ttl_s,
                       unsigned stall_ms)
{
    char info[128], err[256];
    struct coord_options o = {.endpoints = single.endpoints,
                              .cluster_name = cluster,
                              .node_id = id,
                              .node_info = info,
                              .lease_ttl_s = ttl_s,
                              .stall_timeout_ms = stall_ms};

    memset(n, 0, sizeof(*n));
    n->id = id;
    n->beat = true;
    snprintf(info, sizeof(info), "{\"amqp\": \"%s.example:5672\"}", id);
    n->c = coord_start(loop, &o, &callbacks, n, err, sizeof(err));
    ck_assert_msg(n->c != NULL, "coord_start: %s", err);
    nodes[n_nodes++] = n;
    ck_assert_msg(run_until(loop, &n->ready, 5), "node %s not ready", id);
    ck_assert_int_ne(n->lease, 0);
    ck_assert_int_eq(coord_lease_id(n->c), n->lease);
}

static void node_stop(struct node *n, bool revoke)
{
    coord_stop(n->c, revoke);
    n->c = NULL;
}

/* Per-request results. */
struct done {
    bool done;
    int status;
    int64_t epoch, mod_revision;
    char text[256];
    size_t n;
};

static void on_done(void *arg, int status)
{
    struct done *d = arg;

    d->done = true;
    d->status = status;
}

static void on_secret(void *arg, int status, const char *secret)
{
    struct done *d = arg;

    d->done = true;
    d->status = status;
    snprintf(d->text, sizeof(d->text), "%s", secret ? secret : "");
}

static void on_isr_result(void *arg, int status, const struct coord_isr *isr)
{
    struct done *d = arg;
    size_t i;

    d->done = true;
    d->status = status;
    d->epoch = isr->epoch;
    d->mod_revision = isr->mod_revision;
    d->n = isr->n_members;
    d->text[0] = '\0';
    for (i = 0; i < isr->n_members; i++) {
        strncat(d->text, i ? "," : "", sizeof(d->text) - 1 - strlen(d->text));
        strncat(d->text, isr->members[i], sizeof(d->text) - 1 - strlen(d->text));
    }
}

static void on_nodes(void *arg, int status, const struct coord_node *list, size_t n)
{
    struct done *d = arg;
    size_t i;

    d->done = true;
    d->status = status;
    d->n = n;
    d->text[0] = '\0';
    for (i = 0; i < n; i++) {
        char one[128];

        snprintf(one, sizeof(one), "%s%s=%s", i ? " " : "", list[i].id, list[i].info);
        strncat(d->text, one, sizeof(d->text) - 1 - strlen(d->text));
        ck_assert_int_ne(list[i].lease_id, 0);
    }
}

static void wait_done(struct done *d)
{
    ck_assert_msg(run_until(loop, &d->done, 5), "no result within 5 s");
}

static int isr_write(struct node *n, int64_t epoch, const char *a, const char *b)
{
    const char *members[2] = {a, b};
    struct done d = {0};

    coord_isr_write(n->c, epoch, members, b ? 2 : 1, on_isr_result, &d);
    wait_done(&d);
    return d.status;
}

/* ---- Fixtures -------------------------------------------------------------------------------- */

static void single_up(void)
{
    log_set_level(LOG_LEVEL_NONE);
    etcd_cluster_start(&single, 1);
}

static void single_down(void)
{
    etcd_cluster_stop(&single);
}

static void loop_up(void)
{
    log_set_level(LOG_LEVEL_NONE);
    loop = ev_loop_new(EVFLAG_AUTO);
    ev_prepare_init(&beat_watcher, on_prepare);
    ev_prepare_start(loop, &beat_watcher);
    n_nodes = 0;
}

static void loop_down(void)
{
    size_t i;

    for (i = 0; i < n_nodes; i++)
        if (nodes[i]->c != NULL)
            node_stop(nodes[i], true);
    ev_prepare_stop(loop, &beat_watcher);
    ev_loop_destroy(loop);
}

/* ---- Tests -------------------------------------------------------------------------------------
 */

START_TEST(secret_is_created_once_and_shared)
{
    static struct node a, b;
    struct done sa = {0}, sb = {0};

    node_start(&a, "secret", "a", 3, 5000);
    node_start(&b, "secret", "b", 3, 5000);
    coord_get_secret(a.c, on_secret, &sa);
    coord_get_secret(b.c, on_secret, &sb);
    wait_done(&sa);
    wait_done(&sb);
    ck_assert_int_eq(sa.status, COORD_OK);
    ck_assert_int_eq(sb.status, COORD_OK);
    ck_assert_uint_eq(strlen(sa.text), 64);
    ck_assert_uint_eq(strspn(sa.text, "0123456789abcdef"), 64);
    ck_assert_str_eq(sa.text, sb.text);
}
END_TEST

START_TEST(nodes_register_while_alive)
{
    static struct node a, b;
    struct done l1 = {0}, l2 = {0};

    node_start(&a, "reg", "a", 3, 5000);
    node_start(&b, "reg", "b", 3, 5000);
    coord_list_nodes(a.c, on_nodes, &l1);
    wait_done(&l1);
    ck_assert_int_eq(l1.status, COORD_OK);
    ck_assert_str_eq(l1.text, "a={\"amqp\":\"a.example:5672\",\"id\":\"a\"} "
                              "b={\"amqp\":\"b.example:5672\",\"id\":\"b\"}");
    /* A stop that revokes the lease takes the node key with it at once. */
    node_stop(&b, true);
    coord_list_nodes(a.c, on_nodes, &l2);
    wait_done(&l2);
    ck_assert_uint_eq(l2.n, 1);
}
END_TEST

START_TEST(election_passes_on_resign_and_revoke_with_growing_epochs)
{
    static struct node a, b, obs;
    struct done resign = {0}, revoke = {0};
    int64_t e1, e2, e3;

    node_start(&obs, "elect", "obs", 3, 5000);
    coord_observe(obs.c);
    ck_assert(run_until(loop, &obs.leaders_got[1], 3));
    ck_assert_str_eq(obs.leader_id[0], ""); /* nobody leads yet: said so */

    node_start(&a, "elect", "a", 3, 5000);
    node_start(&b, "elect", "b", 3, 5000);
    coord_campaign(a.c);
    ck_assert(run_until(loop, &a.elected, 3));
    e1 = a.epoch;
    coord_campaign(b.c);
    run_for(loop, 0.3);
    ck_assert(!b.elected);
    ck_assert(run_until(loop, &obs.leaders_got[2], 3));
    ck_assert_str_eq(obs.leader_id[1], "a");
    ck_assert_int_eq(obs.leader_epoch[1], e1);
    ck_assert_int_eq(obs.leader_lease[1], a.lease);

    /* a resigns: b, waiting, wins with a later epoch. */
    coord_resign(a.c, on_done, &resign);
    wait_done(&resign);
    ck_assert_int_eq(resign.status, COORD_OK);
    ck_assert(run_until(loop, &b.elected, 3));
    e2 = b.epoch;
    ck_assert_int_gt(e2, e1);
    ck_assert(!a.deposed);
    ck_assert(run_until(loop, &obs.leaders_got[3], 3));
    ck_assert_str_eq(obs.leader_id[2], "b");
    ck_assert_int_eq(obs.leader_epoch[2], e2);

    /* The crash fast-path: a revokes b's lease (seen in on_leader): b is gone at once,
     * a wins again with a later epoch, b hears that its lease is lost. */
    a.elected = false;
    coord_campaign(a.c);
    run_for(loop, 0.2);
    ck_assert(!a.elected);
    coord_revoke_lease(a.c, obs.leader_lease[2], on_done, &revoke);
    wait_done(&revoke);
    ck_assert_int_eq(revoke.status, COORD_OK);
    ck_assert(run_until(loop, &a.elected, 3));
    e3 = a.epoch;
    ck_assert_int_gt(e3, e2);
    ck_assert(run_until(loop, &b.lost, 3));
    ck_assert(run_until(loop, &obs.leaders_got[4], 3));
    ck_assert_str_eq(obs.leader_id[3], "a");
    ck_assert_int_eq(obs.leader_epoch[3], e3);

    /* a leaves: nobody leads, and the observer is told. */
    node_stop(&a, true);
    ck_assert(run_until(loop, &obs.leaders_got[5], 3));
    ck_assert_str_eq(obs.leader_id[4], "");
}
END_TEST

START_TEST(isr_write_is_fenced_by_the_epoch)
{
    static struct node a, b, obs;
    struct done read = {0}, resign = {0};
    int64_t e1, e2;

    node_start(&a, "isr", "a", 3, 5000);
    node_start(&b, "isr", "b", 3, 5000);
    node_start(&obs, "isr", "obs", 3, 5000);
    coord_watch_isr(obs.c);
    ck_assert(run_until(loop, &obs.isrs_got[1], 3));
    ck_assert_int_eq(obs.isr_epoch[0], 0); /* no isr yet */

    /* Not a leader at all: fenced. */
    ck_assert_int_eq(isr_write(&a, 1, "a", NULL), COORD_FENCED);

    coord_campaign(a.c);
    ck_assert(run_until(loop, &a.elected, 3));
    e1 = a.epoch;
    ck_assert_int_eq(isr_write(&a, e1, "b", "a"), COORD_OK);
    coord_isr_read(b.c, on_isr_result, &read);
    wait_done(&read);
    ck_assert_int_eq(read.status, COORD_OK);
    ck_assert_int_eq(read.epoch, e1);
    ck_assert_str_eq(read.text, "a,b"); /* sorted */
    ck_assert_int_gt(read.mod_revision, 0);
    ck_assert(run_until(loop, &obs.isrs_got[2], 3));
    ck_assert_int_eq(obs.isr_epoch[1], e1);
    ck_assert_str_eq(obs.isr_members[1], "a,b");

    /* a loses leadership to b: its epoch no longer opens the fence. */
    coord_campaign(b.c);
    coord_resign(a.c, on_done, &resign);
    wait_done(&resign);
    ck_assert(run_until(loop, &b.elected, 3));
    e2 = b.epoch;
    ck_assert_int_eq(isr_write(&a, e1, "a", NULL), COORD_FENCED);
    ck_assert_int_eq(isr_write(&b, e1, "b", NULL), COORD_FENCED); /* b, old epoch */
    ck_assert_int_eq(isr_write(&b, e2, "b", NULL), COORD_OK);
    ck_assert(run_until(loop, &obs.isrs_got[3], 3));
    ck_assert_int_eq(obs.isr_epoch[2], e2);
    ck_assert_str_eq(obs.isr_members[2], "b");
    run_for(loop, 0.2);
    ck_assert_uint_eq(obs.n_isrs, 3); /* the fenced writes changed nothing */
}
END_TEST

START_TEST(transfer_write_is_fenced_and_watched)
{
    static struct node a, b;
    struct done w1 = {0}, w2 = {0}, w3 = {0};

    node_start(&a, "transfer", "a", 3, 5000);
    node_start(&b, "transfer", "b", 3, 5000);
    coord_watch_transfer(b.c);
    ck_assert(run_until(loop, &b.transfers_got[1], 3));
    ck_assert_str_eq(b.transfer_target[0], "");
    coord_campaign(a.c);
    ck_assert(run_until(loop, &a.elected, 3));
    coord_transfer_write(b.c, a.epoch, "b", on_done, &w1);
    wait_done(&w1);
    ck_assert_int_eq(w1.status, COORD_FENCED); /* b does not lead epoch a.epoch */
    coord_transfer_write(a.c, a.epoch, "b", on_done, &w2);
    wait_done(&w2);
    ck_assert_int_eq(w2.status, COORD_OK);
    ck_assert(run_until(loop, &b.transfers_got[2], 3));
    ck_assert_str_eq(b.transfer_target[1], "b");
    coord_transfer_write(a.c, a.epoch, NULL, on_done, &w3);
    wait_done(&w3);
    ck_assert_int_eq(w3.status, COORD_OK);
    ck_assert(run_until(loop, &b.transfers_got[3], 3));
    ck_assert_str_eq(b.transfer_target[2], "");
}
END_TEST

static void on_deleted(const struct etcd_response *r, void *arg)
{
    (void)r;
    *(bool *)arg = true;
}

START_TEST(leader_key_deleted_by_someone_else_deposes)
{
    static struct node a;
    struct etcd_options eo = {.endpoints = single.endpoints};
    struct etcd_client *ec;
    char err[200], key[128];
    bool deleted = false;

    node_start(&a, "depose", "a", 3, 5000);
    coord_campaign(a.c);
    ck_assert(run_until(loop, &a.elected, 3));
    ec = etcd_new(loop, &eo, err, sizeof(err));
    ck_assert_ptr_nonnull(ec);
    snprintf(key, sizeof(key), "/warren/depose/leader/%" PRIx64, (uint64_t)a.lease);
    etcd_delete(ec, key, strlen(key), NULL, 0, false, on_deleted, &deleted);
    ck_assert(run_until(loop, &deleted, 3));
    ck_assert(run_until(loop, &a.deposed, 3));
    ck_assert_int_eq(a.deposed_epoch, a.epoch);
    ck_assert(!a.lost);
    ck_assert_int_eq(isr_write(&a, a.epoch, "a", NULL), COORD_FENCED);
    etcd_free(ec);
}
END_TEST

static void on_ttl(const struct etcd_response *r, void *arg)
{
    int64_t *ttl = arg;

    *ttl = r->err == ETCD_OK ? r->ttl : -100;
}

START_TEST(renewal_stops_without_heartbeat)
{
    static struct node stalled, alive;
    struct etcd_options eo = {.endpoints = single.endpoints};
    struct etcd_client *ec;
    char err[200];
    uint64_t deadline1, deadline2;
    double stop_beat;
    int64_t ttl = -200;

    node_start(&stalled, "gate", "stalled", 2, 300);
    node_start(&alive, "gate", "alive", 2, 300);
    run_for(loop, 1.0);
    /* Renewals move the deadline forward while the loop beats. */
    deadline1 = coord_lease_deadline(stalled.c);
    ck_assert_uint_gt(deadline1, now_ms());
    run_for(loop, 1.0);
    deadline2 = coord_lease_deadline(stalled.c);
    ck_assert_uint_gt(deadline2, deadline1);

    stalled.beat = false;
    stop_beat = mono_s();
    ck_assert_msg(run_until(loop, &stalled.lost, 2 + 0.3 + 1.5),
                  "lease still held %.1f s after the heartbeats stopped", mono_s() - stop_beat);
    fprintf(stderr,
            "without heartbeats (stall 300 ms, TTL 2 s) the lease was lost %.2f s later: %s\n",
            stalled.lost_at - stop_beat, stalled.lost_reason);
    ck_assert_uint_le(coord_lease_deadline(stalled.c), now_ms());
    ck_assert(!alive.lost);

    /* etcd agrees, within its 500 ms expiry tick. */
    ec = etcd_new(loop, &eo, err, sizeof(err));
    ck_assert_ptr_nonnull(ec);
    run_for(loop, 0.6);
    etcd_lease_timetolive(ec, stalled.lease, on_ttl, &ttl);
    run_for(loop, 0.3);
    ck_assert_int_eq(ttl, -1);
    ttl = -200;
    etcd_lease_timetolive(ec, alive.lease, on_ttl, &ttl);
    run_for(loop, 0.3);
    ck_assert_int_gt(ttl, 0);
    etcd_free(ec);
}
END_TEST

START_TEST(stop_drops_requests_in_flight)
{
    static struct node a;
    struct done isr = {0}, list = {0}, secret = {0};

    node_start(&a, "stop", "a", 3, 5000);
    coord_campaign(a.c);
    coord_isr_read(a.c, on_isr_result, &isr);
    coord_list_nodes(a.c, on_nodes, &list);
    coord_get_secret(a.c, on_secret, &secret);
    node_stop(&a, false);
    run_for(loop, 0.3);
    /* No callback after coord_stop returned (and nothing leaks: ASan builds check). */
    ck_assert(!isr.done && !list.done && !secret.done && !a.elected);
}
END_TEST

/* A callback may stop its own coordinator. */
static void stop_on_elected(void *ctx, int64_t epoch)
{
    struct node *n = ctx;

    on_elected(ctx, epoch);
    coord_stop(n->c, true);
    n->c = NULL;
}

START_TEST(callback_may_stop_its_coordinator)
{
    static struct node a;
    struct coord_callbacks cb = callbacks;
    struct coord_options o = {
        .endpoints = single.endpoints, .cluster_name = "cbstop", .node_id = "a"};
    char err[256];

    memset(&a, 0, sizeof(a));
    cb.on_elected = stop_on_elected;
    a.c = coord_start(loop, &o, &cb, &a, err, sizeof(err));
    ck_assert_ptr_nonnull(a.c);
    a.beat = true;
    nodes[n_nodes++] = &a;
    coord_campaign(a.c);
    ck_assert(run_until(loop, &a.elected, 5));
    ck_assert_ptr_null(a.c);
    run_for(loop, 0.2);
}
END_TEST

START_TEST(bad_options_are_refused)
{
    struct coord_options o = {.endpoints = single.endpoints, .node_id = "a b"};
    char err[256];

    ck_assert_ptr_null(coord_start(loop, &o, &callbacks, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "node id"));
    o.node_id = "a";
    o.lease_ttl_s = 1;
    ck_assert_ptr_null(coord_start(loop, &o, &callbacks, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "at least 2"));
    o.lease_ttl_s = 0;
    o.node_info = "[1]";
    ck_assert_ptr_null(coord_start(loop, &o, &callbacks, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "JSON object"));
    o.node_info = NULL;
    o.endpoints = "127.0.0.1:2379";
    ck_assert_ptr_null(coord_start(loop, &o, &callbacks, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "http://"));
}
END_TEST

static Suite *coord_suite(void)
{
    Suite *s = suite_create("coord");
    TCase *tc = tcase_create("single member");

    tcase_add_unchecked_fixture(tc, single_up, single_down);
    tcase_add_checked_fixture(tc, loop_up, loop_down);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, secret_is_created_once_and_shared);
    tcase_add_test(tc, nodes_register_while_alive);
    tcase_add_test(tc, election_passes_on_resign_and_revoke_with_growing_epochs);
    tcase_add_test(tc, isr_write_is_fenced_by_the_epoch);
    tcase_add_test(tc, transfer_write_is_fenced_and_watched);
    tcase_add_test(tc, leader_key_deleted_by_someone_else_deposes);
    tcase_add_test(tc, renewal_stops_without_heartbeat);
    tcase_add_test(tc, stop_drops_requests_in_flight);
    tcase_add_test(tc, callback_may_stop_its_coordinator);
    tcase_add_test(tc, bad_options_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(coord_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
