//! The readable summary on stderr; the JSON line on stdout is the complete record.

use serde_json::Value;

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e12 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "-".to_owned(),
    }
}

pub fn print_summary(result: &Value) {
    let mut lines = Vec::new();
    for c in result["components"].as_array().into_iter().flatten() {
        lines.push(format!(
            "codec {}x{}: capture {} ms, encode p50 {} / p95 {} ms, decode p50 {} / p95 {} ms, {} kb/s, stamps {}/{}",
            num(&c["video"]["width"]),
            num(&c["video"]["height"]),
            num(&c["capture_ms"]["p50"]),
            num(&c["encode_ms"]["p50"]),
            num(&c["encode_ms"]["p95"]),
            num(&c["decode_ms"]["p50"]),
            num(&c["decode_ms"]["p95"]),
            num(&c["encoded_kbps"]),
            num(&c["stamps_read"]),
            num(&c["frames"]),
        ));
    }
    for s in result["scenarios"].as_array().into_iter().flatten() {
        lines.push(format!(
            "== {} ({})",
            s["name"].as_str().unwrap_or("?"),
            s["conditions"]["description"].as_str().unwrap_or("")
        ));
        if let Some(e) = s["error"].as_str() {
            lines.push(format!("   ERROR: {e}"));
        }
        let g = &s["glass_to_glass_ms"];
        lines.push(format!(
            "   glass-to-glass ms: p50 {} p95 {} p99 {} max {} (n {})",
            num(&g["p50"]),
            num(&g["p95"]),
            num(&g["p99"]),
            num(&g["max"]),
            num(&g["n"])
        ));
        let (a, av) = (&s["audio_glass_to_glass_ms"], &s["av_offset_ms"]);
        if a.is_object() {
            lines.push(format!(
                "   audio glass-to-glass ms: p50 {} p95 {} max {} (n {}); audio after video ms: p50 {} min {} max {}",
                num(&a["p50"]),
                num(&a["p95"]),
                num(&a["max"]),
                num(&a["n"]),
                num(&av["p50"]),
                num(&av["min"]),
                num(&av["max"])
            ));
        }
        let (p, q) = (&s["first_frame_play_ms"], &s["first_frame_publish_ms"]);
        lines.push(format!(
            "   first frame ms: play p50 {} p95 {} ({}/{} ok); publish p50 {} p95 {} ({}/{} ok)",
            num(&p["p50"]),
            num(&p["p95"]),
            num(&p["ok"]),
            num(&p["requested"]),
            num(&q["p50"]),
            num(&q["p95"]),
            num(&q["ok"]),
            num(&q["requested"])
        ));
        let m = &s["smoothness"];
        lines.push(format!(
            "   frames: sent {} rendered {} missing {} ({} fps); freezes {} ({} ms, longest {}); audio gaps {} (longest {} ms)",
            num(&m["frames_sent"]),
            num(&m["frames_rendered"]),
            num(&m["frames_missing"]),
            num(&m["render_fps"]),
            num(&m["freezes"]),
            num(&m["freeze_total_ms"]),
            num(&m["longest_freeze_ms"]),
            num(&m["audio_gaps"]),
            num(&m["longest_audio_gap_ms"])
        ));
        let jb = &s["jitter_buffer_delay_ms"];
        if jb.is_object() {
            lines.push(format!(
                "   browser: capture->received p50 {} ms, received->shown p50 {} ms; jitter buffer delay ms: video {} audio {}; stamps read {} unreadable {}",
                num(&s["capture_to_received_ms"]["p50"]),
                num(&s["received_to_shown_ms"]["p50"]),
                num(&jb["video"]),
                num(&jb["audio"]),
                num(&s["stamps_read"]),
                num(&s["stamps_unreadable"])
            ));
        }
        let cpu = &s["cpu"];
        lines.push(format!(
            "   cpu % of one core: publisher {} player {} server {}",
            num(&cpu["publisher"]["percent_of_one_core"]),
            num(&cpu["player"]["percent_of_one_core"]),
            num(&cpu["server"]["percent_of_one_core"])
        ));
        let a = &s["path_rate"]["adaptation"];
        if a.is_object() {
            lines.push(format!(
                "   cap: under {} kb/s after {} s (stays from {} s); latency after p50 {} p95 {} ms",
                num(&a["cap_kbps"]),
                num(&a["first_under_cap_s"]),
                num(&a["stays_under_cap_from_s"]),
                num(&a["latency_after_adaptation_ms"]["p50"]),
                num(&a["latency_after_adaptation_ms"]["p95"])
            ));
        }
        for t in s["targets"].as_array().into_iter().flatten() {
            lines.push(format!(
                "   [{}] {} {}: measured {} (margin {})",
                if t["pass"].as_bool() == Some(true) {
                    "pass"
                } else {
                    "MISS"
                },
                t["name"].as_str().unwrap_or("?"),
                t["target"].as_str().unwrap_or(""),
                num(&t["measured"]),
                num(&t["margin"])
            ));
        }
    }
    eprintln!("{}", lines.join("\n"));
}
