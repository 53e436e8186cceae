//! Runs statements through SQLite's C API: the queries that return thousands of rows
//! (`lcurve show`, `compare`, reports) on a pooled connection's own handle, under one lock
//! of it ([`Locked`]), and every write's transaction, and a run's reads, on the store's own
//! connection ([`Writer`]).
//!
//! sqlx copies every value of every row (a `sqlite3_value_dup`, so a malloc each) and sends
//! each row through a channel from its worker thread: on 10,000 trials with 15 columns that
//! was 50-95 ms of `lcurve show`'s time, against about 15 ms for SQLite to run the query.
//! Here the caller's closure reads each row in place while the statement steps.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{CStr, c_int};
use std::fmt;

use libsqlite3_sys as ffi;
use sqlx::SqliteConnection;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::sqlite::LockedSqliteHandle;

use super::StoreError;

/// One result row, valid only inside the closure it is passed to.
pub(crate) struct RawRow<'s> {
    stmt: &'s Statement,
}

impl RawRow<'_> {
    fn index(&self, name: &str) -> Result<c_int, StoreError> {
        self.stmt
            .names
            .iter()
            .position(|n| n == name)
            .map(|i| i as c_int)
            .ok_or_else(|| StoreError::Corrupt(format!("the query has no column {name:?}")))
    }

    fn is_null(&self, i: c_int) -> bool {
        // SAFETY: `stmt` is a live statement positioned on a row (see `rows`), and `i` is one
        // of its columns.
        unsafe { ffi::sqlite3_column_type(self.stmt.raw, i) == ffi::SQLITE_NULL }
    }

    /// The integer in column `name`, or `None` for NULL.
    pub fn int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let i = self.index(name)?;
        // SAFETY: as in `is_null`.
        Ok((!self.is_null(i)).then(|| unsafe { ffi::sqlite3_column_int64(self.stmt.raw, i) }))
    }

    /// The integer in column `name`, which must not be NULL.
    pub fn int_required(&self, name: &str) -> Result<i64, StoreError> {
        self.int(name)?.ok_or_else(|| null_in(name))
    }

    /// The text in column `name`, which must not be NULL.
    pub fn text_required(&self, name: &str) -> Result<&str, StoreError> {
        self.text(name)?.ok_or_else(|| null_in(name))
    }

    /// The real in column `name`, or `None` for NULL.
    pub fn real(&self, name: &str) -> Result<Option<f64>, StoreError> {
        let i = self.index(name)?;
        // SAFETY: as in `is_null`.
        Ok((!self.is_null(i)).then(|| unsafe { ffi::sqlite3_column_double(self.stmt.raw, i) }))
    }

    /// The text in column `name`, or `None` for NULL; borrowed until the next row.
    pub fn text(&self, name: &str) -> Result<Option<&str>, StoreError> {
        let i = self.index(name)?;
        if self.is_null(i) {
            return Ok(None);
        }
        // SAFETY: as in `is_null`; SQLite keeps the text (of `len` bytes) until the statement
        // steps or is finalized, which cannot happen while this row is borrowed.
        let bytes = unsafe {
            let ptr = ffi::sqlite3_column_text(self.stmt.raw, i);
            let len = ffi::sqlite3_column_bytes(self.stmt.raw, i);
            if ptr.is_null() {
                return Ok(Some(""));
            }
            std::slice::from_raw_parts(ptr, len as usize)
        };
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("column {name:?} is not UTF-8: {e}")))
    }
}

fn null_in(column: &str) -> StoreError {
    StoreError::Corrupt(format!("column {column:?} is NULL"))
}

/// A prepared statement, finalized on drop.
struct Statement {
    raw: *mut ffi::sqlite3_stmt,
    names: Vec<String>,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `raw` came from sqlite3_prepare_v2 and is finalized once, here.
        unsafe { ffi::sqlite3_finalize(self.raw) };
    }
}

/// A connection's own handle, locked for the caller: sqlx's worker thread makes no calls on
/// it until this is dropped, and every call here runs on the calling thread. Taking the lock
/// is one round trip to that thread, and so is every statement run through sqlx (each a
/// wake-up of two threads), so a transaction of many statements runs here under one lock.
/// Statements are prepared once per lock; on a [`Writer`], once per connection.
pub(crate) struct Locked<'c> {
    /// Those of this lock alone are finalized (dropped) before the lock is released:
    /// declared first.
    statements: Cache<'c>,
    db: *mut ffi::sqlite3,
    /// `None` on a [`Writer`], which no other thread uses.
    _handle: Option<LockedSqliteHandle<'c>>,
}

