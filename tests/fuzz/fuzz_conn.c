/* Fuzz target: one in-memory connection (no socket) fed arbitrary bytes, through the real
 * handshake, channel and queue code of warrend. A fresh server per input keeps runs
 * independent; its output is discarded. */
#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/config.h"
#include "src/base/log.h"
#include "src/broker/conn.h"
#include "src/broker/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    static struct ev_loop *loop;
    struct server srv;
    struct conn *c;
    size_t split;

    if (loop == NULL) {
        loop = ev_default_loop(0);
        config_defaults(&cfg);
        cfg.tcp_count = 0;       /* no listeners */
        cfg.data_dir[0] = '\0'; /* nothing persisted */
        cfg.max_message_size = 1 << 20;
        log_set_level(LOG_LEVEL_NONE);
    }
    if (server_init(&srv, loop, &cfg, -1) != 0)
        return 0;
    c = conn_new(&srv, -1, NULL, 0);
    server_adopt(&srv, c);
    /* Feed in two pieces so frames split across reads are exercised too. */
    split = size > 0 ? data[0] % (size + 1) : 0;
    conn_feed(c, data, split);
    server_flush_pending(&srv);
    /* A closed connection has been freed by now: only the server's list knows. */
    if (srv.conns == c)
        conn_feed(c, data + split, size - split);
    server_flush_pending(&srv);
    server_free(&srv);
    return 0;
}
