/* The etcd client (src/cluster/etcd.c) against real etcd members (tests/unit/etcd_fixture.c):
 * the gateway's gotchas (base64 keys, int64 as strings, omitted defaults, in-band errors,
 * the has-leader header), leases, watches across a killed member, the election API. */
#define _GNU_SOURCE
#include "src/cluster/etcd.h"

#include <check.h>
#include <curl/curl.h>
#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/base/log.h"
#include "tests/unit/etcd_fixture.h"

static struct etcd_cluster single;
static struct ev_loop *loop;

/* ---- Capturing answers ---------------------------------------------------------------------- */

#define MAX_KVS 16

struct res {
    bool done;
    double at;
    int err;
    char message[256];
    int http_status;
    int64_t revision, lease_id, ttl, granted_ttl, count, deleted;
    bool succeeded;
    size_t n_kvs;
    struct etcd_kv kvs[MAX_KVS];
    int64_t leader_rev, leader_lease;
    char leader_key[128];
};

static void copy_kv(struct etcd_kv *dst, const struct etcd_kv *src)
{
    *dst = *src;
    dst->key = malloc(src->key_len + 1);
    memcpy(dst->key, src->key, src->key_len + 1);
    dst->value = malloc(src->value_len + 1);
    memcpy(dst->value, src->value, src->value_len + 1);
}

static void on_res(const struct etcd_response *r, void *arg)
{
    struct res *out = arg;
    size_t i;

    out->done = true;
    out->at = mono_s();
    out->err = r->err;
    snprintf(out->message, sizeof(out->message), "%s", r->message ? r->message : "");
    out->http_status = r->http_status;
    out->revision = r->revision;
    out->lease_id = r->lease_id;
    out->ttl = r->ttl;
    out->granted_ttl = r->granted_ttl;
    out->count = r->count;
    out->deleted = r->deleted;
    out->succeeded = r->succeeded;
    out->n_kvs = r->n_kvs < MAX_KVS ? r->n_kvs : MAX_KVS;
    for (i = 0; i < out->n_kvs; i++)
        copy_kv(&out->kvs[i], &r->kvs[i]);
    out->leader_rev = r->leader.rev;
    out->leader_lease = r->leader.lease;
    snprintf(out->leader_key, sizeof(out->leader_key), "%.*s", (int)r->leader.key_len,
             r->leader.key ? (const char *)r->leader.key : "");
}

static void res_free(struct res *r)
{
    size_t i;

    for (i = 0; i < r->n_kvs; i++) {
        free(r->kvs[i].key);
        free(r->kvs[i].value);
    }
    memset(r, 0, sizeof(*r));
}

/* Waits for r, failing the test if it does not come within seconds. */
static void wait_res(struct res *r, double seconds)
{
    ck_assert_msg(run_until(loop, &r->done, seconds), "no answer within %.1f s", seconds);
}

static struct etcd_client *client(const char *endpoints, unsigned timeout_ms)
{
    struct etcd_options o = {.endpoints = endpoints, .request_timeout_ms = timeout_ms};
    char err[256];
    struct etcd_client *c = etcd_new(loop, &o, err, sizeof(err));

    ck_assert_msg(c != NULL, "etcd_new: %s", err);
    return c;
}

/* Watch events, in order. */
#define MAX_EVENTS 64

struct events {
    bool created, ended;
    int err;
    size_t n;
    enum etcd_event_type type[MAX_EVENTS];
    int64_t rev[MAX_EVENTS];
    char key[MAX_EVENTS][64];
    char value[MAX_EVENTS][64];
    bool has_prev[MAX_EVENTS];
    bool got[MAX_EVENTS + 1]; /* got[i]: at least i events */
};

