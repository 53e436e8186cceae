//! The SQLite store: one database file in WAL mode, migrations from `migrations/`, batched
//! writes in single transactions.

use std::collections::HashMap;
use std::ffi::c_int;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, Sqlite, Transaction};

use super::raw::{self, Bind, Locked, RawRow};
use super::*;

/// The schema migrations in `migrations/`, compiled in.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a connection that writes waits for another's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many checkpoints `settle_soon` tries at most (the pauses between them add up to
/// 446 ms).
const SETTLE_TRIES: usize = 12;

/// [`SqliteStore::options`]' settings as the store's own writing connection runs them (see
/// [`raw::Writer`]): change both together. One more is the writer's alone: it does not
/// evaluate the schema's CHECK constraints. Those on `metrics.kind`, `decisions.action` and
/// `trials.state` are `IN` lists of 4-6 strings, which SQLite evaluates by building a
/// temporary index of the list for every row written: a fifth of the CPU time of the digits
/// sweep's commits (`-- store` bench, 5 runs each: 10.4-10.7 ms of CPU against 8.0-8.2 ms;
/// 64-epoch transactions 541-561k against 664-786k metric rows/s). The writer only ever
/// writes those columns from Rust enums (`as_str`), and `sweeps.data` (whose CHECK is
/// `json_valid`) from `serde_json`. Every other connection (the pool's, `sqlite3`, a user's
/// script) still enforces them, and `PRAGMA integrity_check`, which checks them, passes
/// after every kind, action and state is written (tests/it/store.rs).
const WRITER_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA ignore_check_constraints = ON",
];

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The file, for a store opened to write: see [`SqliteStore::close`].
    path: Option<std::path::PathBuf>,
    /// The connection every write goes through, opened at the first write (see
    /// [`raw::Writer`]).
    writer: Arc<tokio::sync::Mutex<Option<raw::Writer>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !folder.is_dir()
        {
            return Err(StoreError::Open {
                path: shown,
                why: format!(
                    "the folder {} does not exist; create it, or pass another --db",
                    folder.display()
                ),
            });
        }
        configure_sqlite();
        let copied = !path.exists() && create_from_template(path);
        if !copied {
            Self::look(path).await?;
        }
        let options = Self::options(path).create_if_missing(true);
        let pool = pool_options()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| open_error(&shown, e))?;
        if copied {
            // The template's migrations were recorded when it was made; this file's are now.
            let recorded: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "UPDATE _sqlx_migrations SET installed_on = CURRENT_TIMESTAMP
                 RETURNING version, checksum",
            )
            .fetch_all(&pool)
            .await
            .map_err(|e| open_error(&shown, e))?;
            // A copy holding every migration as this lcurve knows it needs nothing more: the
            // migrator would only read them again (0.3-0.8 ms of each new database's start).
            if holds_every_migration(&recorded) {
                return Ok(Self::writing(pool, path));
            }
        }
        // Applies what the file lacks: every migration for a new file that is not a copy of
        // the template, those newer than the template (if it is out of date) for a copy.
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::VersionMissing(version) => StoreError::NewerSchema {
                path: shown.clone(),
                version,
            },
            sqlx::migrate::MigrateError::Execute(e) => open_error(&shown, e),
            other => StoreError::Migrate(other),
        })?;
        Ok(Self::writing(pool, path))
    }

    fn writing(pool: SqlitePool, path: &Path) -> Self {
        Self {
            pool,
            path: Some(path.to_path_buf()),
            writer: Arc::default(),
        }
    }

    /// Runs `read` on the writing connection if it is open, else on a pooled one. The
    /// writing connection keeps its prepared statements and is used from the calling thread
    /// alone; a pooled one is locked for the caller by a round trip to sqlx's thread (two
    /// thread wake-ups) and prepares each statement again. A run's live redraws read through
    /// it while the sweep trains (4 reads each), and its final report, before drawing. A
    /// read waits for a commit under way (the digits sweep's take 1-2 ms).
    async fn read<T>(
        &self,
        read: impl FnOnce(&mut Locked) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Only a store opened to write ever opens the writer (see `write`).
        if let Some(writer) = self.writer.lock().await.as_mut() {
            return read(&mut writer.lock());
        }
        let mut conn = self.pool.acquire().await?;
        read(&mut Locked::lock(&mut conn).await?)
    }

    /// Runs `sql` with `binds` (integers) through [`SqliteStore::read`] and maps every row
    /// with `each`.
    async fn rows<T>(
        &self,
        sql: &str,
        binds: &[i64],
        each: impl FnMut(&RawRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let binds: Vec<Bind> = binds.iter().map(|v| Bind::Int(*v)).collect();
        self.read(|db| db.rows(sql, &binds, each)).await
    }

    /// Runs `work` in one transaction (see [`Locked::immediate`]) on the writing connection,
    /// which is opened at the first write (or on a pooled one, in a store opened to read).
    async fn write<T>(
        &self,
        work: impl FnOnce(&mut Locked) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(path) = &self.path else {
            let mut conn = self.pool.acquire().await?;
            return Locked::lock(&mut conn).await?.immediate(work);
        };
        let mut writer = self.writer.lock().await;
        let writer = match &mut *writer {
            Some(writer) => writer,
            empty => empty.insert(raw::Writer::open(path, BUSY_TIMEOUT, &WRITER_PRAGMAS)?),
        };
        writer.lock().immediate(work)
    }

    /// A first, read-only look at an existing file, which changes nothing in it: is it SQLite
    /// at all, and is its schema one this lcurve knows? Returns whether migrations are due.
    async fn look(path: &Path) -> Result<bool, StoreError> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Ok(true);
        }
        let mut probe = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .connect()
            .await
            .map_err(|e| open_error(&shown, e))?;
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .fetch_one(&mut probe)
            .await
            .map_err(|e| open_error(&shown, e))?;
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&mut probe)
                .await
                .unwrap_or(None);
        let _ = probe.close().await;
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        match newest {
            Some(version) if version > known => Err(StoreError::NewerSchema {
                path: shown,
                version,
            }),
            Some(version) => Ok(version < known),
            None => Ok(true),
        }
    }

    /// Opens an existing database for reading only; nothing can be written through it. A
    /// database from an older lcurve is upgraded first (that one step writes).
    pub async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        configure_sqlite();
        if Self::look(path).await? {
            Self::open(path).await?.pool.close().await;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = pool_options()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            path: None,
            writer: Arc::default(),
        })
    }

    /// The pool's connections' settings; the writing connection's are [`WRITER_PRAGMAS`].
    fn options(path: &Path) -> SqliteConnectOptions {
        // WAL lets readers (reports, `lcurve query`, sqlite3) run while a sweep writes; with
        // WAL, synchronous=NORMAL still never corrupts the file, and loses at most the last
        // commits on power loss, not on a process crash.
        SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
    }

    /// Closes every connection. The last one to close copies the write-ahead log into the
    /// database file and deletes the log, so the file alone holds everything again (without
    /// this the digits sweep's 1.9 MB stayed in `lcurve.db-wal` beside a 4 KB `lcurve.db`, and
    /// a copy of the file alone was empty).
    pub async fn close(self) {
        self.close_connections().await;
    }

    /// Closes the pool's connections. They close at once, each on its own thread, and where
    /// two tried at the same moment, neither was the last alone, so the log stayed (in about
    /// 1 of 30 quickstart runs when the store closed while the report drew): then one more
    /// connection is opened and closed, which is the last.
    async fn close_connections(&self) {
        drop(self.writer.lock().await.take());
        self.pool.close().await;
        // sqlx 0.8.6's `close` can return with a connection still open: one let go just
        // before goes back to the pool by a task of its own, and where it got there after
        // `close` last looked, it stayed among the idle ones, open, keeping the log (a test of
        // 2,000 commits left `-wal` behind in 43 of 200 runs; waiting alone, in 15 of 300).
        // Closing again closes it: until none is left, up to a second.
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.pool.size() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.pool.close().await;
        }
        let Some(path) = &self.path else { return };
        if beside(path, "-wal").exists()
            && let Ok(last) = Self::options(path).connect().await
        {
            let _ = last.close().await;
        }
    }

    /// One passive checkpoint on a pooled connection: copies every frame of the log that no
    /// reader still needs into the file, waiting for no one; whether it copied the whole
    /// log. A commit under way holds back its frames and those after them, or has SQLite
    /// answer busy at once; until the whole log is copied, the file alone is not a whole
    /// database (its first page may count pages still in the log).
    async fn checkpoint(&self) -> Result<bool, StoreError> {
        let (busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&self.pool)
            .await?;
        Ok(busy == 0 && copied == log)
    }

    /// The pool, for read-only ad-hoc queries (`lcurve query`).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_immediate(&self) -> Result<Transaction<'_, Sqlite>, StoreError> {
        // BEGIN IMMEDIATE takes the write lock at once, so read-then-write cannot race.
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Process-wide SQLite settings, made before its first connection (later calls change
/// nothing): no memory statistics, which lcurve never reads and which cost a lock of a
/// global mutex on every allocation SQLite makes (a few per inserted row).
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; before SQLite is initialized nothing
        // else runs in it, and after, the call only returns SQLITE_MISUSE.
        unsafe {
            libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0 as c_int)
        };
    });
}

