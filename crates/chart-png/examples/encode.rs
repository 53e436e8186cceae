//! Times `png_rgb` on the charts given as PNG files (decoded first, then encoded again 400
//! times each): `cargo run --release -p chart-png --example encode -- reports/x/*.png`.
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