static void on_events(const struct etcd_response *r, void *arg)
{
    struct events *e = arg;
    size_t i;

    if (r->err != ETCD_OK) {
        e->ended = true;
        e->err = r->err;
        return;
    }
    if (r->created)
        e->created = true;
    for (i = 0; i < r->n_events && e->n < MAX_EVENTS; i++) {
        e->type[e->n] = r->events[i].type;
        e->rev[e->n] = r->events[i].kv.mod_revision;
        snprintf(e->key[e->n], 64, "%s", (const char *)r->events[i].kv.key);
        snprintf(e->value[e->n], 64, "%s", (const char *)r->events[i].kv.value);
        e->has_prev[e->n] = r->events[i].has_prev_kv;
        e->n++;
        e->got[e->n] = true;
    }
}

/* The observe stream: one kv (the leader's key) per answer, recorded like events. */
static void on_observed(const struct etcd_response *r, void *arg)
{
    struct events *e = arg;

    if (r->err != ETCD_OK) {
        e->ended = true;
        e->err = r->err;
        return;
    }
    if (r->n_kvs == 1 && e->n < MAX_EVENTS) {
        e->rev[e->n] = r->kvs[0].create_revision;
        snprintf(e->key[e->n], 64, "%s", (const char *)r->kvs[0].key);
        snprintf(e->value[e->n], 64, "%s", (const char *)r->kvs[0].value);
        e->n++;
        e->got[e->n] = true;
    }
}

/* ---- Fixtures -------------------------------------------------------------------------------- */

static void single_up(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    etcd_cluster_start(&single, 1);
}

static void single_down(void)
{
    etcd_cluster_stop(&single);
}

static void loop_up(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    log_set_level(LOG_LEVEL_ERROR);
}

static void loop_down(void)
{
    ev_loop_destroy(loop);
}

/* ---- KV ----------------------------------------------------------------------------------------
 */

START_TEST(binary_keys_and_values_round_trip)
{
    struct etcd_client *c = client(single.endpoints, 1000);
    static const uint8_t key[] = {'b', 'i', 'n', '/', 0x00, 0xff, 0x80, '\n', '"', 'k'};
    static const uint8_t value[] = {0x00, 0x01, 0xfe, 0xff, '\\', '"', 0x00};
    uint8_t end[16];
    size_t end_len = etcd_prefix_end("bin/", 4, end);
    struct res put = {0}, get = {0}, pre = {0};

    etcd_put(c, key, sizeof(key), value, sizeof(value), 0, on_res, &put);
    wait_res(&put, 2);
    ck_assert_msg(put.err == ETCD_OK, "put: %s", put.message);
    ck_assert_int_gt(put.revision, 0);

    etcd_range(c, key, sizeof(key), NULL, 0, 0, 0, on_res, &get);
    wait_res(&get, 2);
    ck_assert_int_eq(get.err, ETCD_OK);
    ck_assert_uint_eq(get.n_kvs, 1);
    ck_assert_int_eq(get.count, 1);
    ck_assert_uint_eq(get.kvs[0].key_len, sizeof(key));
    ck_assert_mem_eq(get.kvs[0].key, key, sizeof(key));
    ck_assert_uint_eq(get.kvs[0].value_len, sizeof(value));
    ck_assert_mem_eq(get.kvs[0].value, value, sizeof(value));
    ck_assert_int_eq(get.kvs[0].create_revision, put.revision);
    ck_assert_int_eq(get.kvs[0].mod_revision, put.revision);
    ck_assert_int_eq(get.kvs[0].version, 1);

    /* The prefix range ("bin0" as range_end) finds it too. */
    ck_assert_uint_eq(end_len, 4);
    ck_assert_mem_eq(end, "bin0", 4);
    etcd_range(c, "bin/", 4, end, end_len, 0, 0, on_res, &pre);
    wait_res(&pre, 2);
    ck_assert_uint_eq(pre.n_kvs, 1);
    ck_assert_mem_eq(pre.kvs[0].key, key, sizeof(key));
    res_free(&put);
    res_free(&get);
    res_free(&pre);
    etcd_free(c);
}
END_TEST