/// The statements a [`Locked`] prepares: its own, or those its connection keeps.
enum Cache<'c> {
    Own(HashMap<String, Statement>),
    Kept(&'c mut HashMap<String, Statement>),
}

/// A connection opened through SQLite's C API, which this process uses for nothing else:
/// the store writes through it. It keeps the statements it prepared from one transaction to
/// the next. Through a pooled connection, each commit prepared every statement again, read
/// the schema on each connection's first use, and took the handle's lock from sqlx's
/// thread: 2.1 ms of CPU per digits sweep (of 17 ms of commits) beside the training. Taking
/// that lock again right after releasing it, as a writer would, hung within 2,000
/// transactions (sqlx 0.8.6's worker thread and the caller each waited for the other).
pub(crate) struct Writer {
    /// Finalized before the connection closes (SQLite refuses to close it otherwise):
    /// declared first.
    statements: HashMap<String, Statement>,
    db: *mut ffi::sqlite3,
}

// SAFETY: SQLite lets a connection opened with SQLITE_OPEN_NOMUTEX, and its statements, be
// used from any thread, one thread at a time; `&mut self` on every use makes that so.
unsafe impl Send for Writer {}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Writer({} prepared statements)", self.statements.len())
    }
}

impl Writer {
    /// Opens the existing database at `path` to read and write, runs `pragmas` on it (the
    /// settings the caller gives its other connections), and waits up to `busy` for a lock.
    pub fn open(
        path: &std::path::Path,
        busy: std::time::Duration,
        pragmas: &[&str],
    ) -> Result<Self, StoreError> {
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| StoreError::Corrupt(format!("a NUL in the path {}", path.display())))?;
        let mut db = std::ptr::null_mut();
        // SAFETY: `name` is a NUL-terminated path; SQLite writes the handle to `db`, also on
        // failure, when it must still be closed (by `Writer`'s drop below).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                name.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            )
        };
        let writer = Self {
            statements: HashMap::new(),
            db,
        };
        if db.is_null() {
            return Err(StoreError::Corrupt(format!(
                "SQLite could not open {} (out of memory)",
                path.display()
            )));
        }
        check(db, rc)?;
        // SAFETY: `db` is open; both calls take plain integers.
        unsafe {
            ffi::sqlite3_extended_result_codes(db, 1);
            ffi::sqlite3_busy_timeout(db, c_int::try_from(busy.as_millis()).unwrap_or(c_int::MAX));
        }
        // Run once: not kept.
        let mut once = Locked {
            statements: Cache::Own(HashMap::new()),
            db,
            _handle: None,
        };
        for pragma in pragmas {
            once.rows(pragma, &[], |_| Ok(()))?;
        }
        drop(once);
        Ok(writer)
    }

    /// The connection, for one caller at a time.
    pub fn lock(&mut self) -> Locked<'_> {
        Locked {
            statements: Cache::Kept(&mut self.statements),
            db: self.db,
            _handle: None,
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.statements.clear();
        // SAFETY: `db` came from sqlite3_open_v2 and is closed once, here, after its
        // statements were finalized.
        unsafe { ffi::sqlite3_close(self.db) };
    }
}

impl<'c> Locked<'c> {
    pub async fn lock(conn: &'c mut SqliteConnection) -> Result<Self, StoreError> {
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        Ok(Self {
            statements: Cache::Own(HashMap::new()),
            db,
            _handle: Some(handle),
        })
    }

    /// The prepared statement for `sql`, reset and with no values bound.
    fn statement(&mut self, sql: &str) -> Result<&Statement, StoreError> {
        let statements = match &mut self.statements {
            Cache::Own(own) => own,
            Cache::Kept(kept) => &mut **kept,
        };
        if !statements.contains_key(sql) {
            let stmt = prepare(self.db, sql)?;
            statements.insert(sql.to_string(), stmt);
        }
        Ok(&statements[sql])
    }

