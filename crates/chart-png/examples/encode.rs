//! Times `png_rgb` on the charts given as PNG files (decoded first, then encoded again 400
//! times each): `cargo run --release -p chart-png --example encode -- reports/x/*.png`. With
//! `ROTATE=1` set, the charts are encoded in turn into fresh buffers, 100 rounds, as a run
//! draws them: their pixels are then not all in the cache.
use std::time::Instant;

fn main() {
    let mut charts = Vec::new();
    for path in std::env::args().skip(1) {
        let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut reader = png::Decoder::new(std::io::Cursor::new(file))
            .read_info()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader
            .next_frame(&mut pixels)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            info.color_type,
            png::ColorType::Rgb,
            "{path}: not 8-bit RGB"
        );
        pixels.truncate(info.buffer_size());
        charts.push((path, info.width, info.height, pixels));
    }
    let mut out = Vec::new();
    if std::env::var_os("ROTATE").is_some() {
        // Each chart in turn, so that its pixels are not in the cache as a drawn one's are not.
        let mut times = Vec::new();
        for _ in 0..100 {
            for (_, width, height, pixels) in &charts {
                let mut fresh = Vec::new();
                let start = Instant::now();
                chart_png::png_rgb(&mut fresh, *width, *height, pixels);
                times.push(start.elapsed().as_secs_f64() * 1e3);
                out = fresh;
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "in turn, fresh output: median {:.3} ms ({} bytes)",
            times[times.len() / 2],
            out.len()
        );
        return;
    }
    for (path, width, height, pixels) in &charts {
        let mut times: Vec<f64> = (0..400)
            .map(|_| {
                out.clear();
                let start = Instant::now();
                chart_png::png_rgb(&mut out, *width, *height, pixels);
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{path}: {width}x{height}, {} bytes: fastest {:.3} ms, median {:.3} ms",
            out.len(),
            times[0],
            times[times.len() / 2]
        );
    }
}