START_TEST(int64_fields_travel_as_strings)
{
    /* Above 2^53: a JSON number through a double would lose the low bits. */
    const int64_t id = INT64_C(0x7ffffffffffffff3);
    struct etcd_client *c = client(single.endpoints, 1000);
    struct res grant = {0}, put = {0}, get = {0}, ttl = {0}, revoke = {0};

    etcd_lease_grant(c, 30, id, on_res, &grant);
    wait_res(&grant, 2);
    ck_assert_msg(grant.err == ETCD_OK, "grant: %s", grant.message);
    ck_assert_int_eq(grant.lease_id, id);
    ck_assert_int_eq(grant.ttl, 30);

    etcd_put(c, "int64/k", 7, "v", 1, id, on_res, &put);
    wait_res(&put, 2);
    ck_assert_int_eq(put.err, ETCD_OK);
    etcd_range(c, "int64/k", 7, NULL, 0, 0, 0, on_res, &get);
    wait_res(&get, 2);
    ck_assert_uint_eq(get.n_kvs, 1);
    ck_assert_int_eq(get.kvs[0].lease, id);

    etcd_lease_timetolive(c, id, on_res, &ttl);
    wait_res(&ttl, 2);
    ck_assert_int_eq(ttl.err, ETCD_OK);
    ck_assert_int_eq(ttl.lease_id, id);
    ck_assert_int_eq(ttl.granted_ttl, 30);
    ck_assert(ttl.ttl > 0 && ttl.ttl <= 30);
    etcd_lease_revoke(c, id, on_res, &revoke);
    wait_res(&revoke, 2);
    ck_assert_int_eq(revoke.err, ETCD_OK);
    res_free(&get);
    etcd_free(c);
}
END_TEST

START_TEST(failed_txn_is_reported_as_failed)
{
    struct etcd_client *c = client(single.endpoints, 1000);
    struct etcd_compare absent = {.key = "txn/k",
                                  .key_len = 5,
                                  .target = ETCD_CMP_CREATE,
                                  .result = ETCD_CMP_EQUAL,
                                  .number = 0};
    struct etcd_op put = {
        .type = ETCD_OP_PUT, .key = "txn/k", .key_len = 5, .value = "first", .value_len = 5};
    struct etcd_op put2 = {
        .type = ETCD_OP_PUT, .key = "txn/k", .key_len = 5, .value = "second", .value_len = 6};
    struct etcd_op get = {.type = ETCD_OP_RANGE, .key = "txn/k", .key_len = 5};
    struct etcd_txn t1 = {&absent, 1, &put, 1, &get, 1};
    struct etcd_txn t2 = {&absent, 1, &put2, 1, &get, 1};
    struct res r1 = {0}, r2 = {0};

    etcd_txn(c, &t1, on_res, &r1);
    wait_res(&r1, 2);
    ck_assert_msg(r1.err == ETCD_OK, "txn: %s", r1.message);
    ck_assert(r1.succeeded);
    ck_assert_uint_eq(r1.n_kvs, 0);

    /* etcd omits "succeeded" when false: still a failure, with the failure branch's read. */
    etcd_txn(c, &t2, on_res, &r2);
    wait_res(&r2, 2);
    ck_assert_int_eq(r2.err, ETCD_OK);
    ck_assert(!r2.succeeded);
    ck_assert_uint_eq(r2.n_kvs, 1);
    ck_assert_str_eq((const char *)r2.kvs[0].value, "first");
    ck_assert_int_eq(r2.kvs[0].create_revision, r1.revision);
    res_free(&r2);
    etcd_free(c);
}
END_TEST