/// A pool that hands out its connections without pinging each first (a round trip to its
/// sqlx thread on every acquire, which a local file does not need).
fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new().test_before_acquire(false)
}

/// The file SQLite keeps beside the database at `path` under `suffix` (`-wal`, `-journal`).
fn beside(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

/// An empty database with every migration in `migrations/` applied, as SQLite writes it (WAL
/// mode, vacuumed), which a new database file starts as: running the migrations took 8-20 ms
/// (SQLite parses the whole schema again after each ALTER TABLE and DROP VIEW), copying this
/// 2-4 ms. `store::sqlite::tests::the_schema_template_is_the_migrations` checks that it
/// matches the migrations and says how to write it again after adding one.
static SCHEMA_TEMPLATE: &[u8] = include_bytes!("schema.db");

/// Creates the database file at `path`, which did not exist, as a copy of
/// [`SCHEMA_TEMPLATE`]; returns whether it did. The copy is written beside, flushed to disk
/// (so a power cut cannot leave half a database) and linked into place, which fails if the
/// file has appeared meanwhile. Leaves everything to SQLite, returning false, if a log from
/// an earlier file of that name is still there (SQLite replays it), or the folder refuses.
fn create_from_template(path: &Path) -> bool {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return false;
    };
    if beside(path, "-wal").exists() || beside(path, "-journal").exists() {
        return false;
    }
    let tmp = path.with_file_name(format!(".{name}.{}.new", std::process::id()));
    let made = (|| {
        use std::io::Write;
        let mut file = std::fs::File::create_new(&tmp)?;
        file.write_all(SCHEMA_TEMPLATE)?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    made.is_ok()
}

/// Whether `recorded` (version and checksum of each migration a file records) is exactly
/// this lcurve's migrations.
fn holds_every_migration(recorded: &[(i64, Vec<u8>)]) -> bool {
    let mut known: Vec<(i64, &[u8])> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, &m.checksum[..]))
        .collect();
    let mut recorded: Vec<(i64, &[u8])> = recorded.iter().map(|(v, c)| (*v, &c[..])).collect();
    known.sort_unstable();
    recorded.sort_unstable();
    known == recorded
}

/// Says why a database could not be opened, in words a person can act on.
fn open_error(path: &str, e: sqlx::Error) -> StoreError {
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.to_string());
    let why = match code.as_deref() {
        // SQLITE_NOTADB
        Some("26") => "it is not an SQLite database (or it is damaged); pass another --db, or move the file away".to_string(),
        // SQLITE_CANTOPEN
        Some("14") => "SQLite cannot open or create it there; check that the folder is writable".to_string(),
        // SQLITE_READONLY
        Some("8") => "it is read-only; lcurve run needs to write to it".to_string(),
        _ => describe_sql(&e),
    };
    StoreError::Open {
        path: path.to_string(),
        why,
    }
}

fn int(n: usize) -> Result<i64, StoreError> {
    i64::try_from(n)
        .map_err(|_| StoreError::Corrupt(format!("{n} does not fit in a database integer")))
}

fn uint(n: i64) -> Result<usize, StoreError> {
    usize::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}

