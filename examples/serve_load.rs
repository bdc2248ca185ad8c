//! Load generator for `wgrec serve`: starts the server on 127.0.0.1 (batching on, then `--max-batch 1`),
//! runs N concurrent keep-alive clients for a fixed time at each N, and prints requests/s, p50/p95/p99
//! latency, errors and the mean GPU batch size (from /metrics). With `--faults` it instead runs 64 clients
//! for `--soak` seconds while clients disconnect mid-request, 10 MB bodies arrive, 1,000 connections sit
//! idle and the model file is truncated and reloaded, checking every answer and the server's RSS.
//!
//! cargo run --example serve_load -- --wgrec target/debug/wgrec --model joint.safetensors \
//!     [--seconds 10] [--clients 1,16,64,256] [--faults --soak 600]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Args {
    wgrec: PathBuf,
    model: PathBuf,
    seconds: f64,
    clients: Vec<usize>,
    faults: bool,
    soak: f64,
}

fn args() -> Args {
    let mut a = Args {
        wgrec: PathBuf::from("target/debug/wgrec"),
        model: PathBuf::new(),
        seconds: 10.0,
        clients: vec![1, 16, 64, 256],
        faults: false,
        soak: 600.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--wgrec" => a.wgrec = value().into(),
            "--model" => a.model = value().into(),
            "--seconds" => a.seconds = value().parse().expect("--seconds"),
            "--clients" => {
                a.clients = value()
                    .split(',')
                    .map(|n| n.parse().expect("--clients"))
                    .collect()
            }
            "--faults" => a.faults = true,
            "--soak" => a.soak = value().parse().expect("--soak"),
            _ => panic!("unknown option {flag}"),
        }
    }
    assert!(!a.model.as_os_str().is_empty(), "--model FILE is required");
    a
}

struct Server {
    child: Child,
    base: String,
    addr: String,
}