START_TEST(errors_carry_etcds_message)
{
    struct etcd_client *c = client(single.endpoints, 1000);
    struct res g1 = {0}, g2 = {0}, leader = {0};

    etcd_lease_grant(c, 30, 4242, on_res, &g1);
    wait_res(&g1, 2);
    ck_assert_int_eq(g1.err, ETCD_OK);
    etcd_lease_grant(c, 30, 4242, on_res, &g2);
    wait_res(&g2, 2);
    ck_assert_int_eq(g2.err, ETCD_E_SERVER);
    ck_assert_int_eq(g2.http_status, 412);
    ck_assert_str_eq(g2.message, "etcdserver: lease already exists");

    etcd_election_leader(c, "err/nobody", 10, on_res, &leader);
    wait_res(&leader, 2);
    ck_assert_int_eq(leader.err, ETCD_E_NO_ELECTION_LEADER);
    ck_assert_str_eq(leader.message, "election: no leader");
    etcd_free(c);
}
END_TEST

START_TEST(unreachable_endpoint_is_skipped)
{
    char endpoints[256];
    struct etcd_client *c;
    struct res put = {0};

    /* Port 1 on loopback refuses connections. */
    snprintf(endpoints, sizeof(endpoints), "http://127.0.0.1:1, %s/", single.m[0].url);
    c = client(endpoints, 1000);
    ck_assert_str_eq(etcd_current_endpoint(c), "http://127.0.0.1:1");
    etcd_put(c, "rot/k", 5, "v", 1, 0, on_res, &put);
    wait_res(&put, 2);
    ck_assert_msg(put.err == ETCD_OK, "put: %s", put.message);
    ck_assert_str_eq(etcd_current_endpoint(c), single.m[0].url);
    etcd_free(c);
}
END_TEST

/* ---- Leases ------------------------------------------------------------------------------------
 */

START_TEST(keepalive_of_a_revoked_lease_says_it_is_gone)
{
    struct etcd_client *c = client(single.endpoints, 1000);
    struct res grant = {0}, ka = {0}, revoke = {0}, ka2 = {0}, ttl = {0}, put = {0};

    etcd_lease_grant(c, 10, 0, on_res, &grant);
    wait_res(&grant, 2);
    ck_assert_int_eq(grant.err, ETCD_OK);
    ck_assert_int_ne(grant.lease_id, 0);
    etcd_lease_keepalive(c, grant.lease_id, on_res, &ka);
    wait_res(&ka, 2);
    ck_assert_int_eq(ka.err, ETCD_OK);
    ck_assert_int_eq(ka.ttl, 10);

    etcd_lease_revoke(c, grant.lease_id, on_res, &revoke);
    wait_res(&revoke, 2);
    ck_assert_int_eq(revoke.err, ETCD_OK);
    /* HTTP 200 without "TTL": the lease is gone, not renewed. */
    etcd_lease_keepalive(c, grant.lease_id, on_res, &ka2);
    wait_res(&ka2, 2);
    ck_assert_int_eq(ka2.err, ETCD_E_LEASE_NOT_FOUND);
    ck_assert_int_eq(ka2.http_status, 200);
    etcd_lease_timetolive(c, grant.lease_id, on_res, &ttl);
    wait_res(&ttl, 2);
    ck_assert_int_eq(ttl.err, ETCD_OK);
    ck_assert_int_eq(ttl.ttl, -1);
    etcd_put(c, "lease/k", 7, "v", 1, grant.lease_id, on_res, &put);
    wait_res(&put, 2);
    ck_assert_int_eq(put.err, ETCD_E_LEASE_NOT_FOUND);
    ck_assert_str_eq(put.message, "etcdserver: requested lease not found");
    etcd_free(c);
}
END_TEST