fn kind_of(x: f64) -> (&'static str, Option<f64>) {
    if x.is_nan() {
        ("nan", None)
    } else if x == f64::INFINITY {
        ("inf", Some(x))
    } else if x == f64::NEG_INFINITY {
        ("-inf", Some(x))
    } else {
        ("finite", Some(x))
    }
}

fn value_of(kind: &str, value: Option<f64>) -> Result<f64, StoreError> {
    match (kind, value) {
        ("nan", _) => Ok(f64::NAN),
        ("inf", _) => Ok(f64::INFINITY),
        ("-inf", _) => Ok(f64::NEG_INFINITY),
        ("finite", Some(v)) => Ok(v),
        (k, v) => Err(StoreError::Corrupt(format!(
            "metric kind {k:?} with value {v:?}"
        ))),
    }
}

fn config_of(json: &str) -> Result<TrialConfig, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("trial config {json}: {e}")))
}

impl Store for SqliteStore {
    async fn create_sweep(
        &self,
        spec: &SweepSpec,
        data: Option<&str>,
        replace: bool,
    ) -> Result<i64, StoreError> {
        let (json, hash) = (spec.to_json(), spec.hash());
        let name = spec.name.as_str();
        // Through the C API, in one transaction: through sqlx it was four round trips to
        // its thread.
        self.write(|db| {
            let existing = db.rows(
                "SELECT id, spec_hash, data FROM sweeps WHERE name = ?",
                &[Bind::Text(name)],
                |r| {
                    Ok((
                        r.int_required("id")?,
                        r.text_required("spec_hash")?.to_string(),
                        r.text("data")?.map(str::to_string),
                    ))
                },
            )?;
            if let Some((id, stored, stored_data)) = existing.into_iter().next() {
                let data_differs = match (&stored_data, data) {
                    (Some(old), Some(new)) => old != new,
                    _ => false,
                };
                if stored == hash && !data_differs {
                    // The same sweep: keep the latest file text (its comments may have
                    // changed), and the data record if an older lcurve stored none.
                    db.execute(
                        "UPDATE sweeps SET data = coalesce(data, ?), source = coalesce(?, source) WHERE id = ?",
                        &[
                            Bind::text_or_null(data),
                            Bind::text_or_null(spec.source.as_deref()),
                            Bind::Int(id),
                        ],
                    )?;
                    return Ok(id);
                }
                if stored == hash && !replace {
                    return Err(StoreError::DataChanged {
                        name: name.to_string(),
                        what: data_difference(stored_data.as_deref(), data),
                    });
                }
                if !replace {
                    return Err(StoreError::SpecChanged {
                        name: name.to_string(),
                        stored,
                        new: hash.clone(),
                    });
                }
                db.execute("DELETE FROM sweeps WHERE id = ?", &[Bind::Int(id)])?;
            }
            let id = db.rows(
                "INSERT INTO sweeps (name, description, spec, spec_hash, lcurve_version, data, source)
                 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                &[
                    Bind::Text(name),
                    Bind::text_or_null(spec.description.as_deref()),
                    Bind::Text(&json),
                    Bind::Text(&hash),
                    Bind::Text(env!("CARGO_PKG_VERSION")),
                    Bind::text_or_null(data),
                    Bind::text_or_null(spec.source.as_deref()),
                ],
                |r| r.int_required("id"),
            )?;
            Ok(id[0])
        })
        .await
    }

    async fn add_trials(
        &self,
        sweep_id: i64,
        trials: &[PlannedTrial],
    ) -> Result<usize, StoreError> {
        let texts: Vec<(i64, String, String)> = trials
            .iter()
            .map(|t| Ok((int(t.ordinal)?, t.config.to_json(), t.config.hash())))
            .collect::<Result<_, StoreError>>()?;
        let rows: Vec<[Bind; 4]> = texts
            .iter()
            .map(|(ordinal, config, hash)| {
                [
                    Bind::Int(sweep_id),
                    Bind::Int(*ordinal),
                    Bind::Text(config),
                    Bind::Text(hash),
                ]
            })
            .collect();
        // Through the C API: a statement per trial through sqlx took 1.5-3.5 ms of the
        // digits sweep's start (a round trip to sqlx's thread each).
        let sql = (
            "INSERT INTO trials (sweep_id, ordinal, config, config_hash)",
            "ON CONFLICT (sweep_id, config_hash) DO NOTHING",
        );
        self.write(|db| db.insert_rows(sql, &rows)).await
    }

    async fn requeue_running(&self, sweep_id: i64) -> Result<usize, StoreError> {
        self.write(|db| {
            db.execute(
                "UPDATE trials SET state = 'pending' WHERE sweep_id = ? AND state = 'running'",
                &[Bind::Int(sweep_id)],
            )
        })
        .await
    }

    async fn claim_next(&self, sweep_id: i64) -> Result<Option<ClaimedTrial>, StoreError> {
        self.write(|db| {
            let next = db.rows(
                "SELECT id FROM trials WHERE sweep_id = ? AND state = 'pending'
                   AND id NOT IN (SELECT trial_id FROM checkpoints)
                 ORDER BY ordinal LIMIT 1",
                &[Bind::Int(sweep_id)],
                |r| r.int_required("id"),
            )?;
            next.first().map(|id| start_trial(db, *id)).transpose()
        })
        .await
    }

