//! `index.html`: one self-contained page per sweep (inline CSS, no scripts, no network; charts
//! by relative path) with the spec, the data, the leaderboard and every chart.

use std::fmt::Write as _;

use crate::output::{Cell, Rows};

/// What the page shows; every field is already text or rows.
pub struct Page<'a> {
    pub sweep: &'a str,
    pub description: Option<&'a str>,
    /// `("completed", 30), ("stopped", 2)`.
    pub counts: &'a [(String, usize)],
    /// Whether the sweep is still running: the page then reloads itself every 10 s.
    pub running: bool,
    /// One line on the data (source, rows, features, classes, split).
    pub data: Option<&'a str>,
    /// The sweep file as stored (TOML when it converts, else JSON).
    pub spec: &'a str,
    pub leaderboard: &'a Rows,
    /// `(file name relative to the page, caption)` of each chart drawn.
    pub charts: &'a [(String, String)],
    /// `(ordinal, file name relative to the page)` of each trial chart.
    pub trial_charts: &'a [(usize, String)],
    /// How the page was made, for its footer.
    pub generated: &'a str,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:24px auto;max-width:1500px;padding:0 16px;color:#222}\
h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}\
nav a{margin-right:14px}.muted{color:#666}\
table{border-collapse:collapse;font-size:14px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}\
th{background:#f3f3f3;position:sticky;top:0}td.t{text-align:left}tr.best td{background:#fff6d5;font-weight:bold}\
tr.diverged td,tr.failed td{color:#b00}.scroll{max-height:640px;overflow:auto;border:1px solid #ddd;display:inline-block}\
figure{margin:16px 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:14px}\
.trials{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px}\
.trials img{width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:12px;overflow:auto;font-size:13px}";

/// A cell as the terminal table shows it, escaped; a non-finite score says it diverged.
/// Also whether it is text (left-aligned).
fn cell_html(c: &Cell) -> (String, bool) {
    let text = match c {
        Cell::Score(x) if !x.is_finite() => format!("{} (diverged)", c.shown()),
        Cell::Null => "–".into(),
        _ => c.shown(),
    };
    (escape(&text), matches!(c, Cell::Text(_)))
}