START_TEST(lease_expires_without_keepalive)
{
    struct etcd_client *c = client(single.endpoints, 1000);
    struct res grant = {0}, put = {0}, ka = {0};
    double start, gone = 0;

    /* TTL 1 is below etcd's minimum: etcd raises it, and says so. */
    start = mono_s();
    etcd_lease_grant(c, 1, 0, on_res, &grant);
    wait_res(&grant, 2);
    ck_assert_int_eq(grant.err, ETCD_OK);
    ck_assert_int_ge(grant.ttl, 2);
    etcd_put(c, "expire/k", 8, "v", 1, grant.lease_id, on_res, &put);
    wait_res(&put, 2);
    ck_assert_int_eq(put.err, ETCD_OK);
    while (mono_s() - start < grant.ttl + 3) {
        struct res get = {0};

        etcd_range(c, "expire/k", 8, NULL, 0, 0, 0, on_res, &get);
        wait_res(&get, 2);
        if (get.n_kvs == 0) {
            gone = mono_s() - start;
            res_free(&get);
            break;
        }
        res_free(&get);
        run_for(loop, 0.05);
    }
    ck_assert_msg(gone > 0, "the lease's key outlived TTL + 3 s");
    fprintf(stderr, "lease of TTL %" PRId64 " s expired %.2f s after the grant\n", grant.ttl, gone);
    etcd_lease_keepalive(c, grant.lease_id, on_res, &ka);
    wait_res(&ka, 2);
    ck_assert_int_eq(ka.err, ETCD_E_LEASE_NOT_FOUND);
    etcd_free(c);
}
END_TEST

/* ---- Watch
 * --------------------------------------------------------------------------------------- */

START_TEST(watch_reports_puts_and_deletes)
{
    struct etcd_client *c = client(single.endpoints, 1000);
    uint8_t end[16];
    size_t end_len = etcd_prefix_end("w/", 2, end);
    struct events ev = {0};
    struct res p1 = {0}, p2 = {0}, d = {0};
    struct etcd_req *w;

    w = etcd_watch(c, "w/", 2, end, end_len, 0, ETCD_WATCH_PREV_KV, on_events, &ev);
    ck_assert(run_until(loop, &ev.created, 2));
    etcd_put(c, "w/a", 3, "1", 1, 0, on_res, &p1);
    wait_res(&p1, 2);
    etcd_put(c, "w/a", 3, "2", 1, 0, on_res, &p2);
    wait_res(&p2, 2);
    etcd_delete(c, "w/a", 3, NULL, 0, false, on_res, &d);
    wait_res(&d, 2);
    ck_assert_int_eq(d.deleted, 1);
    ck_assert(run_until(loop, &ev.got[3], 2));
    /* A PUT event has no "type" in etcd's JSON. */
    ck_assert_int_eq(ev.type[0], ETCD_EVENT_PUT);
    ck_assert_int_eq(ev.type[1], ETCD_EVENT_PUT);
    ck_assert_int_eq(ev.type[2], ETCD_EVENT_DELETE);
    ck_assert_str_eq(ev.value[1], "2");
    ck_assert(!ev.has_prev[0]);
    ck_assert(ev.has_prev[1]);
    ck_assert_int_eq(ev.rev[0], p1.revision);
    ck_assert_int_eq(ev.rev[2], d.revision);
    ck_assert(!ev.ended);
    etcd_cancel(w);
    etcd_free(c);
}
END_TEST

START_TEST(watch_from_a_revision_replays_history)
{
    struct etcd_client *c = client(single.endpoints, 1000);
    struct events ev = {0};
    struct res p1 = {0}, p2 = {0};

    etcd_put(c, "hist/k", 6, "1", 1, 0, on_res, &p1);
    wait_res(&p1, 2);
    etcd_put(c, "hist/k", 6, "2", 1, 0, on_res, &p2);
    wait_res(&p2, 2);
    etcd_watch(c, "hist/k", 6, NULL, 0, p1.revision, 0, on_events, &ev);
    ck_assert(run_until(loop, &ev.got[2], 2));
    ck_assert_int_eq(ev.rev[0], p1.revision);
    ck_assert_int_eq(ev.rev[1], p2.revision);
    etcd_free(c); /* with the watch still open */
}
END_TEST

/* ---- Election
 * ------------------------------------------------------------------------------------ */