    async fn paused(&self, sweep_id: i64) -> Result<Vec<(i64, usize)>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT c.trial_id, c.epoch FROM checkpoints c JOIN trials t ON t.id = c.trial_id
             WHERE t.sweep_id = ? AND t.state = 'pending' ORDER BY t.ordinal",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(id, e)| Ok((id, uint(e)?))).collect()
    }

    async fn resume(
        &self,
        trial_id: i64,
    ) -> Result<(ClaimedTrial, Checkpoint, Vec<EpochReport>), StoreError> {
        let mut tx = self.begin_immediate().await?;
        let (epoch, data): (i64, Vec<u8>) =
            sqlx::query_as("SELECT epoch, data FROM checkpoints WHERE trial_id = ?")
                .bind(trial_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("trial {trial_id} has no checkpoint"))
                })?;
        for table in ["metrics", "step_losses", "decisions"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE trial_id = ? AND epoch > ?"
            ))
            .bind(trial_id)
            .bind(epoch)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(&format!(
            "UPDATE trials SET state = 'running', started_at = coalesce(started_at, {NOW})
             WHERE id = ? AND state = 'pending' RETURNING id, ordinal, attempt, config"
        ))
        .bind(trial_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("trial {trial_id} is not paused")))?;
        let points: Vec<(String, i64, Option<f64>, String)> = sqlx::query_as(
            "SELECT name, epoch, value, kind FROM metrics WHERE trial_id = ? ORDER BY epoch",
        )
        .bind(trial_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let points: Vec<MetricPoint> = points
            .into_iter()
            .map(|(name, e, value, kind)| {
                Ok(MetricPoint {
                    trial_id,
                    name: metric_name(&name),
                    epoch: uint(e)?,
                    value: value_of(&kind, value)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let claim = ClaimedTrial {
            id: row.get("id"),
            ordinal: uint(row.get("ordinal"))?,
            attempt: row.get("attempt"),
            config: config_of(row.get("config"))?,
        };
        Ok((
            claim,
            Checkpoint {
                epoch: uint(epoch)?,
                data,
            },
            crate::replay::curve_of(&points),
        ))
    }

    async fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        // One lock of the connection for the whole transaction: through sqlx, a commit of
        // the digits sweep (BEGIN, a statement per started and three per finished trial, the
        // inserts, COMMIT) made 27-36 round trips to sqlx's thread.
        self.write(|db| {
            for w in writes {
                if let Write::Start { trial_id } = w {
                    start_trial(db, *trial_id)?;
                }
            }
            insert_metrics(db, writes)?;
            insert_steps(db, writes)?;
            insert_decisions(db, writes)?;
            for w in writes {
                match w {
                    Write::Finish { trial_id, outcome } => finish_trial(db, *trial_id, outcome)?,
                    Write::Pause {
                        trial_id,
                        epochs_run,
                        checkpoint,
                    } => pause_trial(db, *trial_id, *epochs_run, checkpoint)?,
                    Write::Start { .. }
                    | Write::Epoch { .. }
                    | Write::Decision { .. }
                    | Write::FinishSweep { .. } => {}
                }
            }
            for w in writes {
                if let Write::FinishSweep { sweep_id } = w {
                    db.execute(&FINISH_SWEEP_SQL, &[Bind::Int(*sweep_id)])?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Committed on a runtime worker: the caller (the scheduler) goes on answering trainers.
    /// Run within the caller's task, a commit of the digits sweep's 100 ms of epochs held
    /// the scheduler for 0.2-2.5 ms at a time (its 256-row inserts run on the calling
    /// thread), and trainers waited 55-97 ms in all per sweep for their epochs' answers;
    /// with no commits they waited 1-12 ms.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::spawn(async move { store.apply(&writes).await })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    async fn finish_sweep(&self, sweep_id: i64) -> Result<(), StoreError> {
        self.apply(&[Write::FinishSweep { sweep_id }]).await
    }

    async fn settle(&self) -> Result<(), StoreError> {
        self.checkpoint().await.map(drop)
    }

    /// On a task of its own, on a pooled connection (never the writing one, whose commits
    /// go on meanwhile); where no Tokio runtime runs, nothing. A checkpoint that a commit
    /// held back is tried again, 2 ms later and then twice as long each time (64 ms at
    /// most), until one copies the whole log or 12 have tried. Tried once, with 10 commits
    /// beside it, the file alone stayed malformed after 135 of 138 frames were copied (3 in
    /// 60 runs of the test), or unchanged after SQLite answered busy (1 in 150).
    fn settle_soon(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.clone();
        runtime.spawn(async move {
            let mut pause = Duration::from_millis(2);
            for _ in 0..SETTLE_TRIES {
                if !matches!(store.checkpoint().await, Ok(false)) {
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(64));
            }
        });
    }

    async fn close_now(&self) {
        self.close_connections().await;
    }

    async fn sweep(&self, name: &str) -> Result<SweepRow, StoreError> {
        let sql = "SELECT id, name, description, spec, created_at, finished_at, data, source
             FROM sweeps WHERE name = ?";
        self.read(|db| db.rows(sql, &[Bind::Text(name)], sweep_row))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NoSuchSweep(name.to_string()))
    }

    async fn sweeps(&self) -> Result<Vec<SweepOverview>, StoreError> {
        // The listing needs neither the data record nor the file text: not read.
        let sql = "SELECT id, name, description, spec, created_at, finished_at, NULL AS data,
                NULL AS source FROM sweeps ORDER BY id";
        let counts = "SELECT state, count(*) AS n FROM trials WHERE sweep_id = ? GROUP BY state";
        self.read(|db| {
            let mut out = Vec::new();
            for sweep in db.rows(sql, &[], sweep_row)? {
                let counts = db.rows(counts, &[Bind::Int(sweep.id)], |r| {
                    Ok((
                        TrialState::parse(r.text_required("state")?)?,
                        uint(r.int_required("n")?)?,
                    ))
                })?;
                out.push(SweepOverview { sweep, counts });
            }
            Ok(out)
        })
        .await
    }

    async fn trials(&self, sweep_id: i64) -> Result<Vec<TrialRow>, StoreError> {
        let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE sweep_id = ? ORDER BY ordinal");
        self.rows(&sql, &[sweep_id], trial_row).await
    }

    async fn trials_with_scores(
        &self,
        sweep_id: i64,
    ) -> Result<(Vec<TrialRow>, HashMap<i64, TrialScores>), StoreError> {
        let rows = self
            .rows(&TRIALS_WITH_SCORES_SQL, &[sweep_id], |r| {
                Ok((trial_row(r)?, scores_of(r)?))
            })
            .await?;
        let mut trials = Vec::with_capacity(rows.len());
        let mut scores = HashMap::with_capacity(rows.len());
        for (trial, (id, s)) in rows {
            trials.push(trial);
            scores.insert(id, s);
        }
        Ok((trials, scores))
    }

    async fn metrics(&self, sweep_id: i64) -> Result<Vec<MetricPoint>, StoreError> {
        let sql = "SELECT m.trial_id, m.name, m.epoch, m.value, m.kind FROM metrics m
             JOIN trials t ON t.id = m.trial_id WHERE t.sweep_id = ?
             ORDER BY t.ordinal, m.name, m.epoch";
        self.rows(sql, &[sweep_id], metric_point).await
    }

    async fn trial_metrics(&self, trial_ids: &[i64]) -> Result<Vec<MetricPoint>, StoreError> {
        let sql = "SELECT trial_id, name, epoch, value, kind FROM metrics WHERE trial_id = ?
             ORDER BY name, epoch";
        // All under one lock of a connection, one statement: the final report of the digits
        // sweep reads 6-23 trials' this way (a round trip to sqlx's thread each before).
        self.read(|db| {
            let mut points = Vec::new();
            for id in trial_ids {
                points.extend(db.rows(sql, &[Bind::Int(*id)], metric_point)?);
            }
            Ok(points)
        })
        .await
    }

    async fn steps(&self, trial_id: i64) -> Result<Vec<(usize, usize, f64)>, StoreError> {
        let sql = "SELECT epoch, first_step, losses FROM step_losses WHERE trial_id = ?
             ORDER BY epoch";
        let epochs = self
            .rows(sql, &[trial_id], |r| {
                let (epoch, first) = (r.int_required("epoch")?, r.int_required("first_step")?);
                let losses: Vec<Option<f32>> = serde_json::from_str(r.text_required("losses")?)
                    .map_err(|e| {
                        StoreError::Corrupt(format!(
                            "the step losses of trial {trial_id}, epoch {epoch}: {e}"
                        ))
                    })?;
                Ok((uint(epoch)?, uint(first)?, losses))
            })
            .await?;
        let mut steps = Vec::new();
        for (epoch, first, losses) in epochs {
            for (i, loss) in losses.into_iter().enumerate() {
                steps.push((first + i, epoch, loss.map_or(f64::NAN, f64::from)));
            }
        }
        Ok(steps)
    }

    async fn scores(&self, sweep_id: i64) -> Result<HashMap<i64, TrialScores>, StoreError> {
        let rows = self.rows(&SCORES_SQL, &[sweep_id], scores_of).await?;
        Ok(rows.into_iter().collect())
    }

    async fn stop_decisions(&self, sweep_id: i64) -> Result<Vec<DecisionRow>, StoreError> {
        self.rows(STOP_DECISIONS_SQL, &[sweep_id], |r| {
            Ok(DecisionRow {
                trial_id: r.int_required("trial_id")?,
                epoch: uint(r.int_required("epoch")?)?,
                rule: r.text_required("rule")?.to_string(),
                action: r.text_required("action")?.to_string(),
                reason: r.text_required("reason")?.to_string(),
            })
        })
        .await
    }
}

/// A sweep's decisions that ended a trial (bind: the sweep id). Its `action IN` term is the
/// `decision_ends` index's own, so SQLite reads that partial index, not every decision.
const STOP_DECISIONS_SQL: &str = "SELECT d.trial_id, d.epoch, d.rule, d.action, d.reason
     FROM decisions d JOIN trials t ON t.id = d.trial_id
     WHERE t.sweep_id = ? AND d.action IN ('stop', 'diverge') ORDER BY t.ordinal, d.epoch";

/// Upserts every epoch's metrics; re-recording an epoch replaces its values.
fn insert_metrics(db: &mut Locked, writes: &[Write]) -> Result<(), StoreError> {
    let mut points = Vec::new();
    for w in writes {
        if let Write::Epoch { trial_id, report } = w {
            let epoch = int(report.epoch)?;
            for (name, x) in report.series() {
                points.push((*trial_id, name, epoch, x));
            }
        }
    }
    // In the table's key order, so that each insert lands next to the one before it: 64 and
    // 2,500 epochs per transaction went in 31-34% faster than in the order of the epochs,
    // whose metrics are four places apart in the key. A stable sort keeps the later of two
    // writes of one point the one that stays.
    points.sort_by_key(|&(trial, name, epoch, _)| (trial, name, epoch));
    let rows: Vec<[Bind; 5]> = points
        .iter()
        .map(|&(trial_id, name, epoch, x)| {
            let (kind, value) = kind_of(x);
            [
                Bind::Int(trial_id),
                Bind::Text(name),
                Bind::Int(epoch),
                Bind::Real(value),
                Bind::Text(kind),
            ]
        })
        .collect();
    let sql = (
        "INSERT INTO metrics (trial_id, name, epoch, value, kind)",
        "ON CONFLICT (trial_id, name, epoch) DO UPDATE SET value = excluded.value, kind = excluded.kind",
    );
    db.insert_rows(sql, &rows).map(drop)
}

/// Upserts each epoch's per-step losses as one row: a JSON array of the losses (each the
/// shortest decimal that reads back as the same `f32`; null for NaN or an infinity), and the
/// number of its first step. Step numbers continue across epochs (every epoch of a trial has
/// the same number of steps).
fn insert_steps(db: &mut Locked, writes: &[Write]) -> Result<(), StoreError> {
    let mut epochs = Vec::new();
    for w in writes {
        if let Write::Epoch { trial_id, report } = w
            && !report.steps.is_empty()
        {
            let first = report.epoch.saturating_sub(1) * report.steps.len() + 1;
            let losses = serde_json::to_string(&report.steps)
                .map_err(|e| StoreError::Corrupt(format!("step losses as JSON: {e}")))?;
            epochs.push((*trial_id, int(report.epoch)?, int(first)?, losses));
        }
    }
    // Into key order, stably, as the metrics above.
    epochs.sort_by_key(|&(trial, epoch, ..)| (trial, epoch));
    let rows: Vec<[Bind; 4]> = epochs
        .iter()
        .map(|(trial, epoch, first, losses)| {
            [
                Bind::Int(*trial),
                Bind::Int(*epoch),
                Bind::Int(*first),
                Bind::Text(losses),
            ]
        })
        .collect();
    let sql = (
        "INSERT INTO step_losses (trial_id, epoch, first_step, losses)",
        "ON CONFLICT (trial_id, epoch) DO UPDATE SET first_step = excluded.first_step,
             losses = excluded.losses",
    );
    db.insert_rows(sql, &rows).map(drop)
}

fn insert_decisions(db: &mut Locked, writes: &[Write]) -> Result<(), StoreError> {
    let mut decisions = Vec::new();
    for w in writes {
        if let Write::Decision {
            trial_id,
            decision: d,
        } = w
        {
            decisions.push((*trial_id, int(d.epoch)?, d, d.details.to_string()));
        }
    }
    let rows: Vec<[Bind; 6]> = decisions
        .iter()
        .map(|(trial, epoch, d, details)| {
            [
                Bind::Int(*trial),
                Bind::Int(*epoch),
                Bind::Text(d.rule),
                Bind::Text(d.action.as_str()),
                Bind::Text(&d.reason),
                Bind::Text(details),
            ]
        })
        .collect();
    let sql = (
        "INSERT INTO decisions (trial_id, epoch, rule, action, reason, details)",
        "",
    );
    db.insert_rows(sql, &rows).map(drop)
}

/// Marks trial `id` running for a new attempt and, from the second attempt on, deletes what
/// earlier attempts recorded, so a rerun never mixes two attempts' curves.
fn start_trial(db: &mut Locked, id: i64) -> Result<ClaimedTrial, StoreError> {
    static START: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE trials SET state = 'running', attempt = attempt + 1, started_at = {NOW},
                    finished_at = NULL, epochs_run = NULL, best_epoch = NULL, best_value = NULL,
                    stop_reason = NULL, error = NULL, best_val_loss = NULL,
                    best_val_accuracy = NULL, best_val_rmse = NULL, final_val_loss = NULL,
                    final_val_kind = NULL, scored_epochs = NULL
             WHERE id = ?
             RETURNING ordinal, attempt, config"
        )
    });
    let row = db
        .rows(&START, &[Bind::Int(id)], |r| {
            Ok((
                r.int_required("ordinal")?,
                r.int_required("attempt")?,
                config_of(r.text_required("config")?)?,
            ))
        })?
        .pop()
        .ok_or_else(|| StoreError::Corrupt(format!("trial {id} is not in the database")))?;
    let (ordinal, attempt, config) = row;
    if attempt > 1 {
        for sql in [
            "DELETE FROM metrics WHERE trial_id = ?",
            "DELETE FROM step_losses WHERE trial_id = ?",
            "DELETE FROM decisions WHERE trial_id = ?",
        ] {
            db.execute(sql, &[Bind::Int(id)])?;
        }
    }
    Ok(ClaimedTrial {
        id,
        ordinal: uint(ordinal)?,
        attempt,
        config,
    })
}

/// Records how a trial ended; `Pending` (interrupted) leaves `finished_at` empty.
fn finish_trial(db: &mut Locked, trial_id: i64, o: &TrialOutcome) -> Result<(), StoreError> {
    static FINISH: [LazyLock<String>; 2] = [
        LazyLock::new(|| finish_sql("NULL")),
        LazyLock::new(|| finish_sql(NOW)),
    ];
    fn finish_sql(finished: &str) -> String {
        format!(
            "UPDATE trials SET state = ?, finished_at = {finished}, epochs_run = ?, best_epoch = ?,
                    best_value = ?, stop_reason = ?, error = ? WHERE id = ?"
        )
    }
    let sql = &FINISH[usize::from(o.state != TrialState::Pending)];
    db.execute(
        sql,
        &[
            Bind::Text(o.state.as_str()),
            Bind::Int(int(o.epochs_run)?),
            o.best
                .map(|(e, _)| int(e))
                .transpose()?
                .map_or(Bind::Null, Bind::Int),
            Bind::Real(o.best.map(|(_, v)| v)),
            Bind::text_or_null(o.stop_reason.as_deref()),
            Bind::text_or_null(o.error.as_deref()),
            Bind::Int(trial_id),
        ],
    )?;
    if o.state.is_finished() {
        // Its leaderboard numbers, kept so `show` need not read every metric row.
        db.execute(&STORE_SCORES_SQL, &[Bind::Int(trial_id)])?;
        // A finished trial will not continue: its checkpoint (if it was paused once) goes.
        db.execute(
            "DELETE FROM checkpoints WHERE trial_id = ?",
            &[Bind::Int(trial_id)],
        )?;
    }
    Ok(())
}

fn pause_trial(
    db: &mut Locked,
    trial_id: i64,
    epochs_run: usize,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    static SAVE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO checkpoints (trial_id, epoch, data) VALUES (?, ?, ?)
             ON CONFLICT (trial_id) DO UPDATE SET epoch = excluded.epoch, data = excluded.data,
                 created_at = {NOW}"
        )
    });
    db.execute(
        "UPDATE trials SET state = 'pending', epochs_run = ? WHERE id = ?",
        &[Bind::Int(int(epochs_run)?), Bind::Int(trial_id)],
    )?;
    db.execute(
        &SAVE,
        &[
            Bind::Int(trial_id),
            Bind::Int(int(checkpoint.epoch)?),
            Bind::Blob(&checkpoint.data),
        ],
    )?;
    Ok(())
}