    /// Runs `sql` with `binds` (`?1`, `?2`, ... or `?` in order) and maps every row it
    /// returns with `each`.
    pub fn rows<T>(
        &mut self,
        sql: &str,
        binds: &[Bind],
        mut each: impl FnMut(&RawRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let db = self.db;
        let stmt = self.statement(sql)?;
        let _reset = Reset(stmt);
        bind(db, stmt, binds)?;
        let mut out = Vec::new();
        loop {
            // SAFETY: `stmt` is live and belongs to `db`, which only this caller uses while
            // it is locked.
            match unsafe { ffi::sqlite3_step(stmt.raw) } {
                ffi::SQLITE_ROW => out.push(each(&RawRow { stmt })?),
                ffi::SQLITE_DONE => return Ok(out),
                rc => return Err(error(db, rc)),
            }
        }
    }

    /// Runs `sql` with `binds` to its end; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, binds: &[Bind]) -> Result<usize, StoreError> {
        self.rows(sql, binds, |_| Ok(()))?;
        // SAFETY: `db` is open and only this caller uses it while it is locked; the count is
        // of the statement that just ran on it.
        let changed = unsafe { ffi::sqlite3_changes64(self.db) };
        Ok(usize::try_from(changed).unwrap_or(0))
    }

    /// Inserts `rows` as `{head} VALUES (?, ...), (?, ...) ... {tail}` (`tail`, e.g. an ON
    /// CONFLICT clause, may be empty), in statements of [`STATEMENT_SIZES`] rows, the largest
    /// that fit first (so the statements are few, and a kept connection prepares each once).
    /// Through sqlx, every batch size was a statement prepared anew and each call a round
    /// trip to its thread: the digits sweep's commits of its steps and metrics took 100 ms.
    /// Returns how many rows the statements inserted or changed (SQLite's `changes()`: a row
    /// an ON CONFLICT DO NOTHING skipped does not count).
    pub fn insert_rows<const N: usize>(
        &mut self,
        (head, tail): (&str, &str),
        rows: &[[Bind<'_>; N]],
    ) -> Result<usize, StoreError> {
        let one = format!("({})", vec!["?"; N].join(", "));
        let sql = |count: usize| {
            format!(
                "{head} VALUES {} {tail}",
                vec![one.as_str(); count].join(", ")
            )
        };
        let mut changed = 0;
        let mut rest = rows;
        for size in STATEMENT_SIZES {
            if rest.len() < size {
                continue;
            }
            let sql = sql(size);
            let mut whole = rest.chunks_exact(size);
            for chunk in &mut whole {
                changed += self.execute(&sql, chunk.as_flattened())?;
            }
            rest = whole.remainder();
        }
        Ok(changed)
    }

    /// Runs `work` in a transaction that takes the write lock at once (BEGIN IMMEDIATE, so a
    /// read-then-write in it cannot race another writer), committed if `work` returns `Ok`
    /// and rolled back if it fails or panics. It cannot be cancelled half-way: it has no
    /// await point.
    pub fn immediate<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.execute("BEGIN IMMEDIATE", &[])?;
        let mut open = Open(Some(self));
        let this = open.0.as_mut().expect("set above");
        let out = work(this)?;
        this.execute("COMMIT", &[])?;
        open.0 = None;
        Ok(out)
    }
}

/// Rolls back the transaction `Locked::immediate` opened unless it was committed.
struct Open<'a, 'c>(Option<&'a mut Locked<'c>>);

impl Drop for Open<'_, '_> {
    fn drop(&mut self) {
        if let Some(locked) = self.0.take() {
            // SAFETY: `db` is open and locked for this thread. A failed rollback leaves
            // nothing to undo: SQLite has then rolled back already.
            unsafe {
                ffi::sqlite3_exec(
                    locked.db,
                    c"ROLLBACK".as_ptr(),
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
        }
    }
}

/// Resets a statement and clears its values when its run ends, however it ends.
struct Reset<'s>(&'s Statement);

impl Drop for Reset<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live. Reset's result repeats the last step's error,
        // which was reported there.
        unsafe {
            ffi::sqlite3_reset(self.0.raw);
            ffi::sqlite3_clear_bindings(self.0.raw);
        }
    }
}