START_TEST(campaign_waits_for_the_leader_to_resign)
{
    struct etcd_client *c = client(single.endpoints, 1000);
    struct res la = {0}, lb = {0}, ca = {0}, cb = {0}, leader = {0}, resign = {0};
    struct events obs = {0};
    struct etcd_leader_key key;

    etcd_lease_grant(c, 10, 0, on_res, &la);
    etcd_lease_grant(c, 10, 0, on_res, &lb);
    wait_res(&la, 2);
    wait_res(&lb, 2);
    etcd_campaign(c, "el", 2, la.lease_id, "node-a", 6, on_res, &ca);
    wait_res(&ca, 2);
    ck_assert_msg(ca.err == ETCD_OK, "campaign: %s", ca.message);
    ck_assert_int_gt(ca.leader_rev, 0);
    ck_assert_int_eq(ca.leader_lease, la.lease_id);
    ck_assert_uint_eq(strncmp(ca.leader_key, "el/", 3), 0);

    etcd_campaign(c, "el", 2, lb.lease_id, "node-b", 6, on_res, &cb);
    run_for(loop, 0.3);
    ck_assert_msg(!cb.done, "second candidate elected while the first leads");

    etcd_election_leader(c, "el", 2, on_res, &leader);
    wait_res(&leader, 2);
    ck_assert_int_eq(leader.err, ETCD_OK);
    ck_assert_uint_eq(leader.n_kvs, 1);
    ck_assert_str_eq((const char *)leader.kvs[0].value, "node-a");
    ck_assert_int_eq(leader.kvs[0].create_revision, ca.leader_rev);

    etcd_election_observe(c, "el", 2, on_observed, &obs);
    ck_assert(run_until(loop, &obs.got[1], 2));
    ck_assert_str_eq(obs.value[0], "node-a");
    ck_assert_int_eq(obs.rev[0], ca.leader_rev);

    key = (struct etcd_leader_key){
        (uint8_t *)"el", 2, (uint8_t *)ca.leader_key, strlen(ca.leader_key), ca.leader_rev,
        ca.leader_lease};
    etcd_election_resign(c, &key, on_res, &resign);
    wait_res(&resign, 2);
    ck_assert_int_eq(resign.err, ETCD_OK);
    wait_res(&cb, 2);
    ck_assert_int_eq(cb.err, ETCD_OK);
    ck_assert_int_gt(cb.leader_rev, ca.leader_rev);
    ck_assert(run_until(loop, &obs.got[2], 2));
    ck_assert_str_eq(obs.value[1], "node-b");
    ck_assert_int_eq(obs.rev[1], cb.leader_rev);
    res_free(&leader);
    etcd_free(c);
}
END_TEST

/* ---- Three members ------------------------------------------------------------------------------
 */

/* Puts until one succeeds (the cluster may be electing a leader after a kill). */
static int64_t put_retrying(struct etcd_client *c, const char *key, const char *value)
{
    double until = mono_s() + 8;

    while (mono_s() < until) {
        struct res r = {0};

        etcd_put(c, key, strlen(key), value, strlen(value), 0, on_res, &r);
        wait_res(&r, 3);
        if (r.err == ETCD_OK)
            return r.revision;
        run_for(loop, 0.1);
    }
    ck_abort_msg("put %s failed for 8 s", key);
    return 0;
}

/* Static: the exit handler may still need them after a failed test left its frame. */
static struct etcd_cluster cl;