/// Marks a sweep finished unless a trial of it is still to run (bind: the sweep id).
static FINISH_SWEEP_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE sweeps SET finished_at = {NOW} WHERE id = ?1 AND NOT EXISTS
           (SELECT 1 FROM trials WHERE sweep_id = ?1 AND state IN ('pending', 'running'))"
    )
});

/// Each stored score column of `trials` and the subquery over the trial's metrics that gives
/// it (`t` is the trial). Finishing a trial stores them; `scores()` computes them for trials
/// still running. (Migration 5 spells the same subqueries for trials finished before it.)
const SCORE_COLUMNS: [(&str, &str); 6] = [
    (
        "best_val_loss",
        "SELECT min(value) FROM metrics m WHERE m.trial_id = t.id AND m.name = 'val_loss' AND m.kind = 'finite'",
    ),
    (
        "best_val_accuracy",
        "SELECT max(value) FROM metrics m WHERE m.trial_id = t.id AND m.name = 'val_accuracy' AND m.kind = 'finite'",
    ),
    (
        "best_val_rmse",
        "SELECT min(value) FROM metrics m WHERE m.trial_id = t.id AND m.name = 'val_rmse' AND m.kind = 'finite'",
    ),
    (
        "final_val_loss",
        "SELECT value FROM metrics m WHERE m.trial_id = t.id AND m.name = 'val_loss' ORDER BY m.epoch DESC LIMIT 1",
    ),
    (
        "final_val_kind",
        "SELECT kind FROM metrics m WHERE m.trial_id = t.id AND m.name = 'val_loss' ORDER BY m.epoch DESC LIMIT 1",
    ),
    (
        "scored_epochs",
        "SELECT count(*) FROM metrics m WHERE m.trial_id = t.id AND m.name = 'val_loss'",
    ),
];