/// A value to bind to a statement's parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bind<'a> {
    Int(i64),
    /// `None` binds NULL.
    Real(Option<f64>),
    Text(&'a str),
    Blob(&'a [u8]),
    Null,
}

impl<'a> Bind<'a> {
    /// `text` as TEXT, or NULL.
    pub(crate) fn text_or_null(text: Option<&'a str>) -> Self {
        text.map_or(Bind::Null, Bind::Text)
    }
}

/// Rows per INSERT statement in [`Locked::insert_rows`]: a multi-row VALUES list runs in one step,
/// which SQLite does faster than a step per row, but parsing it costs in proportion to its
/// length on every call. With 256, preparing was 6-7 ms of a digits sweep's 35-40 ms of
/// commits; with 64 the commits took 27-36 ms, and 1 M step rows still go in at 1.1-1.5 M/s.
const ROWS_PER_STATEMENT: usize = 64;

/// The statement sizes [`Locked::insert_rows`] uses, largest first. Rows that did not fill a
/// whole statement of 64 went in one at a time until 2026-12-03: the digits sweep's writes
/// (7 transactions, each with up to 63 such rows of each kind) took 17.7 ms of CPU against
/// 15.3 ms with these sizes (medians of 7 bench runs each, in turn; the runs' medians spread
/// 12.8-18.4 ms). One row per statement throughout took 26 ms.
const STATEMENT_SIZES: [usize; 4] = [ROWS_PER_STATEMENT, 16, 4, 1];

/// Binds `values` to `stmt`'s parameters in order.
fn bind(db: *mut ffi::sqlite3, stmt: &Statement, values: &[Bind<'_>]) -> Result<(), StoreError> {
    for (i, value) in values.iter().enumerate() {
        let i = i as c_int + 1;
        // SAFETY: `stmt` is live and only this caller uses `db` while it is locked; SQLite
        // copies text and blobs bound with SQLITE_TRANSIENT, and checks the index.
        let rc = unsafe {
            match *value {
                Bind::Int(v) => ffi::sqlite3_bind_int64(stmt.raw, i, v),
                Bind::Real(Some(v)) => ffi::sqlite3_bind_double(stmt.raw, i, v),
                Bind::Real(None) | Bind::Null => ffi::sqlite3_bind_null(stmt.raw, i),
                Bind::Text(t) => ffi::sqlite3_bind_text(
                    stmt.raw,
                    i,
                    t.as_ptr().cast(),
                    t.len() as c_int,
                    ffi::SQLITE_TRANSIENT(),
                ),
                Bind::Blob(b) => ffi::sqlite3_bind_blob(
                    stmt.raw,
                    i,
                    b.as_ptr().cast(),
                    b.len() as c_int,
                    ffi::SQLITE_TRANSIENT(),
                ),
            }
        };
        check(db, rc)?;
    }
    Ok(())
}

fn prepare(db: *mut ffi::sqlite3, sql: &str) -> Result<Statement, StoreError> {
    let mut raw = std::ptr::null_mut();
    // SAFETY: `db` is an open connection; SQLite reads `sql.len()` bytes of `sql` (no NUL
    // needed when the length is given) and writes the statement to `raw`.
    let rc = unsafe {
        ffi::sqlite3_prepare_v2(
            db,
            sql.as_ptr().cast(),
            sql.len() as c_int,
            &mut raw,
            std::ptr::null_mut(),
        )
    };
    check(db, rc)?;
    if raw.is_null() {
        return Err(StoreError::Corrupt(format!("no statement in {sql:?}")));
    }
    // SAFETY: `raw` is a live statement; column names are NUL-terminated UTF-8 strings that
    // are copied before anything else runs on it.
    let names = unsafe {
        (0..ffi::sqlite3_column_count(raw))
            .map(|i| {
                let name = ffi::sqlite3_column_name(raw, i);
                if name.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(name).to_string_lossy().into_owned()
                }
            })
            .collect()
    };
    Ok(Statement { raw, names })
}

fn check(db: *mut ffi::sqlite3, rc: c_int) -> Result<(), StoreError> {
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(error(db, rc))
    }
}

/// SQLite's error for `rc` on `db`, as the sqlx error the rest of the store reports.
fn error(db: *mut ffi::sqlite3, rc: c_int) -> StoreError {
    // SAFETY: `db` is open; the message is a NUL-terminated string copied at once.
    let message = unsafe {
        let m = ffi::sqlite3_errmsg(db);
        if m.is_null() {
            format!("SQLite error {rc}")
        } else {
            CStr::from_ptr(m).to_string_lossy().into_owned()
        }
    };
    StoreError::Sql(sqlx::Error::Database(Box::new(RawError {
        code: rc,
        message,
    })))
}

/// An SQLite error from this module, carrying its result code as sqlx's own errors do.
#[derive(Debug)]
struct RawError {
    code: c_int,
    message: String,
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for RawError {}

impl DatabaseError for RawError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::SqlitePool;