START_TEST(watch_survives_its_member_being_killed)
{
    struct etcd_client *watcher, *writer;
    struct events ev = {0};
    uint8_t end[16];
    size_t end_len = etcd_prefix_end("fo/", 3, end);
    char endpoints[256];
    int64_t revs[5];
    int i;

    etcd_cluster_start(&cl, 3);
    watcher = client(cl.endpoints, 1000); /* starts on member 1 */
    snprintf(endpoints, sizeof(endpoints), "%s,%s", cl.m[2].url, cl.m[1].url);
    writer = client(endpoints, 1000);
    etcd_watch(watcher, "fo/", 3, end, end_len, 0, 0, on_events, &ev);
    ck_assert(run_until(loop, &ev.created, 3));
    revs[0] = put_retrying(writer, "fo/0", "before");
    ck_assert(run_until(loop, &ev.got[1], 3));

    etcd_member_kill(&cl, 0);
    /* Written while the watch has no stream: delivered once it is reopened elsewhere. */
    for (i = 1; i < 5; i++) {
        char key[16];

        snprintf(key, sizeof(key), "fo/%d", i);
        revs[i] = put_retrying(writer, key, "after");
    }
    ck_assert_msg(run_until(loop, &ev.got[5], 8), "%zu of 5 events after the kill", ev.n);
    run_for(loop, 0.2);
    ck_assert_uint_eq(ev.n, 5); /* none twice */
    for (i = 0; i < 5; i++) {
        char key[16];

        snprintf(key, sizeof(key), "fo/%d", i);
        ck_assert_str_eq(ev.key[i], key);
        ck_assert_int_eq(ev.rev[i], revs[i]);
    }
    ck_assert(!ev.ended);
    ck_assert_str_ne(etcd_current_endpoint(watcher), cl.m[0].url);
    etcd_free(watcher);
    etcd_free(writer);
    etcd_cluster_stop(&cl);
}
END_TEST

START_TEST(member_without_quorum_fails_fast)
{
    struct etcd_client *c;
    struct res put = {0}, get = {0};
    double t0;

    etcd_cluster_start(&cl, 3);
    etcd_member_pause(&cl, 1, true);
    etcd_member_pause(&cl, 2, true);
    /* Long enough for member 1 to notice it has no leader (election timeout 1 s). */
    run_for(loop, 2.5);
    c = client(cl.m[0].url, 5000);
    t0 = mono_s();
    etcd_put(c, "nq/k", 4, "v", 1, 0, on_res, &put);
    wait_res(&put, 6);
    fprintf(stderr, "put to a member without quorum failed after %.3f s: %s\n", put.at - t0,
            put.message);
    /* "no leader", from etcd, rather than our 5 s timeout: the header did its job. */
    ck_assert_msg(put.err == ETCD_E_NO_LEADER, "err %d: %s", put.err, put.message);
    ck_assert_int_eq(put.http_status, 503);
    t0 = mono_s();
    etcd_range(c, "nq/k", 4, NULL, 0, 0, 0, on_res, &get);
    wait_res(&get, 6);
    ck_assert_int_eq(get.err, ETCD_E_NO_LEADER);
    fprintf(stderr, "linearizable read failed after %.3f s\n", get.at - t0);
    etcd_free(c);

    /* A paused member never answers: the request's own timeout ends it. */
    c = client(cl.m[1].url, 300);
    memset(&put, 0, sizeof(put));
    etcd_put(c, "nq/k", 4, "v", 1, 0, on_res, &put);
    wait_res(&put, 3);
    ck_assert_int_eq(put.err, ETCD_E_TIMEOUT);
    etcd_free(c);
    etcd_cluster_stop(&cl);
}
END_TEST

/* ---- Authentication ------------------------------------------------------------------------- */

static size_t ignore_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* A blocking POST to the gateway, for setting etcd up. */
static long post(const char *base, const char *path, const char *body)
{
    CURL *e = curl_easy_init();
    char url[256];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    /* 10 s, not 2: the first write to a member just started timed out once on a machine
     * with a load average of 12 (etcd fsyncs its log before answering). */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ignore_body);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    return status;
}

static struct etcd_client *auth_client(const char *user, const char *password)
{
    struct etcd_options o = {.endpoints = cl.endpoints, .username = user, .password = password};
    char err[256];
    struct etcd_client *c = etcd_new(loop, &o, err, sizeof(err));