/// Stores a finished trial's scores (bind: the trial id).
static STORE_SCORES_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = SCORE_COLUMNS
        .iter()
        .map(|(col, sub)| format!("{col} = ({sub})"))
        .collect();
    format!("UPDATE trials AS t SET {} WHERE t.id = ?", sets.join(", "))
});

/// Every trial's scores (bind: the sweep id).
static SCORES_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT t.id, {} FROM trials t WHERE t.sweep_id = ?",
        score_selects()
    )
});

/// The score columns as select expressions for trials `t`: stored ones for finished trials,
/// computed from the few metric rows of running ones (CASE evaluates the subqueries only for
/// those).
fn score_selects() -> String {
    let cols: Vec<String> = SCORE_COLUMNS
        .iter()
        .map(|(col, sub)| {
            format!("CASE WHEN t.scored_epochs IS NOT NULL THEN t.{col} ELSE ({sub}) END AS {col}")
        })
        .collect();
    cols.join(", ")
}

/// [`TRIAL_COLUMNS`] and [`SCORES_SQL`]'s columns in one pass over the sweep's trials, for
/// `show` and `compare`: one query instead of two halves the rows fetched through sqlx
/// (about 7.5 µs each).
static TRIALS_WITH_SCORES_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TRIAL_COLUMNS}, {} FROM trials t WHERE t.sweep_id = ? ORDER BY t.ordinal",
        score_selects()
    )
});