impl Server {
    fn start(wgrec: &Path, model: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(wgrec)
            .args(["serve", "-q", "--addr", "127.0.0.1:0", "--model"])
            .arg(model)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wgrec serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server stopped before listening")
                .unwrap();
            eprintln!("  server: {line}");
            if let Some(b) = line.strip_prefix("listening on ") {
                break b.to_string();
            }
        };
        // Keep draining stderr so that the server never blocks on it.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("  server: {line}");
            }
        });
        let addr = base.trim_start_matches("http://").to_string();
        Self { child, base, addr }
    }

    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        eprintln!("  server exited: {status}");
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str) -> Result<(u16, String), String> {
    let mut r = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
    Ok((status, text))
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// (count, sum) of the batch-size histogram.
fn batches(base: &str) -> (f64, f64) {
    let (_, text) = get(&agent(), &format!("{base}/metrics")).unwrap();
    (
        metric(&text, "wgrec_gpu_batch_size_count "),
        metric(&text, "wgrec_gpu_batch_size_sum "),
    )
}

fn users(base: &str) -> Vec<String> {
    let (_, text) = get(&agent(), &format!("{base}/v1/users")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

struct Outcome {
    latencies: Vec<f64>,
    errors: u64,
    wrong: u64,
}

/// `clients` threads asking for random users' top 10 (unseen) until `stop`; with `want`, every answer is
/// compared with the reference for its user.
fn load(
    base: &str,
    users: &[String],
    clients: usize,
    stop: &AtomicBool,
    want: Option<&[String]>,
) -> Outcome {
    let out = Mutex::new(Outcome {
        latencies: Vec::new(),
        errors: 0,
        wrong: 0,
    });
    std::thread::scope(|scope| {
        for c in 0..clients {
            let out = &out;
            scope.spawn(move || {
                let agent = agent();
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
                let (mut lat, mut errors, mut wrong) = (Vec::new(), 0, 0);
                while !stop.load(Ordering::Relaxed) {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let i = (state >> 33) as usize % users.len();
                    let t0 = Instant::now();
                    let r = get(
                        &agent,
                        &format!(
                            "{base}/v1/recommend?user={}&k=10&exclude_seen=true",
                            users[i]
                        ),
                    );
                    lat.push(t0.elapsed().as_secs_f64());
                    match r {
                        Ok((200, text)) => {
                            if let Some(w) = want {
                                if titles(&text) != w[i] {
                                    wrong += 1;
                                }
                            }
                        }
                        Ok((status, text)) => {
                            errors += 1;
                            if errors <= 3 {
                                eprintln!("  client {c}: {status} {text}");
                            }
                        }
                        Err(e) => {
                            errors += 1;
                            if errors <= 3 {
                                eprintln!("  client {c}: {e}");
                            }
                        }
                    }
                }
                let mut o = out.lock().unwrap();
                o.latencies.extend(lat);
                o.errors += errors;
                o.wrong += wrong;
            });
        }
    });
    out.into_inner().unwrap()
}

/// The titles of an answer, joined: what is compared with the reference.
fn titles(text: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    v["results"][0]["recommendations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["title"].as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join("|")
        })
        .unwrap_or_default()
}

fn bench(a: &Args) {
    println!(
        "| batching | clients | requests/s | p50 ms | p95 ms | p99 ms | errors | mean GPU batch |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, extra) in [
        ("on (--max-batch 256)", &[][..]),
        ("off (--max-batch 1)", &["--max-batch", "1"]),
    ] {
        let server = Server::start(&a.wgrec, &a.model, extra);
        let users = users(&server.base);
        // Warm up: the first pass of each size allocates its buffers.
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_secs(1));
                stop.store(true, Ordering::Relaxed);
            });
            load(&server.base, &users, 4, &stop, None);
        });
        for &n in &a.clients {
            let before = batches(&server.base);
            let stop = AtomicBool::new(false);
            let t0 = Instant::now();
            let mut o = std::thread::scope(|s| {
                s.spawn(|| {
                    std::thread::sleep(Duration::from_secs_f64(a.seconds));
                    stop.store(true, Ordering::Relaxed);
                });
                load(&server.base, &users, n, &stop, None)
            });
            let secs = t0.elapsed().as_secs_f64();
            let after = batches(&server.base);
            o.latencies.sort_by(f64::total_cmp);
            let mean_batch = (after.1 - before.1) / (after.0 - before.0).max(1.0);
            println!(
                "| {label} | {n} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
                o.latencies.len() as f64 / secs,
                percentile(&o.latencies, 0.50) * 1e3,
                percentile(&o.latencies, 0.95) * 1e3,
                percentile(&o.latencies, 0.99) * 1e3,
                o.errors,
                mean_batch
            );
        }
        server.stop();
    }
}