    ck_assert_msg(c != NULL, "etcd_new: %s", err);
    return c;
}

START_TEST(auth_token_is_fetched_and_refreshed)
{
    /* Simple tokens unused for 1 s expire: the client must authenticate again. */
    static const char *const args[] = {"--auth-token-ttl", "1", NULL};
    struct etcd_client *c, *anon, *bad;
    struct res put = {0}, get = {0}, later = {0}, r1 = {0}, r2 = {0};

    etcd_cluster_start_args(&cl, 1, args);
    ck_assert_int_eq(
        post(cl.m[0].url, "/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"pw\"}"), 200);
    ck_assert_int_eq(post(cl.m[0].url, "/v3/auth/role/add", "{\"name\":\"root\"}"), 200);
    ck_assert_int_eq(
        post(cl.m[0].url, "/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}"), 200);
    ck_assert_int_eq(post(cl.m[0].url, "/v3/auth/enable", "{}"), 200);

    c = auth_client("root", "pw");
    etcd_put(c, "auth/k", 6, "v", 1, 0, on_res, &put);
    wait_res(&put, 3);
    ck_assert_msg(put.err == ETCD_OK, "put with a token: %s", put.message);
    etcd_range(c, "auth/k", 6, NULL, 0, 0, 0, on_res, &get);
    wait_res(&get, 3);
    ck_assert_uint_eq(get.n_kvs, 1);
    run_for(loop, 2.5); /* the token expires */
    etcd_range(c, "auth/k", 6, NULL, 0, 0, 0, on_res, &later);
    wait_res(&later, 3);
    ck_assert_msg(later.err == ETCD_OK, "after the token expired: %s", later.message);
    ck_assert_uint_eq(later.n_kvs, 1);

    anon = client(cl.endpoints, 1000);
    etcd_range(anon, "auth/k", 6, NULL, 0, 0, 0, on_res, &r1);
    wait_res(&r1, 3);
    ck_assert_int_eq(r1.err, ETCD_E_AUTH);
    ck_assert_str_eq(r1.message, "etcdserver: user name is empty");
    bad = auth_client("root", "wrong");
    etcd_range(bad, "auth/k", 6, NULL, 0, 0, 0, on_res, &r2);
    wait_res(&r2, 3);
    ck_assert_int_eq(r2.err, ETCD_E_AUTH);
    res_free(&get);
    res_free(&later);
    etcd_free(c);
    etcd_free(anon);
    etcd_free(bad);
    etcd_cluster_stop(&cl);
}
END_TEST

static Suite *etcd_suite(void)
{
    Suite *s = suite_create("etcd");
    TCase *tc = tcase_create("single member");

    tcase_add_unchecked_fixture(tc, single_up, single_down);
    tcase_add_checked_fixture(tc, loop_up, loop_down);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, binary_keys_and_values_round_trip);
    tcase_add_test(tc, int64_fields_travel_as_strings);
    tcase_add_test(tc, failed_txn_is_reported_as_failed);
    tcase_add_test(tc, errors_carry_etcds_message);
    tcase_add_test(tc, unreachable_endpoint_is_skipped);
    tcase_add_test(tc, keepalive_of_a_revoked_lease_says_it_is_gone);
    tcase_add_test(tc, lease_expires_without_keepalive);
    tcase_add_test(tc, watch_reports_puts_and_deletes);
    tcase_add_test(tc, watch_from_a_revision_replays_history);
    tcase_add_test(tc, campaign_waits_for_the_leader_to_resign);
    suite_add_tcase(s, tc);

    tc = tcase_create("three members");
    tcase_add_checked_fixture(tc, loop_up, loop_down);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, watch_survives_its_member_being_killed);
    tcase_add_test(tc, member_without_quorum_fails_fast);
    suite_add_tcase(s, tc);

    tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, loop_up, loop_down);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, auth_token_is_fetched_and_refreshed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(etcd_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