/// What [`trial_row`] reads.
const TRIAL_COLUMNS: &str =
    "id, ordinal, state, config, attempt, epochs_run, best_epoch, best_value, stop_reason";

fn trial_row(r: &RawRow) -> Result<TrialRow, StoreError> {
    Ok(TrialRow {
        id: r.int_required("id")?,
        ordinal: uint(r.int_required("ordinal")?)?,
        state: TrialState::parse(r.text_required("state")?)?,
        config: config_of(r.text_required("config")?)?,
        attempt: r.int_required("attempt")?,
        epochs_run: r.int("epochs_run")?.map(uint).transpose()?,
        best_epoch: r.int("best_epoch")?.map(uint).transpose()?,
        best_value: r.real("best_value")?,
        stop_reason: r.text("stop_reason")?.map(str::to_string),
    })
}

/// A trial's id and scores from a row with [`SCORE_COLUMNS`].
fn scores_of(r: &RawRow) -> Result<(i64, TrialScores), StoreError> {
    let final_val_loss = match r.text("final_val_kind")? {
        Some(kind) => Some(value_of(kind, r.real("final_val_loss")?)?),
        None => None,
    };
    Ok((
        r.int_required("id")?,
        TrialScores {
            best_val_loss: r.real("best_val_loss")?,
            best_val_accuracy: r.real("best_val_accuracy")?,
            best_val_rmse: r.real("best_val_rmse")?,
            final_val_loss,
            epochs_run: uint(r.int("scored_epochs")?.unwrap_or(0))?,
        },
    ))
}

fn metric_point(r: &RawRow) -> Result<MetricPoint, StoreError> {
    Ok(MetricPoint {
        trial_id: r.int_required("trial_id")?,
        name: metric_name(r.text_required("name")?),
        epoch: uint(r.int_required("epoch")?)?,
        value: value_of(r.text_required("kind")?, r.real("value")?)?,
    })
}

fn sweep_row(r: &RawRow) -> Result<SweepRow, StoreError> {
    let text = |name| Ok::<_, StoreError>(r.text(name)?.map(str::to_string));
    Ok(SweepRow {
        id: r.int_required("id")?,
        name: r.text_required("name")?.to_string(),
        spec: r.text_required("spec")?.to_string(),
        created_at: r.text_required("created_at")?.to_string(),
        finished_at: text("finished_at")?,
        data: text("data")?,
        description: text("description")?,
        source: text("source")?,
    })
}

