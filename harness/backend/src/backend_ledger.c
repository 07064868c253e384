/*
 * backend_ledger.c - the backend role's ledger: the item table and latencies in memory,
 * the SQLite file, and the backend thread that takes the FIFO of arrived messages and
 * processes it in batches (registrations, inventory queries, item rows).
 */
#include "backend_internal.h"

/* ---------------------------------------------------------------- item table */

struct backend__item *backend__find_item(struct hx_backend *b, int32_t id)
{
    if (b->cap_slots == 0)
        return NULL;
    size_t mask = b->cap_slots - 1, i = ((uint32_t)id * 2654435761u) & mask;
    while (b->slots[i]) {
        struct backend__item *it = &b->items[b->slots[i] - 1];
        if (it->item_id == id)
            return it;
        i = (i + 1) & mask;
    }
    return NULL;
}

static int backend__grow_slots(struct hx_backend *b)
{
    size_t cap = b->cap_slots ? b->cap_slots * 2 : 1024;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return HX_ERR_NOMEM;
    for (size_t k = 0; k < b->n_items; k++) {
        size_t i = ((uint32_t)b->items[k].item_id * 2654435761u) & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)(k + 1);
    }
    free(b->slots);
    b->slots = slots;
    b->cap_slots = cap;
    return HX_OK;
}

/* Find or add item id (under lock). NULL when out of memory. */
struct backend__item *backend__item(struct hx_backend *b, int32_t id)
{
    struct backend__item *it = backend__find_item(b, id);
    if (it)
        return it;
    if (b->n_items == b->cap_items) {
        size_t cap = b->cap_items ? b->cap_items * 2 : 1024;
        struct backend__item *items = realloc(b->items, cap * sizeof *items);
        if (!items)
            return NULL;
        b->items = items;
        b->cap_items = cap;
    }
    if ((b->n_items + 1) * 2 > b->cap_slots && backend__grow_slots(b) != HX_OK)
        return NULL;
    it = &b->items[b->n_items++];
    memset(it, 0, sizeof *it);
    it->item_id = id;
    size_t mask = b->cap_slots - 1, i = ((uint32_t)id * 2654435761u) & mask;
    while (b->slots[i])
        i = (i + 1) & mask;
    b->slots[i] = (uint32_t)b->n_items;
    if (id > b->max_item_id)
        b->max_item_id = id;
    return it;
}

/* The once/twice counters without (sign -1) or with (+1) item it as it stands (under lock). */
void backend__count_item(struct hx_backend *b, const struct backend__item *it, int sign)
{
    if (!it->published || it->keys == 0)
        return;
    uint64_t *c = it->keys == 1 ? &b->reg_once : &b->reg_twice;
    *c = sign > 0 ? *c + 1 : *c - 1;
}

/* Record its latency once both its publish and its first registration are known, the
   registration after the publish (under lock). */
void backend__add_latency(struct hx_backend *b, const struct backend__item *it)
{
    if (!it->published || it->keys != 1 || it->first_reg_us < it->published_us)
        return;
    if (b->n_lat == b->cap_lat) {
        size_t cap = b->cap_lat ? b->cap_lat * 2 : 1024;
        double *lat = realloc(b->lat, cap * sizeof *lat);
        if (!lat) {
            b->r.sql_errors++; /* out of memory: counted, the percentiles miss it */
            return;
        }
        b->lat = lat;
        b->cap_lat = cap;
    }
    double ms = (double)(it->first_reg_us - it->published_us) / 1000.0;
    b->lat[b->n_lat++] = ms;
    b->lat_sum_ms += ms;
}

static int backend__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sort the latencies that came since the last report into the sorted part (under lock).
   Out of memory: counted, and the sorted part stays as it was (readers see the older part). */
void backend__settle_latencies(struct hx_backend *b)
{
    size_t old = b->lat_sorted, n = b->n_lat;
    if (old == n)
        return;
    qsort(b->lat + old, n - old, sizeof *b->lat, backend__cmp_double);
    if (old == 0) {
        b->lat_sorted = n;
        return;
    }
    double *out = realloc(b->lat_tmp, b->cap_lat * sizeof *out);
    if (!out) {
        b->r.sql_errors++;
        return;
    }
    b->lat_tmp = out;
    size_t i = 0, j = old, k = 0;
    while (i < old && j < n)
        out[k++] = b->lat[j] < b->lat[i] ? b->lat[j++] : b->lat[i++];
    while (i < old)
        out[k++] = b->lat[i++];
    while (j < n)
        out[k++] = b->lat[j++];
    b->lat_tmp = b->lat;
    b->lat = out;
    b->lat_sorted = n;
}

/* ---------------------------------------------------------------- SQL */

