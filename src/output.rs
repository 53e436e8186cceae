//! Rows that commands print, rendered as a table for people or as CSV or JSON for other tools.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::util::format_float;

/// How a command prints rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

/// One value in a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Num(f64),
    /// A metric: shown to 4 decimals in tables, written in full elsewhere.
    Score(f64),
    Null,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }

    pub fn opt_num(x: Option<f64>) -> Self {
        x.map_or(Cell::Null, Cell::Num)
    }

    pub fn opt_score(x: Option<f64>) -> Self {
        x.map_or(Cell::Null, Cell::Score)
    }

    /// As shown in a table: numbers to 4 significant places where that reads better.
    pub(crate) fn shown(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Num(x) => format_float(*x),
            Cell::Score(x) if x.is_finite() => format!("{x:.4}"),
            Cell::Score(x) => format_float(*x),
            Cell::Null => "-".into(),
        }
    }

    /// As written to CSV: full precision, empty for none.
    fn raw(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Num(x) | Cell::Score(x) => x.to_string(),
            Cell::Null => String::new(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Text(s) => serde_json::Value::String(s.clone()),
            Cell::Int(i) => serde_json::Value::from(*i),
            // JSON has no NaN or infinity: tools read null as missing.
            Cell::Num(x) | Cell::Score(x) if x.is_finite() => serde_json::Value::from(*x),
            Cell::Num(_) | Cell::Score(_) => serde_json::Value::Null,
            Cell::Null => serde_json::Value::Null,
        }
    }
}

/// A header and rows of cells.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Rows {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => {
                if self.rows.is_empty() {
                    return "(no rows)".into();
                }
                let mut t = Table::new();
                t.load_preset(UTF8_FULL_CONDENSED)
                    .set_header(self.header.clone());
                for r in &self.rows {
                    t.add_row(r.iter().map(Cell::shown).collect::<Vec<_>>());
                }
                t.to_string()
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                let _ = w.write_record(&self.header);
                for r in &self.rows {
                    let _ = w.write_record(r.iter().map(Cell::raw));
                }
                let bytes = w.into_inner().unwrap_or_default();
                String::from_utf8_lossy(&bytes).trim_end().to_string()
            }
            Format::Json => {
                let objects: Vec<serde_json::Value> = self
                    .rows
                    .iter()
                    .map(|r| {
                        serde_json::Value::Object(
                            self.header
                                .iter()
                                .cloned()
                                .zip(r.iter().map(Cell::json))
                                .collect(),
                        )
                    })
                    .collect();
                serde_json::to_string_pretty(&objects).unwrap_or_else(|_| "[]".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_rows_as_table_csv_and_json() {
        let mut r = Rows::new(&["name", "n", "loss"]);
        r.rows
            .push(vec![Cell::text("a,b"), Cell::Int(3), Cell::Num(0.25)]);
        r.rows
            .push(vec![Cell::text("c"), Cell::Null, Cell::Num(f64::NAN)]);
        assert_eq!(r.render(Format::Csv), "name,n,loss\n\"a,b\",3,0.25\nc,,NaN");
        let json: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).unwrap();
        assert_eq!(json[0]["name"], "a,b");
        assert_eq!(json[0]["loss"], 0.25);
        assert!(json[1]["n"].is_null() && json[1]["loss"].is_null());
        let table = r.render(Format::Table);
        assert!(table.contains("a,b") && table.contains("0.25"), "{table}");
        assert_eq!(Rows::new(&["x"]).render(Format::Table), "(no rows)");
    }
}
