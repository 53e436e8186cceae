//! Shared helpers: temporary databases, a spec from inline TOML, a synthetic run.

use std::path::{Path, PathBuf};

use lcurve::spec::{SweepSpec, parse};
use lcurve::store::SqliteStore;

pub fn spec(toml: &str) -> SweepSpec {
    parse(Path::new("test.toml"), toml).unwrap_or_else(|e| panic!("{e}"))
}

/// A small grid: 2 learning rates x 1 batch size x 1 epochs x 2 activations.
pub const SMALL: &str = r#"
name = "small"
[train]
max_parallel = 2
[params]
learning_rate = [0.001, 0.01]
batch_size = 32
epochs = 6
activation = ["relu", "tanh"]
"#;

pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lcurve.db");
        Self { dir, path }
    }

    pub async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).await.expect("open store")
    }
}

/// Runs SQL on the database file `db` as a separate reader would: with the `sqlite3`
/// command-line tool when it is installed (`.ci/run` installs it), else through sqlx on a
/// connection of its own. Rows come back as lines of `|`-separated values, as `sqlite3`
/// prints them; `Err` carries the error text.
pub fn sql(db: &Path, query: &str) -> Result<String, String> {
    if let Ok(out) = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(query)
        .output()
    {
        return if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        };
    }
    use sqlx::{Connection, Row, ValueRef};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| e.to_string())?;
        let rows = sqlx::raw_sql(query)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let lines: Vec<String> = rows
            .iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        if r.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true) {
                            String::new()
                        } else if let Ok(v) = r.try_get::<i64, _>(i) {
                            v.to_string()
                        } else if let Ok(v) = r.try_get::<f64, _>(i) {
                            v.to_string()
                        } else {
                            r.try_get::<String, _>(i).unwrap_or_default()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        let _ = conn.close().await;
        Ok(lines.join("\n"))
    })
}

/// Decodes a PNG; returns (width, height, number of distinct pixel values).
pub fn png_summary(path: &Path) -> (u32, u32, usize) {
    let (w, h, pixels) = png_pixels(path);
    let mut distinct = pixels;
    distinct.sort_unstable();
    distinct.dedup();
    (w, h, distinct.len())
}

/// Decodes a PNG into (width, height, RGB of every pixel).
pub fn png_pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    assert!(px >= 3, "{}: not a colour image", path.display());
    let pixels = buf[..info.buffer_size()]
        .chunks(px)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, pixels)
}