static const char backend__schema[] =
    "DROP TABLE IF EXISTS tags;"
    "DROP TABLE IF EXISTS items;"
    "CREATE TABLE items(item_id INTEGER PRIMARY KEY, name TEXT, tag_quantity INTEGER,"
    " device_id TEXT, published_ms INTEGER);"
    "CREATE TABLE tags(id INTEGER PRIMARY KEY, idem_key TEXT UNIQUE, item_id INTEGER,"
    " tag TEXT, device_id TEXT, seq INTEGER, registered_ms INTEGER);"
    "CREATE INDEX tags_tag ON tags(tag);";

int backend__sql_open(struct hx_backend *b)
{
    const char *path = b->db_path ? b->db_path : ":memory:";
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &b->db, flags, NULL) != SQLITE_OK) {
        backend__set_error("cannot open the ledger database %s: %s; check the folder exists "
                           "and is writable", path, b->db ? sqlite3_errmsg(b->db) : "no memory");
        return HX_ERR_SQL;
    }
    sqlite3_busy_timeout(b->db, 5000);
    const char *pragmas = b->db_path ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                     : "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;";
    char *msg = NULL;
    if (sqlite3_exec(b->db, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(b->db, backend__schema, NULL, NULL, &msg) != SQLITE_OK) {
        backend__set_error("cannot set up the ledger tables in %s: %s; is it a SQLite file "
                           "in use by another program?", path, msg ? msg : "?");
        sqlite3_free(msg);
        return HX_ERR_SQL;
    }
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&b->st_item, "INSERT OR REPLACE INTO items(item_id, name, tag_quantity, device_id,"
                      " published_ms) VALUES(?,?,?,?,?)"},
        {&b->st_tag, "INSERT INTO tags(idem_key, item_id, tag, device_id, seq, registered_ms)"
                     " VALUES(?,?,?,?,?,?)"},
        {&b->st_key, "SELECT item_id, tag FROM tags WHERE idem_key = ?"},
        {&b->st_find, "SELECT t.item_id, i.name FROM tags t JOIN items i ON i.item_id ="
                      " t.item_id WHERE t.tag = ? ORDER BY t.id LIMIT 1"},
        {&b->st_begin, "BEGIN"},
        {&b->st_commit, "COMMIT"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        if (sqlite3_prepare_v2(b->db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK) {
            backend__set_error("cannot prepare a ledger statement: %s", sqlite3_errmsg(b->db));
            return HX_ERR_SQL;
        }
    }
    return HX_OK;
}

void backend__sql_close(struct hx_backend *b)
{
    sqlite3_finalize(b->st_item);
    sqlite3_finalize(b->st_tag);
    sqlite3_finalize(b->st_key);
    sqlite3_finalize(b->st_find);
    sqlite3_finalize(b->st_begin);
    sqlite3_finalize(b->st_commit);
    b->st_item = b->st_tag = b->st_key = b->st_find = b->st_begin = b->st_commit = NULL;
    if (b->db)
        sqlite3_close(b->db);
    b->db = NULL;
}

/* Run a prepared statement that returns no rows (BEGIN, COMMIT). */
static void backend__sql_run(struct hx_backend *b, sqlite3_stmt *st)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        b->r.sql_errors++;
    sqlite3_reset(st);
}

/* ---------------------------------------------------------------- processing (backend thread) */

static void backend__remember_row(struct hx_backend *b, const struct backend__item *it,
                                  const char *tag, const char *device_id, int64_t wall_ms)
{
    struct hx_backend_row *row = &b->recent[b->recent_head];
    b->recent_head = (b->recent_head + 1) % b->recent_cap;
    if (b->recent_len < b->recent_cap)
        b->recent_len++;
    memset(row, 0, sizeof *row);
    row->item_id = it->item_id;
    snprintf(row->item_name, sizeof row->item_name, "%s", it->name);
    snprintf(row->tag, sizeof row->tag, "%s", tag);
    snprintf(row->device_id, sizeof row->device_id, "%s", device_id);
    row->count = it->keys;
    row->registered_ms = wall_ms;
}

/* The device id a per-device topic names ("scanners/<id>/..."), or NULL for the seed layout. */
static bool backend__topic_device(const struct hx_backend *b, const char *topic,
                                  const char **id, size_t *len)
{
    *id = NULL;
    *len = 0;
    if (b->layout != HX_BACKEND_LAYOUT_PER_DEVICE)
        return true;
    if (strncmp(topic, "scanners/", 9) != 0)
        return false;
    const char *s = topic + 9, *slash = strchr(s, '/');
    if (!slash)
        return false;
    *id = s;
    *len = (size_t)(slash - s);
    return true;
}