    /// Runs `sql` with `binds` (integers) on a connection of `pool`, mapping every row.
    async fn rows<T>(
        pool: &SqlitePool,
        sql: &str,
        binds: &[i64],
        each: impl FnMut(&RawRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut conn = pool.acquire().await?;
        let binds: Vec<Bind> = binds.iter().map(|v| Bind::Int(*v)).collect();
        Locked::lock(&mut conn).await?.rows(sql, &binds, each)
    }

    #[tokio::test]
    async fn insert_rows_writes_full_and_partial_statements_and_reports_conflicts() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, x REAL, s TEXT)")
            .execute(&mut *conn)
            .await
            .unwrap();
        // Two statements of 64 rows, one of 16, two of 4, three of 1.
        let n = 2 * ROWS_PER_STATEMENT + 16 + 2 * 4 + 3;
        let rows: Vec<[Bind; 3]> = (0..n as i64)
            .map(|k| {
                let x = (k % 3 != 0).then_some(k as f64 / 4.0);
                [
                    Bind::Int(k),
                    Bind::Real(x),
                    Bind::Text(if k % 2 == 0 { "é" } else { "" }),
                ]
            })
            .collect();
        let mut db = Locked::lock(&mut conn).await.unwrap();
        let inserted = db
            .immediate(|db| db.insert_rows(("INSERT INTO t (k, x, s)", ""), &rows))
            .unwrap();
        assert_eq!(inserted, n);
        let Cache::Own(prepared) = &db.statements else {
            panic!("a pooled connection's statements are its own")
        };
        let mut sizes: Vec<usize> = prepared
            .keys()
            .filter(|sql| sql.starts_with("INSERT"))
            .map(|sql| sql.matches("(?").count())
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 4, 16, 64], "one statement of each size");
        let got = db
            .rows("SELECT k, x, s FROM t ORDER BY k", &[], |r| {
                Ok((
                    r.int_required("k")?,
                    r.real("x")?,
                    r.text_required("s")?.to_string(),
                ))
            })
            .unwrap();
        assert_eq!(got.len(), n);
        for (k, x, s) in got {
            assert_eq!(x, (k % 3 != 0).then_some(k as f64 / 4.0));
            assert_eq!(s, if k % 2 == 0 { "é" } else { "" });
        }
        // The same keys again: the primary key refuses them, with SQLite's code.
        match db.insert_rows(("INSERT INTO t (k, x, s)", ""), &rows[..2]) {
            Err(StoreError::Sql(e)) => {
                let code = e.as_database_error().and_then(|d| d.code()).unwrap();
                assert_eq!(
                    code.parse::<i64>().unwrap() & 0xff,
                    19,
                    "SQLITE_CONSTRAINT: {e}"
                );
            }
            other => panic!("{other:?}"),
        }
        // With an upsert clause they replace the stored values.
        let upsert = (
            "INSERT INTO t (k, x, s)",
            "ON CONFLICT (k) DO UPDATE SET s = excluded.s",
        );
        let again = [[Bind::Int(0), Bind::Real(None), Bind::Text("new")]];
        assert_eq!(db.insert_rows(upsert, &again).unwrap(), 1);
        // Rows skipped by DO NOTHING are not counted; new ones are.
        let skip = ("INSERT INTO t (k, x, s)", "ON CONFLICT (k) DO NOTHING");
        let mixed = [
            [Bind::Int(1), Bind::Real(None), Bind::Text("old key")],
            [Bind::Int(-1), Bind::Real(None), Bind::Text("new key")],
        ];
        assert_eq!(db.insert_rows(skip, &mixed).unwrap(), 1);
        drop(db);
        let s: String = sqlx::query_scalar("SELECT s FROM t WHERE k = 0")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(s, "new");
    }

    #[tokio::test]
    async fn a_writer_prepares_each_statement_once_and_writes_beside_sqlx() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let pool = SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        let pragmas = ["PRAGMA journal_mode = WAL"];
        let mut writer = Writer::open(&path, std::time::Duration::from_secs(5), &pragmas).unwrap();
        let insert = "INSERT INTO t (k) VALUES (?)";
        let mut prepared = Vec::new();
        for k in 0..3 {
            writer
                .lock()
                .immediate(|db| db.execute(insert, &[Bind::Int(k)]))
                .unwrap();
            prepared.push(writer.statements[insert].raw);
        }
        // One statement each served all three transactions; the pragmas were not kept.
        let mut sqls: Vec<&str> = writer.statements.keys().map(String::as_str).collect();
        sqls.sort_unstable();
        assert_eq!(sqls, ["BEGIN IMMEDIATE", "COMMIT", insert]);
        assert!(prepared.iter().all(|&p| p == prepared[0]));
        // The file is in WAL mode, and sqlx's connections read what the writer wrote.
        let mode: Vec<String> = writer
            .lock()
            .rows("PRAGMA journal_mode", &[], |r| {
                Ok(r.text_required("journal_mode")?.to_string())
            })
            .unwrap();
        assert_eq!(mode, ["wal"]);
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 3);
        // A failed statement is an error with SQLite's message, and the writer goes on.
        let failed = writer
            .lock()
            .immediate(|db| db.execute(insert, &[Bind::Int(1)]));
        assert!(
            matches!(&failed, Err(StoreError::Sql(e)) if e.to_string().contains("UNIQUE")),
            "{failed:?}"
        );
        drop(writer);
        pool.close().await;
    }

    #[tokio::test]
    async fn a_failed_or_panicking_transaction_leaves_nothing_behind() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)")
            .execute(&mut *conn)
            .await
            .unwrap();
        let mut db = Locked::lock(&mut conn).await.unwrap();
        let insert = "INSERT INTO t (k, b) VALUES (?, ?)";
        // The second insert fails (the same key): the first is rolled back with it.
        let failed = db.immediate(|db| {
            db.execute(insert, &[Bind::Int(1), Bind::Blob(b"a")])?;
            db.execute(insert, &[Bind::Int(1), Bind::Blob(b"b")])
        });
        assert!(matches!(failed, Err(StoreError::Sql(_))), "{failed:?}");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.immediate::<()>(|db| {
                db.execute(insert, &[Bind::Int(2), Bind::Blob(b"c")])?;
                panic!("a bug in the middle of a transaction")
            })
        }));
        assert!(panicked.is_err());
        let count =
            |db: &mut Locked| db.rows("SELECT count(*) AS n FROM t", &[], |r| r.int_required("n"));
        assert_eq!(count(&mut db).unwrap(), [0]);
        // The connection is usable again, outside any transaction, and blobs read back.
        let added = db.immediate(|db| db.execute(insert, &[Bind::Int(3), Bind::Blob(&[0, 255])]));
        assert_eq!(added.unwrap(), 1);
        drop(db);
        let (b, autocommit): (Vec<u8>, i64) = sqlx::query_as("SELECT b, 1 FROM t WHERE k = 3")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!((b, autocommit), (vec![0, 255], 1));
        // sqlx can open a transaction of its own on it: none is left open.
        use sqlx::Connection;
        let tx = conn.begin().await.unwrap();
        tx.rollback().await.unwrap();
    }

    #[tokio::test]
    async fn rows_read_every_type_and_report_sqlite_errors_with_their_code() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let got = rows(
            &pool,
            "SELECT ?1 AS i, 0.1 + ?2 AS r, 'héllo' AS t, NULL AS n UNION ALL SELECT 2, 1.5, '', NULL",
            &[7, 1],
            |r| {
                Ok((
                    r.int_required("i")?,
                    r.real("r")?,
                    r.text_required("t")?.to_string(),
                    (r.int("n")?, r.real("n")?, r.text("n")?.is_none()),
                ))
            },
        )
        .await
        .unwrap();
        assert_eq!(
            got,
            [
                (7, Some(1.1), "héllo".to_string(), (None, None, true)),
                (2, Some(1.5), String::new(), (None, None, true)),
            ]
        );
        let null = rows(&pool, "SELECT NULL AS id", &[], |r| r.int_required("id")).await;
        assert!(matches!(null, Err(StoreError::Corrupt(m)) if m.contains("\"id\" is NULL")));
        let unknown = rows(&pool, "SELECT 1 AS id", &[], |r| r.int_required("ID2")).await;
        assert!(matches!(unknown, Err(StoreError::Corrupt(m)) if m.contains("no column \"ID2\"")));
        match rows(&pool, "SELECT * FROM nowhere", &[], |_| Ok(())).await {
            Err(StoreError::Sql(e)) => {
                let db = e.as_database_error().expect("a database error");
                assert_eq!(db.code().as_deref(), Some("1"));
                assert!(db.message().contains("no such table: nowhere"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
}