/// What differs between two stored data records, for the error message.
fn data_difference(old: Option<&str>, new: Option<&str>) -> String {
    let field = |json: Option<&str>, key: &str| {
        json.and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| v.get(key).cloned())
            .map_or_else(|| "?".to_string(), |v| v.to_string())
    };
    for key in [
        "sha256",
        "rows_read",
        "rows_dropped",
        "features",
        "valid_index",
    ] {
        let (a, b) = (field(old, key), field(new, key));
        if a != b {
            let short = |s: String| s.chars().take(20).collect::<String>();
            return format!("{key}: stored {}, now {}", short(a), short(b));
        }
    }
    "the data record".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set to write `src/store/schema.db` again from the migrations.
    const REWRITE: &str = "LCURVE_WRITE_SCHEMA_TEMPLATE";

    /// A database made by running the migrations, as a new file was before the template.
    async fn migrated(path: &Path) -> SqlitePool {
        let options = SqliteStore::options(path).create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        MIGRATOR.run(&pool).await.unwrap();
        pool
    }

    /// What must be the same in a migrated database and a copy of the template: the schema,
    /// the migrations recorded (with their checksums) and the file's settings.
    async fn describe(pool: &SqlitePool) -> Vec<String> {
        let mut lines: Vec<String> = sqlx::query_as::<_, (String, String, Option<String>)>(
            "SELECT type, name, sql FROM sqlite_schema ORDER BY type, name",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(kind, name, sql)| format!("{kind} {name}: {}", sql.unwrap_or_default()))
        .collect();
        lines.extend(
            sqlx::query_as::<_, (i64, String, bool, String)>(
                "SELECT version, description, success, hex(checksum) FROM _sqlx_migrations
                 ORDER BY version",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|m| format!("migration {m:?}")),
        );
        for pragma in [
            "page_size",
            "journal_mode",
            "user_version",
            "application_id",
            "auto_vacuum",
            "encoding",
        ] {
            let sql = format!("SELECT CAST({pragma} AS TEXT) FROM pragma_{pragma}");
            let value: String = sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
            lines.push(format!("{pragma} = {value}"));
        }
        lines
    }

    /// A new database starts as a copy of the template, which holds what the migrations make.
    #[tokio::test]
    async fn the_schema_template_is_the_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("migrated.db");
        let pool = migrated(&made).await;
        if std::env::var_os(REWRITE).is_some() {
            for sql in ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
            let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/schema.db");
            std::fs::copy(&made, &template).unwrap();
            return;
        }
        // The copy as it is, before any migration could run on it.
        let copy = dir.path().join("copy.db");
        assert!(create_from_template(&copy), "the template is copied");
        assert!(
            !create_from_template(&copy),
            "an existing file is never replaced"
        );
        let as_copied = SqlitePool::connect_with(SqliteStore::options(&copy))
            .await
            .unwrap();
        let (copied, wanted) = (describe(&as_copied).await, describe(&pool).await);
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter().filter(|l| !b.contains(l)).cloned().collect()
        };
        assert!(
            copied == wanted,
            "src/store/schema.db is not what the migrations make; write it again with \
             `{REWRITE}=1 cargo test --lib the_schema_template_is_the_migrations`.\n\
             Only in the template: {:#?}\nOnly in the migrations: {:#?}",
            only(&copied, &wanted),
            only(&wanted, &copied)
        );
        // A new database through `open`.
        let store = SqliteStore::open(&dir.path().join("new.db")).await.unwrap();
        let today: bool = sqlx::query_scalar(
            "SELECT min(installed_on) >= datetime('now', '-1 hour') FROM _sqlx_migrations",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert!(today, "the copy's migrations are dated when it was made");
        // `open` leaves the migrator out for such a copy: it holds every migration, and one
        // missing or changed would have the migrator run.
        let mut recorded: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert!(holds_every_migration(&recorded));
        recorded[0].1[0] ^= 1;
        assert!(!holds_every_migration(&recorded), "a changed migration");
        recorded.remove(0);
        assert!(!holds_every_migration(&recorded), "a missing migration");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".new"))
            .collect();
        assert!(names.is_empty(), "no copy is left beside: {names:?}");
    }

    /// A database whose steps were rows of the `steps` table (before migration 7) keeps
    /// them: the same rows through the `steps` view, and the same losses through the store.
    #[tokio::test]
    async fn step_rows_of_an_older_database_move_into_epoch_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let older = dir.path().join("migrations");
        std::fs::create_dir(&older).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(&source).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.as_str() < "20261128000007" {
                std::fs::copy(source.join(&name), older.join(&name)).unwrap();
            }
        }
        let path = dir.path().join("old.db");
        let pool = SqlitePool::connect_with(SqliteStore::options(&path).create_if_missing(true))
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(older.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        // Two trials: one with two epochs of three steps (a NULL among them), one with one.
        let rows = [
            (1, 1, 1, Some(2.5)),
            (1, 2, 1, Some(0.1f32 as f64)),
            (1, 3, 1, Some(1.0)),
            (1, 4, 2, None),
            (1, 5, 2, Some(0.75)),
            (1, 6, 2, Some(0.5)),
            (2, 1, 1, Some(3.0)),
        ];
        sqlx::raw_sql(
            "INSERT INTO sweeps (name, spec, spec_hash, lcurve_version) VALUES ('s', '{}', 'h', '0');
             INSERT INTO trials (sweep_id, ordinal, config, config_hash)
               VALUES (1, 0, '{}', 'a'), (1, 1, '{}', 'b');",
        )
        .execute(&pool)
        .await
        .unwrap();
        // Inserted out of order: the arrays follow the step numbers.
        for (trial, step, epoch, loss) in rows.iter().rev() {
            sqlx::query("INSERT INTO steps (trial_id, step, epoch, loss) VALUES (?, ?, ?, ?)")
                .bind(trial)
                .bind(step)
                .bind(epoch)
                .bind(loss)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;

        let store = SqliteStore::open(&path).await.unwrap();
        let view: Vec<(i64, i64, i64, Option<f64>)> =
            sqlx::query_as("SELECT trial_id, step, epoch, loss FROM steps ORDER BY trial_id, step")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(view, rows);
        let first = store.steps(1).await.unwrap();
        assert_eq!(first.len(), 6);
        assert_eq!(first[1], (2, 1, f64::from(0.1f32)));
        assert!(first[3].2.is_nan());
        assert_eq!(store.steps(2).await.unwrap(), [(1, 1, 3.0)]);
    }

    /// A sweep's trial-ending decisions come in trial and epoch order, without the
    /// `continue` rows or another sweep's, read through the partial index of such decisions
    /// rather than through every decision of the sweep's trials.
    #[tokio::test]
    async fn stop_decisions_read_only_the_index_of_trial_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ends.db"))
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO sweeps (name, spec, spec_hash, lcurve_version)
               VALUES ('a', '{}', 'h', '0'), ('b', '{}', 'h', '0');
             INSERT INTO trials (sweep_id, ordinal, config, config_hash)
               VALUES (1, 1, '{}', 'x'), (1, 0, '{}', 'y'), (2, 0, '{}', 'z');
             INSERT INTO decisions (trial_id, epoch, rule, action, reason, details) VALUES
               (1, 1, 'divergence', 'continue', 'finite', '{}'),
               (1, 2, 'patience', 'stop', 'no better for 1', '{}'),
               (2, 1, 'divergence', 'continue', 'finite', '{}'),
               (2, 2, 'divergence', 'diverge', 'val_loss is NaN', '{}'),
               (3, 1, 'patience', 'stop', 'another sweep', '{}');",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let ends: Vec<(i64, usize, String)> = store
            .stop_decisions(1)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.trial_id, d.epoch, d.action))
            .collect();
        // Trial 2 is ordinal 0, so it comes first.
        assert_eq!(
            ends,
            [(2, 2, "diverge".to_string()), (1, 2, "stop".to_string())]
        );
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {STOP_DECISIONS_SQL}"))
                .bind(1)
                .fetch_all(store.pool())
                .await
                .unwrap();
        let steps: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
        assert!(
            steps.iter().any(|s| s.contains("decision_ends")),
            "the plan: {steps:?}"
        );
    }

    /// A log left beside a file that is gone is SQLite's to replay: no copy is made there.
    #[test]
    fn no_template_copy_beside_a_leftover_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::fs::write(dir.path().join("x.db-wal"), b"").unwrap();
        assert!(!create_from_template(&path));
        assert!(!path.exists());
    }
}