fn faults(a: &Args) {
    let dir = std::env::temp_dir().join(format!("wgrec-serve-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let served = dir.join("served.safetensors");
    std::fs::copy(&a.model, &served).unwrap();
    let good = std::fs::read(&served).unwrap();
    let server = Server::start(&a.wgrec, &served, &[]);
    let users = users(&server.base);
    let client = agent();
    let want: Vec<String> = users
        .iter()
        .map(|u| {
            let (_, text) = get(
                &client,
                &format!(
                    "{}/v1/recommend?user={u}&k=10&exclude_seen=true",
                    server.base
                ),
            )
            .unwrap();
            titles(&text)
        })
        .collect();
    // 1,000 connections that never send anything, held for the whole run.
    let idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(&server.addr).ok())
        .collect();
    let rss_start = server.rss_kib();
    println!(
        "faults: {} idle connections open; RSS at start {} MiB",
        idle.len(),
        rss_start / 1024
    );
    let stop = AtomicBool::new(false);
    let counts: [AtomicU64; 6] = Default::default();
    let [hangups, big_413, big_other, reload_refused, reload_ok, reload_bad] = &counts;
    let rss_samples = Mutex::new(Vec::new());
    let o = std::thread::scope(|s| {
        s.spawn(|| {
            let (t0, mut sample) = (Instant::now(), 30);
            while t0.elapsed().as_secs_f64() < a.soak {
                std::thread::sleep(Duration::from_secs(1));
                if t0.elapsed().as_secs() >= sample {
                    rss_samples.lock().unwrap().push((sample, server.rss_kib()));
                    sample += 30;
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        // Clients that leave mid-request: half a request line, then a full one without reading the answer.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut c) = TcpStream::connect(&server.addr) {
                    let _ = c.write_all(b"GET /v1/recommend?user=1&k=10 HTTP/1.1\r\nHo");
                }
                if let Ok(mut c) = TcpStream::connect(&server.addr) {
                    let _ =
                        c.write_all(b"GET /v1/recommend?user=2&k=50 HTTP/1.1\r\nHost: x\r\n\r\n");
                }
                hangups.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // 10 MB bodies.
        s.spawn(|| {
            let body = vec![b' '; 10 << 20];
            while !stop.load(Ordering::Relaxed) {
                let status = big_body(&server.addr, &body);
                if status == Some(413) {
                    big_413.fetch_add(1, Ordering::Relaxed);
                } else {
                    big_other.fetch_add(1, Ordering::Relaxed);
                    eprintln!("  10 MB body: {status:?}");
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        });
        // A truncated model file and a reload, then the good file and a reload, every 20 s.
        s.spawn(|| {
            let admin = agent();
            let reload = || {
                admin
                    .post(&format!("{}/v1/admin/reload", server.base))
                    .send(&[][..])
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            };
            let mut next = Instant::now() + Duration::from_secs(10);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if Instant::now() < next {
                    continue;
                }
                next += Duration::from_secs(20);
                std::fs::write(&served, &good[..good.len() / 3]).unwrap();
                match reload() {
                    500 => reload_refused.fetch_add(1, Ordering::Relaxed),
                    _ => reload_bad.fetch_add(1, Ordering::Relaxed),
                };
                std::fs::write(&served, &good).unwrap();
                match reload() {
                    200 => reload_ok.fetch_add(1, Ordering::Relaxed),
                    _ => reload_bad.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
        load(&server.base, &users, 64, &stop, Some(&want))
    });
    let rss_end = server.rss_kib();
    let mut lat = o.latencies;
    lat.sort_by(f64::total_cmp);
    println!(
        "faults: {:.0} s at 64 clients: {} requests, {} errors, {} wrong answers, p50 {:.1} ms, p99 {:.1} ms",
        a.soak,
        lat.len(),
        o.errors,
        o.wrong,
        percentile(&lat, 0.5) * 1e3,
        percentile(&lat, 0.99) * 1e3
    );
    println!(
        "faults: {} mid-request hang-up pairs; 10 MB bodies: {} answered 413, {} otherwise; reloads: {} truncated refused, {} good ok, {} unexpected",
        hangups.load(Ordering::Relaxed),
        big_413.load(Ordering::Relaxed),
        big_other.load(Ordering::Relaxed),
        reload_refused.load(Ordering::Relaxed),
        reload_ok.load(Ordering::Relaxed),
        reload_bad.load(Ordering::Relaxed)
    );
    println!(
        "faults: RSS {} MiB at start, {} MiB at the end; samples (s, MiB): {:?}",
        rss_start / 1024,
        rss_end / 1024,
        rss_samples
            .lock()
            .unwrap()
            .iter()
            .map(|&(t, r)| (t, r / 1024))
            .collect::<Vec<_>>()
    );
    drop(idle);
    let (status, _) = get(&client, &format!("{}/healthz", server.base)).unwrap();
    println!("faults: /healthz after the run: {status}");
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// POSTs `body` with its length announced and returns the status the server answered, if any.
fn big_body(addr: &str, body: &[u8]) -> Option<u16> {
    let mut c = TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).ok()?;
    // The server may answer and close before the whole body is written: a failed write is expected.
    let _ = c.write_all(body);
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    text.split(' ').nth(1)?.parse().ok()
}

fn main() {
    let a = args();
    if a.faults {
        faults(&a);
    } else {
        bench(&a);
    }
}