static void backend__process_registration(struct hx_backend *b, const struct backend__msg *m)
{
    b->r.registrations_received++;
    cJSON *root = backend__parse_object(m->data, m->len);
    int64_t item_id, tag_quantity, seq;
    const char *tag, *device_id;
    const char *topic_id;
    size_t topic_id_len;
    if (!root || !backend__json_int(root, "item_id", 1, INT32_MAX, &item_id) ||
        !backend__json_int(root, "tag_quantity", 1, 100000, &tag_quantity) ||
        !backend__json_int(root, "seq", 0, UINT32_MAX, &seq) ||
        !(tag = backend__json_str(root, "tag")) || !backend__valid_tag(tag) ||
        !(device_id = backend__json_str(root, "device_id")) ||
        !backend__valid_device_id(device_id, strlen(device_id)) ||
        !backend__topic_device(b, m->topic, &topic_id, &topic_id_len) ||
        (topic_id && (topic_id_len != strlen(device_id) ||
                      memcmp(topic_id, device_id, topic_id_len) != 0))) {
        b->r.malformed++;
        cJSON_Delete(root);
        return;
    }
    char key[BACKEND_DEVICE_ID_MAX + 16];
    snprintf(key, sizeof key, "%s:%" PRId64, device_id, seq);
    sqlite3_stmt *st = b->st_tag;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, item_id);
    sqlite3_bind_text(st, 3, tag, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, device_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, seq);
    sqlite3_bind_int64(st, 6, m->wall_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT) {
        /* the key is known: the device's own re-send, or (same key, other content) a bug */
        bool same = false;
        sqlite3_stmt *q = b->st_key;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, key, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW)
            same = sqlite3_column_int64(q, 0) == item_id &&
                   strcmp((const char *)sqlite3_column_text(q, 1), tag) == 0;
        sqlite3_reset(q);
        if (same)
            b->r.duplicate_deliveries++;
        else
            b->r.key_reused++;
        cJSON_Delete(root);
        return;
    }
    if (rc != SQLITE_DONE) {
        b->r.sql_errors++;
        cJSON_Delete(root);
        return;
    }
    b->r.rows_stored++;
    struct backend__item *it = backend__item(b, (int32_t)item_id);
    if (!it) {
        b->r.sql_errors++; /* out of memory: counted, nothing else to do */
        cJSON_Delete(root);
        return;
    }
    if (!it->published)
        b->r.unknown_items++;
    backend__count_item(b, it, -1);
    it->keys++;
    backend__count_item(b, it, +1);
    int slot = it->keys == 1 ? 0 : 1;
    snprintf(it->reg_device[slot], sizeof it->reg_device[slot], "%s", device_id);
    snprintf(it->reg_tag[slot], sizeof it->reg_tag[slot], "%s", tag);
    if (it->keys == 1) {
        it->first_reg_us = m->at_us;
        if (it->published)
            b->r.registered++;
        backend__add_latency(b, it);
    }
    backend__remember_row(b, it, tag, device_id, m->wall_ms);
    cJSON_Delete(root);
}

static void backend__process_query(struct hx_backend *b, const struct backend__msg *m)
{
    cJSON *root = backend__parse_object(m->data, m->len);
    int64_t seq;
    const char *tag, *device_id;
    const char *topic_id;
    size_t topic_id_len;
    if (!root || !(tag = backend__json_str(root, "tag")) || !backend__valid_tag(tag) ||
        !(device_id = backend__json_str(root, "device_id")) ||
        !backend__valid_device_id(device_id, strlen(device_id)) ||
        !backend__json_int(root, "seq", 0, UINT32_MAX, &seq) ||
        !backend__topic_device(b, m->topic, &topic_id, &topic_id_len) ||
        (topic_id && (topic_id_len != strlen(device_id) ||
                      memcmp(topic_id, device_id, topic_id_len) != 0))) {
        b->r.malformed_queries++;
        cJSON_Delete(root);
        return;
    }
    char name[2 * BACKEND_NAME_MAX + 2];
    struct backend__reply *rep = calloc(1, sizeof *rep);
    if (!rep) {
        b->r.sql_errors++; /* out of memory: counted */
        cJSON_Delete(root);
        return;
    }
    snprintf(rep->topic, sizeof rep->topic, "scanners/%s/inventory/reply", device_id);
    sqlite3_stmt *q = b->st_find;
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, tag, -1, SQLITE_TRANSIENT);
    int n;
    if (sqlite3_step(q) == SQLITE_ROW &&
        backend__json_escape(name, sizeof name, (const char *)sqlite3_column_text(q, 1)) >= 0)
        n = snprintf(rep->payload, sizeof rep->payload,
                     "{\"tag\":\"%s\",\"found\":true,\"item_id\":%" PRId64
                     ",\"item_name\":\"%s\"}", tag, (int64_t)sqlite3_column_int64(q, 0), name);
    else
        n = snprintf(rep->payload, sizeof rep->payload, "{\"tag\":\"%s\",\"found\":false}",
                     tag);
    sqlite3_reset(q);
    rep->len = (size_t)n;
    *b->replies_tail = rep;
    b->replies_tail = &rep->next;
    cJSON_Delete(root);
}

