//! `wgrec serve` against servers started on an ephemeral loopback port: every endpoint with its happy path
//! and each bad input, batched answers equal to `wgrec recommend`'s, reload (a new model swaps in, a broken
//! file is refused), graceful shutdown. Needs an adapter; skips without one.

mod common;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wgrec(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args(args)
        .env("WGREC_DATA_DIR", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Trains a joint model for `epochs` on the built-in sample into `path`.
fn train(path: &Path, epochs: &str, seed: &str) {
    let o = wgrec(&[
        "train",
        "--dataset",
        "sample",
        "--rating-weight",
        "1",
        "--retrieval-weight",
        "1",
        "--epochs",
        epochs,
        "--seed",
        seed,
        "--quiet",
        "--save",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A joint model trained for one epoch on the built-in sample, shared by the tests (None: no adapter).
fn model() -> Option<&'static Path> {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    common::gpu()?;
    Some(MODEL.get_or_init(|| {
        let path = scratch("model").join("joint.safetensors");
        train(&path, "1", "7");
        path
    }))
}

/// A `wgrec serve` child on 127.0.0.1:0; killed when dropped. Its stderr is collected in `log`.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgrec"))
            .args(["serve", "--model"])
            .arg(model)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server did not say where it listens: {:?}",
                    log.lock().unwrap()
                );
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            child,
            base,
            log,
            agent,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.get(path);
        (status, parse(&text))
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        (r.status().as_u16(), parse(&text))
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no exit 30 s after SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

#[track_caller]
fn assert_error(got: (u16, Value), status: u16, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    let msg = got.1["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error message in {}", got.1));
    assert!(!msg.is_empty(), "{what}");
}

/// `wgrec recommend --all-users` as user -> [(title, score)], best first.
fn cli_top_k(model: &Path, k: usize, exclude_seen: bool) -> HashMap<String, Vec<(String, f32)>> {
    let out = model.with_file_name(format!("top{k}-{exclude_seen}.csv"));
    let k = k.to_string();
    let mut args = vec![
        "recommend",
        "--model",
        model.to_str().unwrap(),
        "--all-users",
        "--out",
        out.to_str().unwrap(),
        "-k",
        &k,
        "-q",
    ];
    if exclude_seen {
        args.push("--exclude-seen");
    }
    let o = wgrec(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut top: HashMap<String, Vec<(String, f32)>> = HashMap::new();
    for line in std::fs::read_to_string(&out).unwrap().lines().skip(1) {
        let f = csv_fields(line);
        assert_eq!(f.len(), 4, "{line}");
        top.entry(f[0].to_string())
            .or_default()
            .push((f[2].to_string(), f[3].parse().unwrap()));
    }
    top
}

/// The fields of one CSV line (RFC 4180 quoting, as `recommend --out` writes it).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// (title, score) of one result of the API.
fn ranked(result: &Value) -> Vec<(String, f32)> {
    result["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap().to_string(),
                i["score"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

#[test]
fn every_endpoint_and_every_bad_input() {
    let Some(model) = model() else { return };
    let s = Server::start(model, &[]);
    let log = s.log();
    assert!(
        log.contains("adapter: ") && log.contains("model: "),
        "start-up names the adapter and the model: {log}"
    );

    let (status, health) = s.get_json("/healthz");
    assert_eq!((status, health), (200, json!({"status": "ok"})));

    let (status, m) = s.get_json("/v1/model");
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["model_version"], 1);
    assert_eq!(m["kernel_family"], "windowed");
    assert!(m["config"]["embedding_dim"].as_u64().unwrap() > 0, "{m}");
    assert!(m["vocabulary"]["titles"].as_u64().unwrap() > 1, "{m}");
    assert!(
        m["training"]["test"]["root_mean_squared_error"].is_number(),
        "the checkpoint's test metrics: {m}"
    );
    assert!(m["adapter"]["name"].is_string(), "{m}");

    let (status, users) = s.get_json("/v1/users");
    assert_eq!(status, 200);
    let users: Vec<String> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert!(users.len() > 10, "{users:?}");
    let u = &users[0];

    // GET and POST agree; each user's list is ranked as `wgrec recommend` ranks it.
    let want = cli_top_k(model, 5, true);
    let (status, got) = s.get_json(&format!("/v1/recommend?user={u}&k=5&exclude_seen=true"));
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["results"][0]["user"], u.as_str());
    assert_eq!(got["results"][0]["oov"], false);
    assert_eq!(ranked(&got["results"][0]), want[u]);
    let (status, post) = s.post(
        "/v1/recommend",
        json!({"users": [u, users[1]], "k": 5, "exclude_seen": true})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{post}");
    assert_eq!(ranked(&post["results"][0]), want[u]);
    assert_eq!(ranked(&post["results"][1]), want[&users[1]]);
    // A numeric id is the same user.
    let numeric: u64 = u.parse().unwrap();
    let (_, num) = s.post(
        "/v1/recommend",
        json!({"users": [numeric], "k": 5, "exclude_seen": true})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(ranked(&num["results"][0]), want[u]);

    // An unknown user takes the OOV row, and says so; the ranking is the CLI's for that id.
    let (status, oov) = s.get_json("/v1/recommend?user=nobody&k=3");
    assert_eq!(status, 200, "{oov}");
    assert_eq!(oov["results"][0]["oov"], true);
    let o = wgrec(&[
        "recommend",
        "--model",
        model.to_str().unwrap(),
        "--user",
        "nobody",
        "-k",
        "3",
        "-q",
    ]);
    let table = String::from_utf8(o.stdout).unwrap();
    let cli_titles: Vec<String> = table
        .lines()
        .skip(1)
        .map(|l| l[16..].to_string()) // after "{rank:>4}  {score:>8.4}  "
        .collect();
    let api_titles: Vec<String> = ranked(&oov["results"][0])
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(api_titles, cli_titles, "{table}");

    // Predictions equal `wgrec predict`'s, known and unknown ids alike.
    let title = &want[u][0].0;
    for (user, movie) in [(u.as_str(), title.as_str()), ("nobody", "Nope (2000)")] {
        let q = format!(
            "/v1/predict?user={}&movie={}",
            user,
            percent(movie.as_bytes())
        );
        let (status, p) = s.get_json(&q);
        assert_eq!(status, 200, "{p}");
        let o = wgrec(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--user",
            user,
            "--movie",
            movie,
            "-q",
        ]);
        let cli = String::from_utf8(o.stdout).unwrap();
        let rating = p["rating"].as_f64().unwrap() as f32;
        assert_eq!(format!("{rating:.4}"), cli.trim(), "{p}");
        assert_eq!(p["oov"], user == "nobody", "{p}");
        assert_eq!(p["movie_oov"], user == "nobody", "{p}");
    }
    let (status, p) = s.post(
        "/v1/predict",
        json!({"pairs": [{"user": u, "movie": title}, {"user": 1, "movie": "Nope"}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["predictions"].as_array().unwrap().len(), 2);
    assert_eq!(p["predictions"][1]["movie_oov"], true);

    let (status, seen) = s.get_json(&format!("/v1/seen?user={u}"));
    assert_eq!(status, 200);
    let seen_titles = seen["titles"].as_array().unwrap();
    assert!(!seen_titles.is_empty(), "{seen}");
    // exclude_seen leaves exactly these out.
    let all = cli_top_k(model, 256, false);
    let excluded = cli_top_k(model, 256, true);
    let kept: Vec<&String> = all[u]
        .iter()
        .map(|(t, _)| t)
        .filter(|t| !seen_titles.iter().any(|s| s == t.as_str()))
        .collect();
    let ex: Vec<&String> = excluded[u].iter().map(|(t, _)| t).collect();
    assert_eq!(
        ex[..kept.len().min(ex.len())],
        kept[..kept.len().min(ex.len())]
    );

    let (status, page) = s.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<title>wgrec</title>") && page.contains("/v1/recommend"));

    // Bad input: 400 (413 for a body over the limit) with {"error": ...}; the server keeps serving.
    let max_k = wgrec::serve::MAX_K;
    for q in [
        format!("/v1/recommend?user={u}&k=0"),
        format!("/v1/recommend?user={u}&k={}", max_k + 1),
        format!("/v1/recommend?user={u}&k=-3"),
        format!("/v1/recommend?user={u}&k=ten"),
        format!("/v1/recommend?user={u}&exclude_seen=maybe"),
        format!("/v1/recommend?user={u}&user=2"),
        format!("/v1/recommend?user={u}&kk=2"),
        "/v1/recommend?k=5".to_string(),
        "/v1/recommend?user=%FF%FE".to_string(),
        format!("/v1/predict?user={u}&movie=Caf%E9"),
        format!("/v1/predict?user={u}"),
        "/v1/seen".to_string(),
    ] {
        assert_error(s.get_json(&q), 400, &q);
    }
    let too_many: Vec<String> = (0..1025).map(|i| i.to_string()).collect();
    for body in [
        b"{".to_vec(),
        b"".to_vec(),
        b"[1, 2]".to_vec(),
        br#"{"users": []}"#.to_vec(),
        br#"{"users": ["1"], "k": 0}"#.to_vec(),
        format!(r#"{{"users": ["1"], "k": {}}}"#, max_k + 1).into_bytes(),
        br#"{"users": ["1"], "k": "ten"}"#.to_vec(),
        br#"{"users": [1.5]}"#.to_vec(),
        br#"{"user": "1"}"#.to_vec(),
        json!({ "users": too_many }).to_string().into_bytes(),
        b"{\"users\": [\"\xff\xfe\"]}".to_vec(),
        br#"{"users": ["\ud800"]}"#.to_vec(),
    ] {
        let what = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        assert_error(s.post("/v1/recommend", &body), 400, &what);
    }
    for body in [
        br#"{"pairs": []}"#.to_vec(),
        br#"{"pairs": [{"user": "1"}]}"#.to_vec(),
        b"{\"pairs\": [{\"user\": \"1\", \"movie\": \"Caf\xe9\"}]}".to_vec(),
    ] {
        let what = String::from_utf8_lossy(&body).to_string();
        assert_error(s.post("/v1/predict", &body), 400, &what);
    }
    // Read to its end before the answer, so that a client that writes first and reads after gets the 413.
    for mib in [2, 10] {
        let what = format!("{mib} MiB body");
        assert_error(s.post("/v1/recommend", &vec![b' '; mib << 20]), 413, &what);
    }
    assert_error(s.get_json("/v1/nothing"), 404, "unknown endpoint");
    assert_error(s.post("/v1/model", b"{}"), 405, "POST to a GET endpoint");
    let (status, _) = s.get_json("/healthz");
    assert_eq!(status, 200, "still serving after the bad requests");

    // The metrics count what happened, in the Prometheus text format.
    let (status, text) = s.get("/metrics");
    assert_eq!(status, 200);
    for needle in [
        "wgrec_http_requests_total{endpoint=\"/v1/recommend\",status=\"200\"}",
        "wgrec_http_requests_total{endpoint=\"/v1/recommend\",status=\"400\"}",
        "wgrec_http_request_duration_seconds_bucket{",
        "wgrec_gpu_batch_size_count",
        "wgrec_queue_depth",
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    let status = s.terminate();
    assert!(status.success(), "exit {status:?}");
}

/// Percent-encodes every byte but unreserved ASCII.
fn percent(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Mixed concurrent requests (different k, with and without exclusions, one user or several) answered in
/// shared passes equal `wgrec recommend`; the same with batching off.
#[test]
fn batched_answers_equal_single_answers() {
    let Some(model) = model() else { return };
    let (k_small, k_large) = (5, 40);
    let want: HashMap<(usize, bool), _> = [
        (k_small, false),
        (k_small, true),
        (k_large, false),
        (k_large, true),
    ]
    .into_iter()
    .map(|(k, e)| ((k, e), cli_top_k(model, k, e)))
    .collect();
    // A long wait, so that the requests below queue up together.
    for extra in [
        &["--max-batch", "64", "--max-wait-us", "50000"][..],
        &["--max-batch", "1"],
    ] {
        let s = Server::start(model, extra);
        let (_, users) = s.get_json("/v1/users");
        let users: Vec<String> = users["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_string())
            .collect();
        let s = &s;
        let users = &users;
        let want = &want;
        std::thread::scope(|scope| {
            for t in 0..16usize {
                scope.spawn(move || {
                    for i in 0..6usize {
                        let k = if (t + i) % 2 == 0 { k_small } else { k_large };
                        let exclude = (t / 2 + i) % 2 == 0;
                        let picks: Vec<&String> = (0..1 + (t + i) % 3)
                            .map(|j| &users[(t * 7 + i * 13 + j * 31) % users.len()])
                            .collect();
                        let (status, got) = s.post(
                            "/v1/recommend",
                            json!({"users": picks, "k": k, "exclude_seen": exclude})
                                .to_string()
                                .as_bytes(),
                        );
                        assert_eq!(status, 200, "{got}");
                        for (j, u) in picks.iter().enumerate() {
                            assert_eq!(
                                ranked(&got["results"][j]),
                                want[&(k, exclude)][*u],
                                "user {u}, k {k}, exclude_seen {exclude} ({extra:?})"
                            );
                        }
                    }
                });
            }
        });
        let (_, text) = s.get("/metrics");
        let mean = batch_mean(&text);
        if extra[1] == "1" {
            assert!(
                mean <= 3.0,
                "--max-batch 1: one request per pass, got {mean}"
            );
        } else {
            assert!(
                mean > 3.0,
                "requests shared passes: mean batch {mean}\n{text}"
            );
        }
    }
}

/// Mean users per GPU pass from the batch-size histogram.
fn batch_mean(metrics: &str) -> f64 {
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in {metrics}"))
    };
    value("wgrec_gpu_batch_size_sum ") / value("wgrec_gpu_batch_size_count ")
}

/// POST /v1/admin/reload and SIGHUP swap in the file's new contents; a truncated file is refused with an
/// error and the old model keeps answering.
#[test]
fn reload_swaps_models_and_refuses_a_broken_file() {
    let Some(model) = model() else { return };
    let dir = scratch("reload");
    let served = dir.join("served.safetensors");
    let other = dir.join("other.safetensors");
    train(&other, "2", "11");
    std::fs::copy(model, &served).unwrap();
    let first = cli_top_k(model, 10, false);
    let second = cli_top_k(&other, 10, false);
    let s = Server::start(&served, &[]);
    let ask = |s: &Server| {
        let (status, r) = s.get_json("/v1/recommend?user=1&k=10");
        assert_eq!(status, 200, "{r}");
        (
            r["model_version"].as_u64().unwrap(),
            ranked(&r["results"][0]),
        )
    };
    assert_eq!(ask(&s), (1, first["1"].clone()));
    assert_ne!(first["1"], second["1"], "the two models rank differently");

    // A truncated file: refused, with the reason; version 1 keeps serving.
    let bytes = std::fs::read(&other).unwrap();
    std::fs::write(&served, &bytes[..bytes.len() / 2]).unwrap();
    let (status, r) = s.post("/v1/admin/reload", b"");
    assert_eq!(status, 500, "{r}");
    let msg = r["error"].as_str().unwrap();
    assert!(
        msg.contains("refused") && msg.contains("served.safetensors"),
        "{msg}"
    );
    assert_eq!(ask(&s), (1, first["1"].clone()));

    // The whole file: swapped in.
    std::fs::write(&served, &bytes).unwrap();
    let (status, r) = s.post("/v1/admin/reload", b"");
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["model_version"], 2);
    assert_eq!(ask(&s), (2, second["1"].clone()));
    let (_, m) = s.get_json("/v1/model");
    assert_eq!(m["model_version"], 2);

    // SIGHUP: back to the first model.
    std::fs::copy(model, &served).unwrap();
    s.signal("-HUP");
    let t0 = Instant::now();
    while ask(&s).0 != 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no reload: {}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ask(&s), (3, first["1"].clone()));
    assert!(s.log().contains("SIGHUP: reloaded"), "{}", s.log());
    let (_, text) = s.get("/metrics");
    assert!(
        text.contains("wgrec_model_reloads_total{result=\"refused\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("wgrec_model_reloads_total{result=\"ok\"} 2"),
        "{text}"
    );
    assert!(s.terminate().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SIGTERM while requests are queued: each is answered, then the server exits 0. A client that leaves
/// mid-request does not disturb the others.
#[test]
fn shutdown_finishes_the_requests_in_flight() {
    let Some(model) = model() else { return };
    // A long batching wait keeps the requests in flight when the signal comes.
    let s = Server::start(model, &["--max-wait-us", "500000"]);
    let addr = s.base.trim_start_matches("http://").to_string();
    // A client that sends half a request and leaves, and one that leaves before its answer.
    {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(b"GET /v1/recommend?user=1 HTTP/1.1\r\nHo")
            .unwrap();
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(b"GET /v1/recommend?user=1&k=5 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
    }
    let s = Arc::new(s);
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || s.get_json(&format!("/v1/recommend?user={}&k=3", i + 1)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    s.signal("-TERM");
    for c in clients {
        let (status, r) = c.join().unwrap();
        assert_eq!(status, 200, "answered although the signal came first: {r}");
        assert_eq!(
            r["results"][0]["recommendations"].as_array().unwrap().len(),
            3
        );
    }
    let mut s = Arc::try_unwrap(s).ok().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit {status:?}: {}", s.log());
    // New connections are refused once it has gone.
    let mut buf = Vec::new();
    if let Ok(mut c) = std::net::TcpStream::connect(&addr) {
        let _ = c.read_to_end(&mut buf);
    }
    assert!(buf.is_empty());
}

/// Headless Chromium (`$WGREC_CHROMIUM`, else `chromium` on PATH), or None after recording a skip.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WGREC_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(p.into());
    }
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        common::skip(
            "no headless browser for the page test: install Debian's chromium (apt-get install -y \
             chromium; scripts/test.sh does) or set WGREC_CHROMIUM",
        );
    }
    found
}

/// The texts of the `<span class="title">` elements inside the element with id `id` of a DOM dump.
fn titles_in(dom: &str, id: &str) -> Vec<String> {
    let open = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let rest = &dom[open..];
    let list = &rest[..rest
        .find("</ol>")
        .into_iter()
        .chain(rest.find("</ul>"))
        .min()
        .unwrap()];
    list.split("<span class=\"title\">")
        .skip(1)
        .map(|s| {
            s[..s.find("</span>").unwrap()]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// The page in a real browser: it picks the user named in `?user=` (as typing one does), then shows that
/// user's top 10 unseen titles and the titles they rated in training, the same lists the API gives.
#[test]
fn page_shows_a_users_top_k_next_to_what_they_rated() {
    let Some(model) = model() else { return };
    let Some(browser) = chromium() else { return };
    let s = Server::start(model, &[]);
    let user = "7";
    let profile = scratch("chromium");
    let o = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("{}/?user={user}", s.base))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, want) = s.get_json(&format!("/v1/recommend?user={user}&k=10&exclude_seen=true"));
    let want: Vec<String> = ranked(&want["results"][0])
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(want.len(), 10);
    assert_eq!(titles_in(&dom, "recs"), want, "{dom}");
    let (_, seen) = s.get_json(&format!("/v1/seen?user={user}"));
    let seen: Vec<String> = seen["titles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert!(!seen.is_empty());
    assert_eq!(titles_in(&dom, "seen"), seen, "{dom}");
    assert!(dom.contains("model version 1"), "the model line: {dom}");
    let _ = std::fs::remove_dir_all(&profile);
}