/// The leaderboard as an HTML table: the first row (the best) highlighted, diverged and
/// failed trials in red, each ordinal linking to its trial chart.
fn table(rows: &Rows, trial_charts: &[(usize, String)]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for h in &rows.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let state = rows.column("state");
    let ordinal = rows.column("ordinal");
    for (i, r) in rows.rows.iter().enumerate() {
        let state = state
            .and_then(|c| match &r[c] {
                Cell::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .unwrap_or("");
        let class = if i == 0 && state != "diverged" && state != "failed" {
            "best"
        } else {
            state
        };
        let _ = write!(out, "<tr class=\"{}\">", escape(class));
        for (ci, c) in r.iter().enumerate() {
            let (text, is_text) = cell_html(c);
            let link = match (Some(ci) == ordinal, c) {
                (true, Cell::Int(o)) => trial_charts
                    .iter()
                    .find(|(t, _)| *t as i64 == *o)
                    .map(|(_, f)| f),
                _ => None,
            };
            let text = match link {
                Some(f) => format!("<a href=\"{}\">{text}</a>", escape(f)),
                None => text,
            };
            let _ = write!(
                out,
                "<td{}>{text}</td>",
                if is_text { " class=\"t\"" } else { "" }
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

pub fn render(p: &Page) -> String {
    let mut o = String::new();
    let name = escape(p.sweep);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{}\
<title>lcurve: {name}</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>{name}</h1>\n",
        if p.running {
            "<meta http-equiv=\"refresh\" content=\"10\">\n"
        } else {
            ""
        }
    );
    if let Some(d) = p.description {
        let _ = writeln!(o, "<p>{}</p>", escape(d));
    }
    let counts: Vec<String> = p
        .counts
        .iter()
        .map(|(s, n)| format!("{n} {}", escape(s)))
        .collect();
    let _ = writeln!(
        o,
        "<p class=\"muted\">{} trials: {}{}</p>",
        p.counts.iter().map(|c| c.1).sum::<usize>(),
        counts.join(", "),
        if p.running {
            " &middot; <b>running</b>: this page reloads every 10 s as charts are redrawn"
        } else {
            ""
        }
    );
    if let Some(d) = p.data {
        let _ = writeln!(o, "<p>{}</p>", escape(d).replace('\n', "<br>"));
    }
    o.push_str("<nav><a href=\"#leaderboard\">leaderboard</a>");
    for (file, caption) in p.charts {
        let _ = write!(
            o,
            "<a href=\"#{}\">{}</a>",
            escape(file),
            escape(caption.split(':').next().unwrap_or(caption))
        );
    }
    o.push_str("<a href=\"#trials\">trials</a><a href=\"#spec\">sweep file</a></nav>\n");
    o.push_str("<h2 id=\"leaderboard\">Leaderboard</h2>\n<p class=\"muted\">Best validation loss first; click a trial number for its chart. Highlighted: the best trial.</p>\n");
    o.push_str(&table(p.leaderboard, p.trial_charts));
    for (file, caption) in p.charts {
        let (f, c) = (escape(file), escape(caption));
        let _ = writeln!(
            o,
            "<h2 id=\"{f}\">{}</h2>\n<figure><a href=\"{f}\"><img src=\"{f}\" alt=\"{c}\"></a><figcaption>{c}</figcaption></figure>",
            escape(caption.split(':').next().unwrap_or(caption))
        );
    }
    o.push_str("<h2 id=\"trials\">Trials</h2>\n<div class=\"trials\">\n");
    for (ordinal, file) in p.trial_charts {
        let f = escape(file);
        let _ = writeln!(
            o,
            "<a href=\"{f}\"><img src=\"{f}\" loading=\"lazy\" alt=\"trial {ordinal}\"></a>"
        );
    }
    o.push_str("</div>\n");
    let _ = writeln!(
        o,
        "<h2 id=\"spec\">Sweep file</h2>\n<pre>{}</pre>\n<p class=\"muted\">{}</p>\n</body></html>",
        escape(p.spec),
        escape(p.generated)
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_links() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut rows = Rows::new(&["ordinal", "activation", "best_val_loss", "state"]);
        rows.rows.push(vec![
            Cell::Int(3),
            Cell::text("relu"),
            Cell::Score(0.1),
            Cell::text("completed"),
        ]);
        rows.rows.push(vec![
            Cell::Int(1),
            Cell::text("<b>"),
            Cell::Score(f64::NAN),
            Cell::text("diverged"),
        ]);
        let charts = vec![("curves.png".to_string(), "Curves: all".to_string())];
        let trials = vec![(3, "trials/003.png".to_string())];
        let page = render(&Page {
            sweep: "s<1>",
            description: Some("d & e"),
            counts: &[("completed".into(), 1), ("diverged".into(), 1)],
            running: false,
            data: None,
            spec: "name = \"s\"",
            leaderboard: &rows,
            charts: &charts,
            trial_charts: &trials,
            generated: "now",
        });
        assert!(page.contains("<h1>s&lt;1&gt;</h1>"));
        assert!(page.contains("<p>d &amp; e</p>"));
        assert!(page.contains("2 trials: 1 completed, 1 diverged"));
        assert!(page.contains("<tr class=\"best\"><td><a href=\"trials/003.png\">3</a></td>"));
        assert!(page.contains(
            "<tr class=\"diverged\"><td>1</td><td class=\"t\">&lt;b&gt;</td><td>NaN (diverged)</td>"
        ));
        assert!(page.contains("<img src=\"curves.png\""));
        assert!(page.contains("<img src=\"trials/003.png\" loading=\"lazy\""));
        assert!(
            !page.contains("http-equiv=\"refresh\""),
            "finished: no reload"
        );
        assert!(!page.contains("<script"), "no scripts");
    }
}