static void backend__process_item(struct hx_backend *b, const struct backend__msg *m)
{
    sqlite3_stmt *st = b->st_item;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, m->item_id);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, m->tag_quantity);
    if (m->device_id)
        sqlite3_bind_text(st, 4, m->device_id, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, m->wall_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        b->r.sql_errors++;
    sqlite3_reset(st);
}

/*
 * The backend thread. The ledger keeps one transaction open for up to BACKEND_COMMIT_MS
 * while batches keep coming: a commit per message would cap a file ledger at a few thousand
 * a second, and even in memory a commit per batch cost more than the inserts. Counters are
 * updated at once; the statements of the one connection see their own open transaction;
 * stop commits what is open.
 */
void *backend__worker(void *arg)
{
    struct hx_backend *b = arg;
    const int64_t commit_us = BACKEND_COMMIT_MS * 1000;
    bool in_txn = false;
    int64_t txn_start = 0;
    for (;;) {
        pthread_mutex_lock(&b->qlock);
        while (!b->head && !b->stopping && in_txn) {
            struct timespec dl;
            int64_t left_us = txn_start + commit_us - (int64_t)sim_clock_us();
            if (left_us <= 0)
                break;
            sim_clock_deadline(&dl, (int)((left_us + 999) / 1000));
            if (pthread_cond_timedwait(&b->qcond, &b->qlock, &dl) != 0)
                break;
        }
        while (!b->head && !b->stopping && !in_txn)
            pthread_cond_wait(&b->qcond, &b->qlock);
        struct backend__msg *batch = b->head;
        b->head = b->tail = NULL;
        bool stopping = b->stopping;
        pthread_mutex_unlock(&b->qlock);

        uint64_t n = 0;
        pthread_mutex_lock(&b->lock);
        b->replies = NULL;
        b->replies_tail = &b->replies;
        int64_t t0 = (int64_t)sim_clock_us();
        if (batch && !in_txn) {
            backend__sql_run(b, b->st_begin);
            in_txn = true;
            txn_start = t0;
        }
        for (struct backend__msg *m = batch; m; m = m->next, n++) {
            switch (m->kind) {
            case MSG_REGISTRATION: backend__process_registration(b, m); break;
            case MSG_QUERY: backend__process_query(b, m); break;
            case MSG_ITEM: backend__process_item(b, m); break;
            }
        }
        if (in_txn && (stopping || !batch || (int64_t)sim_clock_us() - txn_start >= commit_us)) {
            backend__sql_run(b, b->st_commit);
            in_txn = false;
            b->r.ledger_batches++;
        }
        b->r.ledger_busy_ms += (double)((int64_t)sim_clock_us() - t0) / 1000.0;
        struct backend__reply *replies = b->replies;
        b->replies = NULL;
        if (!replies) {
            b->done += n;
            pthread_cond_broadcast(&b->changed);
        }
        pthread_mutex_unlock(&b->lock);
        if (replies) {
            uint64_t sent = 0;
            while (replies) {
                struct backend__reply *next = replies->next;
                if (backend__send(b, replies->topic, replies->payload, replies->len, b->qos) ==
                    HX_OK)
                    sent++;
                free(replies);
                replies = next;
            }
            pthread_mutex_lock(&b->lock);
            b->r.inventory_answered += sent;
            b->done += n;
            pthread_cond_broadcast(&b->changed);
            pthread_mutex_unlock(&b->lock);
        }
        while (batch) {
            struct backend__msg *next = batch->next;
            free(batch);
            batch = next;
        }
        if (stopping && !in_txn) {
            pthread_mutex_lock(&b->qlock);
            bool empty = !b->head;
            pthread_mutex_unlock(&b->qlock);
            if (empty)
                break;
        }
        /* Under load, messages come faster than one wake-up each can pay for: let them
           gather for the rest of BACKEND_BATCH_US (an idle thread still takes the first at
           once). Fewer wake-ups of this thread, and of the edge's thread signalling it. */
        int64_t rest_us = t0 + BACKEND_BATCH_US - (int64_t)sim_clock_us();
        if (n > 0 && !stopping && rest_us > 0)
            nanosleep(&(struct timespec){0, (long)rest_us * 1000L}, NULL);
    }
    return NULL;
}

void backend__enqueue(struct hx_backend *b, struct backend__msg *m)
{
    pthread_mutex_lock(&b->qlock);
    m->next = NULL;
    bool was_empty = !b->head;
    if (b->tail)
        b->tail->next = m;
    else
        b->head = m;
    b->tail = m;
    b->enqueued++;
    if (was_empty)
        pthread_cond_signal(&b->qcond);
    pthread_mutex_unlock(&b->qlock);
}
