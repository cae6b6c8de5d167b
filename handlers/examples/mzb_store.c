/*
 * mzb-store: keeps every event of a service in an SQLite table and answers
 * "done". The message id is UNIQUE, so a resend after a bridge restart is
 * stored once. When a row cannot be written the program stops without
 * answering: the bridge then gives the event to another handler (QoS 1 and 2)
 * instead of taking it for stored.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <string.h>

#include "example_common.h"
#include "mzb_log.h"

/* How long a write waits for another process holding the database. */
#define BUSY_TIMEOUT_MS 5000

/*
 * message_id is the bridge's 64-bit id read as a signed integer (SQLite has no
 * unsigned type); it is NULL for requests from plain MDP clients, which carry
 * no metadata, and NULLs never collide under UNIQUE.
 */
static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS events ("
                                 " message_id INTEGER UNIQUE,"
                                 " topic TEXT,"
                                 " client_id TEXT,"
                                 " qos INTEGER,"
                                 " retain INTEGER,"
                                 " payload BLOB NOT NULL,"
                                 " received_at TEXT NOT NULL)";

/* Only a repeated message id is ignored; any other constraint failure stays an error. */
static const char insert_sql[] = "INSERT INTO events"
                                 " (message_id, topic, client_id, qos, retain, payload,"
                                 " received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                                 " ON CONFLICT (message_id) DO NOTHING";

struct store {
    const char *path;
    sqlite3 *db;
    sqlite3_stmt *insert;
};

static int exec_sql(struct store *st, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        mzb_log(MZB_LOG_ERROR, "database %s: \"%s\" failed: %s", st->path, sql,
                err ? err : sqlite3_errmsg(st->db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static int journal_is_wal(void *arg, int ncols, char **values, char **names)
{
    (void)names;
    *(int *)arg = ncols == 1 && values[0] && strcmp(values[0], "wal") == 0;
    return 0;
}

static int use_wal(struct store *st)
{
    int wal = 0;

    /* The pragma answers with the mode now in force, which is not WAL on every file system. */
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL", journal_is_wal, &wal, NULL) != SQLITE_OK ||
        !wal) {
        mzb_log(MZB_LOG_ERROR, "database %s: cannot switch to WAL mode: %s", st->path,
                sqlite3_errmsg(st->db));
        return -1;
    }
    return 0;
}

static int store_open(struct store *st, const char *path)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

    st->path = path;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        mzb_log(MZB_LOG_ERROR, "database %s: cannot open it: %s; check the path and rights", path,
                st->db ? sqlite3_errmsg(st->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);

    if (use_wal(st) != 0 || exec_sql(st, "PRAGMA synchronous=NORMAL") != 0 ||
        exec_sql(st, schema_sql) != 0) {
        return -1;
    }
    if (sqlite3_prepare_v2(st->db, insert_sql, -1, &st->insert, NULL) != SQLITE_OK) {
        mzb_log(MZB_LOG_ERROR, "database %s: cannot prepare the insert: %s", path,
                sqlite3_errmsg(st->db));
        return -1;
    }
    return 0;
}

static void store_close(struct store *st)
{
    sqlite3_finalize(st->insert);
    st->insert = NULL;
    if (st->db && sqlite3_close(st->db) != SQLITE_OK) {
        mzb_log(MZB_LOG_WARNING, "database %s: closing it failed: %s", st->path,
                sqlite3_errmsg(st->db));
    }
    st->db = NULL;
}

static int bind_text_or_null(sqlite3_stmt *stmt, int col, const char *s, size_t len)
{
    if (!s) {
        return sqlite3_bind_null(stmt, col);
    }
    return sqlite3_bind_text64(stmt, col, s, len, SQLITE_STATIC, SQLITE_UTF8);
}

static int bind_int_or_null(sqlite3_stmt *stmt, int col, int value)
{
    return value < 0 ? sqlite3_bind_null(stmt, col) : sqlite3_bind_int(stmt, col, value);
}

static int bind_event(sqlite3_stmt *stmt, const struct mzb_request *req, const char *now)
{
    const char *topic, *client;
    size_t topic_len, client_len, payload_len;
    const void *payload = mzb_request_payload(req, &payload_len);
    uint64_t id;
    int rc;

    topic = mzb_request_topic(req, &topic_len);
    client = mzb_request_client_id(req, &client_len);
    rc = mzb_request_message_id(req, &id) ? sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id)
                                          : sqlite3_bind_null(stmt, 1);
    rc = rc ? rc : bind_text_or_null(stmt, 2, topic, topic_len);
    rc = rc ? rc : bind_text_or_null(stmt, 3, client, client_len);
    rc = rc ? rc : bind_int_or_null(stmt, 4, mzb_request_qos(req));
    rc = rc ? rc : bind_int_or_null(stmt, 5, mzb_request_retain(req));
    rc = rc ? rc : sqlite3_bind_blob64(stmt, 6, payload, payload_len, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(stmt, 7, now, -1, SQLITE_STATIC);
    return rc;
}

/* Returns 1 when a row was added, 0 when the message id was stored before, -1 on failure. */
static int insert_event(struct store *st, const struct mzb_request *req)
{
    char now[32];
    int rc = bind_event(st->insert, req, mzbx_iso_time(now, sizeof(now)));

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st->insert);
    }
    if (rc != SQLITE_DONE) {
        mzb_log(MZB_LOG_ERROR,
                "database %s: cannot store an event: %s; stopping so that the bridge gives it "
                "to another handler",
                st->path, sqlite3_errmsg(st->db));
    }

    sqlite3_reset(st->insert);
    sqlite3_clear_bindings(st->insert);
    if (rc != SQLITE_DONE) {
        return -1;
    }
    return sqlite3_changes(st->db) > 0;
}

static int store_one(struct mzb_handler *h, struct mzb_request *req, void *arg)
{
    struct store *st = arg;
    uint64_t id = 0;
    int added;

    mzbx_log_request("store", req);
    added = insert_event(st, req);
    if (added < 0) {
        mzb_request_free(req);
        return MZBX_EXIT_FAILURE;
    }
    if (added == 0 && mzb_request_message_id(req, &id)) {
        mzb_log(MZB_LOG_INFO, "event %016" PRIx64 " is stored already; not storing it again", id);
    }

    mzb_handler_done(h, req);
    return MZBX_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct mzbx_program prog = {
        "mzb-store", "Stores every event of SERVICE in an SQLite table named events.", 1};
    struct store st = {0};
    struct mzbx_args args;
    struct mzb_handler *h = NULL;
    int rc;

    rc = mzbx_parse_args(&prog, argc, argv, &args);
    if (rc >= 0) {
        return rc;
    }
    /* The database first: a handler that cannot store must not offer the service. */
    rc = store_open(&st, args.db_path) == 0 ? MZBX_EXIT_OK : MZBX_EXIT_FAILURE;
    if (rc == MZBX_EXIT_OK) {
        rc = mzbx_start(&prog, &args, &h);
    }

    if (rc == MZBX_EXIT_OK) {
        rc = mzbx_serve(h, store_one, &st);
    }
    mzb_handler_destroy(&h);
    store_close(&st);
    return rc;
}
