/* SPDX-License-Identifier: MIT */
/* SQLite connections: a small pool borrowed by tasks, and the schema. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "sqlite_store.h"

/*
 * Why a pool and not one connection behind a mutex: with WAL, readers
 * (POP3 opening a mailbox, reading a message) proceed while a delivery
 * writes, so pool threads must not queue behind one connection. Why not
 * one per thread: the pool threads belong to the core and outlive this
 * module's generation. A task borrows a connection for its whole run,
 * so each is used by one thread at a time (SQLITE_OPEN_NOMUTEX is
 * enough), and there are never more than the pool has threads.
 */

/* Cap the WAL file after each checkpoint (it is reused, not regrown). */
#define SQLITE_WAL_LIMIT (64 * 1024 * 1024)

static const char sqlite_schema[] =
    "BEGIN IMMEDIATE;"
    "CREATE TABLE IF NOT EXISTS meta ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS users ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL UNIQUE,"
    " used_bytes INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " folder TEXT NOT NULL DEFAULT '',"
    " uid TEXT NOT NULL UNIQUE,"
    " size INTEGER NOT NULL,"
    " envelope_from TEXT NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " body BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS messages_by_user"
    " ON messages(user_id, folder, id);"
    "INSERT OR IGNORE INTO meta(key, value)"
    " VALUES('schema_version', '1');"
    "INSERT OR IGNORE INTO meta(key, value)"
    " VALUES('uid_prefix', lower(hex(randomblob(4))));"
    "COMMIT;";

int
sqlite_exec(struct sqlite_conn *c, const char *sql, struct sqlite_outcome *res)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return sqlite_outcome_db(res, c->db, rc, "exec");
	return PTL_OK;
}

/*
 * Errors that say nothing about the connection itself; after any other
 * (corruption, I/O, a replaced file) it is closed and the next task
 * opens a fresh one.
 */
bool
sqlite_rc_healthy(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_CONSTRAINT:
	case SQLITE_TOOBIG:
		return true;
	default:
		return false;
	}
}

/* mkdir -p of the database's directory (a missing one is not an error). */
static int
sqlite_make_dir(const char *db_path, struct sqlite_outcome *res)
{
	char dir[PATH_MAX];
	char *slash;
	size_t len = strlen(db_path);

	if (len >= sizeof(dir))
		return sqlite_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                          "database path is too long");
	memcpy(dir, db_path, len + 1);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return PTL_OK;
	*slash = '\0';
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return sqlite_outcome_errno(res, errno, "mkdir %s",
			                            dir);
		*p = '/';
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sqlite_outcome_errno(res, errno, "mkdir %s", dir);
	return PTL_OK;
}

/* A new database file is durable only once its directory entry is. */
static int
sqlite_sync_parent(const char *db_path, struct sqlite_outcome *res)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	if (snprintf(dir, sizeof(dir), "%s", db_path) >= (int)sizeof(dir))
		return sqlite_outcome_set(res, PTL_STORAGE_PERMFAIL,
		                          "database path is too long");
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return PTL_OK;
	slash[slash == dir ? 1 : 0] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sqlite_outcome_errno(res, errno, "open %s", dir);
	if (fsync(fd) != 0) {
		int e = errno;

		close(fd);
		return sqlite_outcome_errno(res, e, "fsync %s", dir);
	}
	close(fd);
	return PTL_OK;
}

static int
sqlite_load_prefix(struct sqlite_conn *c, struct sqlite_outcome *res)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *v;
	int rc;

	rc = sqlite3_prepare_v2(
	    c->db, "SELECT value FROM meta WHERE key = 'uid_prefix'", -1, &st,
	    NULL);
	if (rc != SQLITE_OK)
		return sqlite_outcome_db(res, c->db, rc, "uid prefix");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			sqlite_outcome_set(res, PTL_STORAGE_TEMPFAIL,
			                   "database has no uid_prefix in its "
			                   "meta table");
		else
			sqlite_outcome_db(res, c->db, rc, "uid prefix");
		sqlite3_finalize(st);
		return PTL_ERROR;
	}
	v = sqlite3_column_text(st, 0);
	snprintf(c->uid_prefix, sizeof(c->uid_prefix), "%s",
	         v != NULL ? (const char *)v : "0");
	sqlite3_finalize(st);
	return PTL_OK;
}

static struct sqlite_conn *
sqlite_conn_open(struct sqlite_instance *si, struct sqlite_outcome *res)
{
	const char *path = si->conf->path;
	char pragmas[160];
	struct sqlite_conn *c;
	struct stat st;
	bool created;
	int rc;

	if (sqlite_make_dir(path, res) != PTL_OK)
		return NULL;
	created = stat(path, &st) != 0 && errno == ENOENT;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		sqlite_outcome_set(res, PTL_STORAGE_TEMPFAIL, "out of memory");
		return NULL;
	}
	rc = sqlite3_open_v2(path, &c->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                         SQLITE_OPEN_NOMUTEX,
	                     NULL);
	if (rc != SQLITE_OK) {
		sqlite_outcome_set(
		    res, PTL_STORAGE_TEMPFAIL, "database %s: %s", path,
		    c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, si->conf->busy_timeout > INT32_MAX
	                                ? INT32_MAX
	                                : (int)si->conf->busy_timeout);
	/*
	 * synchronous=FULL: in WAL mode each commit fsyncs the WAL, which
	 * is what makes a delivery durable when it is reported.
	 */
	snprintf(pragmas, sizeof(pragmas),
	         "PRAGMA journal_mode=WAL;"
	         "PRAGMA synchronous=FULL;"
	         "PRAGMA foreign_keys=ON;"
	         "PRAGMA journal_size_limit=%d;",
	         SQLITE_WAL_LIMIT);
	rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, sqlite_schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite_outcome_set(res, PTL_STORAGE_TEMPFAIL, "database %s: %s",
		                   path, sqlite3_errmsg(c->db));
		goto fail;
	}
	if (sqlite_load_prefix(c, res) != PTL_OK)
		goto fail;
	if (created && sqlite_sync_parent(path, res) != PTL_OK)
		goto fail;
	return c;

fail:
	sqlite3_close_v2(c->db);
	free(c);
	return NULL;
}

struct sqlite_conn *
sqlite_conn_get(struct sqlite_instance *si, struct sqlite_outcome *res)
{
	struct sqlite_conn *c;

	pthread_mutex_lock(&si->lock);
	c = si->idle;
	if (c != NULL)
		si->idle = c->next;
	pthread_mutex_unlock(&si->lock);
	if (c != NULL)
		return c;
	return sqlite_conn_open(si, res);
}

void
sqlite_conn_put(struct sqlite_instance *si, struct sqlite_conn *c, bool healthy)
{
	if (c == NULL)
		return;
	/* Never hand on a connection stuck inside a transaction. */
	if (healthy && !sqlite3_get_autocommit(c->db))
		healthy = sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL) ==
		          SQLITE_OK;
	if (!healthy) {
		sqlite3_close_v2(c->db);
		free(c);
		return;
	}
	pthread_mutex_lock(&si->lock);
	c->next = si->idle;
	si->idle = c;
	pthread_mutex_unlock(&si->lock);
}

void
sqlite_conn_close_all(struct sqlite_instance *si)
{
	struct sqlite_conn *c, *next;

	pthread_mutex_lock(&si->lock);
	c = si->idle;
	si->idle = NULL;
	pthread_mutex_unlock(&si->lock);
	for (; c != NULL; c = next) {
		next = c->next;
		sqlite3_close_v2(c->db);
		free(c);
	}
}
