//! The binary as a newcomer meets it: with no data it downloads ML-100K into the cache (or says clearly
//! why it could not and what to do), `evaluate --metrics-out` reports what training reported, completions
//! and man pages cover every subcommand, and a test that cannot run is recorded as a skip.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `wgrec` with a home of its own (`home`: empty cache, no WGREC_DATA_DIR, no mirror, not offline), so
/// that nothing on this machine is found by accident.
fn wgrec(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgrec"));
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("WGREC_DATA_DIR")
        .env_remove("WGREC_MIRROR")
        .env_remove("WGREC_OFFLINE")
        .current_dir(home);
    cmd
}

fn run(mut cmd: Command) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("running wgrec");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Synthetic ML-1M files (ratings.dat, movies.dat, users.dat: 120 users, 90 movies, 3,000 ratings) in
/// `home/ml-1m`, written by `wgrec synth`.
fn synth_ml_1m(home: &Path) -> PathBuf {
    let data = home.join("ml-1m");
    let out = data.to_str().unwrap();
    let args = [
        "-q",
        "synth",
        "--users",
        "120",
        "--movies",
        "90",
        "--ratings",
        "3000",
        "--format",
        "ml-1m",
        "--out",
        out,
    ];
    let (code, _, err) = run(wgrec(home, &args));
    assert_eq!(code, Some(0), "{err}");
    data
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn offline_without_data_says_where_to_put_it_and_offers_the_sample() {
    let home = scratch("offline");
    for (args, env) in [
        (&["tutorial", "--offline"][..], None),
        (&["tutorial"], Some(("WGREC_OFFLINE", "1"))),
        (&["tutorial", "--dataset", "ml-100k", "--offline"], None),
    ] {
        let mut cmd = wgrec(&home, args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let (code, _, err) = run(cmd);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("WGREC_OFFLINE") && err.contains("--dataset sample"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&home.join(".cache/wgrec").display().to_string()));
    }
    assert!(!home.join(".cache/wgrec/ml-100k").exists());
}

#[test]
fn a_failed_download_says_what_failed_and_what_to_do() {
    let home = scratch("no-network");
    // Nothing listens on port 9 of loopback (discard): the connection is refused at once.
    let mut cmd = wgrec(&home, &["tutorial"]);
    cmd.env("WGREC_MIRROR", "http://127.0.0.1:9/movielens");
    let (code, _, err) = run(cmd);
    assert_eq!(code, Some(2), "{err}");
    let cache = home.join(".cache/wgrec");
    for want in [
        "downloading ML-100K",
        "could not download http://127.0.0.1:9/movielens/ml-100k.zip: ",
        &format!("unzip it in {}", cache.display()),
        "--data-dir",
        "--dataset sample",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    // Nothing half-done is left in the cache.
    let left: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// The real ML-100K zipped into a `file://` mirror: the first run downloads and checks it, says so, and
/// names the data set and split under the table; the next run uses the cache (the mirror is gone).
#[test]
fn first_use_downloads_ml_100k_into_the_cache() {
    let Some(data) = common::ml_100k() else {
        return;
    };
    if common::gpu().is_none() {
        return;
    }
    let home = scratch("first-use");
    let mirror = home.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(mirror.join("ml-100k.zip")).unwrap());
    for f in ["u.data", "u.item"] {
        zip.start_file(
            format!("ml-100k/{f}"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&std::fs::read(data.join("ml-100k").join(f)).unwrap())
            .unwrap();
    }
    zip.finish().unwrap();
    let train = [
        "train",
        "--rating-weight",
        "1",
        "--retrieval-weight",
        "0",
        "--epochs",
        "1",
    ];
    let mut cmd = wgrec(&home, &train);
    cmd.env("WGREC_MIRROR", format!("file://{}", mirror.display()));
    let (code, out, err) = run(cmd);
    assert_eq!(code, Some(0), "{err}");
    let cached = home.join(".cache/wgrec/ml-100k");
    assert!(err.contains("downloading ML-100K"), "{err}");
    assert!(cached.join("u.data").is_file() && cached.join("u.item").is_file());
    let data_line = format!(
        "data: ml-100k at {}, random 80/20 split, seed 42 (80000 train / 20000 test)",
        cached.display()
    );
    assert!(out.contains(&data_line), "want {data_line:?} in:\n{out}");

    std::fs::remove_dir_all(&mirror).unwrap();
    let (code, out, err) = run(wgrec(&home, &train));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("downloading"), "{err}");
    assert!(out.contains(&data_line), "{out}");
}

/// A model trained and saved, then evaluated from its file: the same `test` section, number for number
/// (JSON keeps every f64 exactly), plus the checkpoint read and the adapter.
#[test]
fn evaluate_metrics_out_equals_the_training_runs_test_section() {
    if common::gpu().is_none() {
        return;
    }
    let home = scratch("evaluate");
    let (model, trained, evaluated) = (
        home.join("m.safetensors"),
        home.join("train.json"),
        home.join("eval.json"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let (code, _, err) = run(wgrec(
        &home,
        &[
            "--quiet",
            "train",
            "--dataset",
            "sample",
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "1",
            "--epochs",
            "2",
            "--save",
            &s(&model),
            "--metrics-out",
            &s(&trained),
        ],
    ));
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(wgrec(
        &home,
        &[
            "--quiet",
            "evaluate",
            "--model",
            &s(&model),
            "--metrics-out",
            &s(&evaluated),
        ],
    ));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "--quiet: {err}");
    let (t, e) = (json(&trained), json(&evaluated));
    let test = &t["runs"][0]["test"];
    assert!(test["recall_at_100_unseen"].is_f64(), "{test}");
    assert_eq!(&e["test"], test);
    assert_eq!(e["checkpoint"], s(&model));
    assert_eq!(e["adapter"], t["adapter"]);
    assert_eq!(e["data"], t["data"]);
    let printed = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{key} not printed:\n{out}"))
            .to_owned()
    };
    let rmse = test["root_mean_squared_error"].as_f64().unwrap();
    assert_eq!(printed("root_mean_squared_error"), format!("{rmse:.6}"));
    // What a resumed run cannot do is refused before any data loads (train::run::Run::resume).
    for (flags, says) in [
        (
            &["--validation-fraction", "0.1"][..],
            "--validation-fraction does not combine with --resume",
        ),
        (
            &["--fine-tune-rating", "1"],
            "--fine-tune-rating does not combine with --save or --resume",
        ),
    ] {
        let mut args = vec![
            "--quiet",
            "train",
            "--dataset",
            "sample",
            "--rating-weight",
            "1",
        ];
        args.extend(["--retrieval-weight", "1", "--resume"]);
        let m = s(&model);
        args.push(&m);
        args.extend_from_slice(flags);
        let (code, _, err) = run(wgrec(&home, &args));
        assert_eq!(code, Some(2), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

#[test]
fn completions_and_man_pages_cover_every_subcommand() {
    let home = scratch("completions");
    let subcommands = [
        "tutorial",
        "train",
        "evaluate",
        "recommend",
        "predict",
        "serve",
        "sweep",
        "recipe",
        "adapters",
        "selftest",
        "bench",
        "synth",
        "completions",
        "man",
    ];
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(wgrec(&home, &["completions", shell]));
        assert_eq!(code, Some(0), "{shell}: {err}");
        for sub in subcommands {
            assert!(out.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(out.contains("--metrics-out") && out.contains("--offline"));
    }
    let (code, out, err) = run(wgrec(&home, &["man"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with(".ie") || out.contains(".TH wgrec"), "{out}");
    for sub in subcommands {
        assert!(out.contains(sub), "man page lacks {sub}");
    }
    let (code, out, err) = run(wgrec(&home, &["man", "evaluate"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("wgrec\\-evaluate") && out.contains("metrics\\-out"));
    let (code, _, err) = run(wgrec(&home, &["man", "nope"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("no subcommand \"nope\""), "{err}");
}

/// Run by `skips_are_recorded_and_fail_in_ci` in a child process; records a skip the way the GPU and data
/// tests do.
#[test]
#[ignore = "a probe: skips_are_recorded_and_fail_in_ci runs it in a child process"]
fn skip_probe() {
    if std::env::var_os("WGREC_PROBE_NO_ADAPTER").is_some() {
        assert!(common::gpu().is_none(), "the adapter should be hidden");
    } else {
        common::skip("probe reason");
    }
}

#[test]
fn skips_are_recorded_and_fail_in_ci() {
    let dir = scratch("skips");
    let log = dir.join("skips.tsv");
    let probe = |ci: bool, hide_adapter: bool| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "skip_probe", "--ignored", "--test-threads", "1"])
            .env("WGREC_SKIP_LOG", &log)
            .env_remove("CI");
        if ci {
            cmd.env("CI", "true");
        }
        if hide_adapter {
            // wgpu reads WGPU_BACKEND; asking for a backend this machine lacks leaves no adapter.
            let absent = if cfg!(target_os = "macos") {
                "dx12"
            } else {
                "metal"
            };
            cmd.env("WGPU_BACKEND", absent)
                .env("WGREC_PROBE_NO_ADAPTER", "1");
        }
        cmd.output().unwrap()
    };
    assert!(probe(false, false).status.success());
    assert!(probe(false, true).status.success());
    let lines = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "cli::skip_probe\tprobe reason");
    assert!(
        lines[1].starts_with("cli::skip_probe\tno wgpu adapter"),
        "{lines:?}"
    );
    // In CI a skip is a failure, and nothing is recorded.
    let ci = probe(true, false);
    assert!(!ci.status.success());
    assert!(String::from_utf8_lossy(&ci.stdout).contains("CI=true"));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
}

/// `wgrec cv --folds 3` on synthetic ML-1M-format files: one line and one JSON entry per fold, the mean and
/// sd of every test metric (the four top-10 metrics among them); ML-100K's named folds are refused there.
#[test]
fn cv_reports_every_fold_with_mean_and_sd_on_ml_1m_files() {
    if common::gpu().is_none() {
        return;
    }
    let home = scratch("cv");
    let (data, out) = (synth_ml_1m(&home), home.join("cv.json"));
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    assert!(data.join("ratings.dat").is_file() && data.join("movies.dat").is_file());
    let cv = |folds: &str| {
        run(wgrec(
            &home,
            &[
                "-q",
                "cv",
                "--data-dir",
                &s(&data),
                "--folds",
                folds,
                "--rating-weight",
                "1",
                "--retrieval-weight",
                "1",
                "--epochs",
                "1",
                "--batch-size",
                "256",
                "--metrics-out",
                &s(&out),
            ],
        ))
    };
    let (code, stdout, err) = cv("3");
    assert_eq!(code, Some(0), "{err}");
    for fold in ["1/3", "2/3", "3/3", "mean±sd"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(fold)),
            "{fold}:\n{stdout}"
        );
    }
    let doc = json(&out);
    let folds = doc["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3);
    let rmse: Vec<f64> = folds
        .iter()
        .map(|f| {
            f["run"]["test"]["root_mean_squared_error"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let mean = rmse.iter().sum::<f64>() / 3.0;
    let sd = (rmse.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((doc["mean"]["root_mean_squared_error"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((doc["sd"]["root_mean_squared_error"].as_f64().unwrap() - sd).abs() < 1e-12);
    for key in ["map_at_10", "ndcg_at_10", "precision_at_10", "recall_at_10"] {
        let m = doc["mean"][key].as_f64().unwrap();
        assert!(
            (0.0..=1.0).contains(&m) && doc["sd"][key].is_f64(),
            "{key}: {m}"
        );
    }
    // The three test sets are disjoint and together hold every rating once.
    let tests: usize = folds
        .iter()
        .map(|f| {
            let d = f["data"].as_str().unwrap();
            assert!(d.contains("random fold") && d.contains("ml-1m"), "{d}");
            let n = d.rsplit(" / ").next().unwrap().trim_end_matches(" test)");
            n.parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(tests, 3000);

    std::fs::remove_file(&out).unwrap();
    let (code, _, err) = cv("u1,u2");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("fold u1 is one of ML-100K's own folds"),
        "{err}"
    );
    assert!(!out.exists(), "a failed cv writes no metrics file");
}

/// A model trained on a stratified split with its own test fraction evaluates, with no data options, on
/// the same test set: the checkpoint records the kind and the fraction.
#[test]
fn evaluate_rebuilds_the_recorded_stratified_split() {
    if common::gpu().is_none() {
        return;
    }
    let home = scratch("stratified");
    let (model, trained, evaluated) = (
        home.join("m.safetensors"),
        home.join("train.json"),
        home.join("eval.json"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let (code, _, err) = run(wgrec(
        &home,
        &[
            "-q",
            "train",
            "--dataset",
            "sample",
            "--split",
            "stratified",
            "--test-fraction",
            "0.3",
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "1",
            "--epochs",
            "1",
            "--save",
            &s(&model),
            "--metrics-out",
            &s(&trained),
        ],
    ));
    assert_eq!(code, Some(0), "{err}");
    let t = json(&trained);
    assert!(
        t["data"]
            .as_str()
            .unwrap()
            .contains("per-user stratified 70/30 split, seed 42"),
        "{}",
        t["data"]
    );
    let (code, _, err) = run(wgrec(
        &home,
        &[
            "-q",
            "evaluate",
            "--model",
            &s(&model),
            "--metrics-out",
            &s(&evaluated),
        ],
    ));
    assert_eq!(code, Some(0), "{err}");
    let e = json(&evaluated);
    assert_eq!(e["data"], t["data"]);
    assert_eq!(e["test"], t["runs"][0]["test"]);
    // --test-fraction means nothing for the other splits.
    let (code, _, err) = run(wgrec(
        &home,
        &[
            "-q",
            "train",
            "--dataset",
            "sample",
            "--test-fraction",
            "0.3",
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "1",
        ],
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--test-fraction applies to --split stratified only"),
        "{err}"
    );
}

/// --temperature and --full-softmax train on both families to the same metrics, --remove-accidental-hits
/// on the windowed family (the GPU family refuses it by name); all are recorded in the run's JSON, and bad
/// temperatures and meaningless combinations are refused before anything loads.
#[test]
fn retrieval_options_run_and_the_gpu_family_refuses_accidental_hits() {
    if common::gpu().is_none() {
        return;
    }
    let home = scratch("temperature");
    let out = home.join("t.json");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "-q",
            "train",
            "--dataset",
            "sample",
            "--rating-weight",
            "0",
            "--retrieval-weight",
            "1",
            "--epochs",
            "1",
        ];
        args.extend_from_slice(extra);
        run(wgrec(&home, &args))
    };
    let (code, _, err) = train(&[
        "--kernels",
        "windowed",
        "--temperature",
        "0.5",
        "--metrics-out",
        &s(&out),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(json(&out)["runs"][0]["temperature"], 0.5);
    // Both families train with the temperature, to the same metrics (they sum in other orders).
    let windowed = json(&out)["runs"][0]["test"].clone();
    let (code, _, err) = train(&[
        "--kernels",
        "gpu",
        "--temperature",
        "0.5",
        "--metrics-out",
        &s(&out),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let gpu = &json(&out)["runs"][0];
    assert_eq!(
        (gpu["temperature"].clone(), gpu["kernels"].clone()),
        (0.5.into(), "gpu".into())
    );
    for key in ["loss", "factorized_top_k/top_100_categorical_accuracy"] {
        let (a, b) = (
            windowed[key].as_f64().unwrap(),
            gpu["test"][key].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 2e-3 * a.abs().max(1.0),
            "{key}: windowed {a} vs gpu {b}"
        );
    }
    let (code, _, err) = train(&[
        "--kernels",
        "windowed",
        "--remove-accidental-hits",
        "--metrics-out",
        &s(&out),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(json(&out)["runs"][0]["remove_accidental_hits"], true);
    let (code, _, err) = train(&["--kernels", "gpu", "--remove-accidental-hits"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--remove-accidental-hits is implemented in the windowed kernel family only"),
        "{err}"
    );
    // --full-softmax on both families, to the same metrics; it refuses the logQ correction by name.
    let mut full = vec![];
    for family in ["windowed", "gpu"] {
        let (code, _, err) = train(&[
            "--kernels",
            family,
            "--full-softmax",
            "--batch-size",
            "256",
            "--metrics-out",
            &s(&out),
        ]);
        assert_eq!(code, Some(0), "{err}");
        let run = json(&out)["runs"][0].clone();
        assert_eq!(run["full_softmax"], true);
        full.push(run["test"].clone());
    }
    for key in ["loss", "factorized_top_k/top_100_categorical_accuracy"] {
        let (a, b) = (
            full[0][key].as_f64().unwrap(),
            full[1][key].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 2e-3 * a.abs().max(1.0),
            "full softmax, {key}: windowed {a} vs gpu {b}"
        );
    }
    let (code, _, err) = train(&["--full-softmax", "--logq-correction"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--full-softmax and --logq-correction do not combine"),
        "{err}"
    );
    let (code, _, err) = train(&["--temperature", "0"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--temperature must be a number in [0.01, 100]"),
        "{err}"
    );
}

/// `wgrec sweep --presets joint-features` on synthetic ML-1M files (users.dat gives the user features):
/// the preset trains with its own options and table width beside the grid, and is named in the table,
/// the CSV, the JSON (with its towers) and the trade-off chart; an unknown preset is refused up front.
#[test]
fn sweep_draws_a_feature_preset_beside_the_grid() {
    if common::gpu().is_none() {
        return;
    }
    let home = scratch("sweep-presets");
    let (data, out) = (synth_ml_1m(&home), home.join("sweep"));
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let sweep = |presets: &str| {
        run(wgrec(
            &home,
            &[
                "-q",
                "sweep",
                "--data-dir",
                &s(&data),
                "--rating-weights",
                "1",
                "--retrieval-weights",
                "1",
                "--epochs",
                "1",
                "--presets",
                presets,
                "--out",
                &s(&out),
            ],
        ))
    };
    let (code, _, err) = sweep("joint-features,nope");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown preset \"nope\""), "{err}");
    assert!(!out.exists(), "a refused sweep wrote {}", out.display());

    let (code, stdout, err) = sweep("joint-features");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("joint-features (4, 1)")),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].ends_with(",preset"), "{}", rows[0]);
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[1].starts_with("1,1,42,1,") && rows[1].ends_with(','));
    assert!(rows[2].starts_with("4,1,42,22,") && rows[2].ends_with(",joint-features"));
    let doc = json(&out.join("results.json"));
    let runs = doc["runs"].as_array().unwrap();
    assert!(runs[0].get("preset").is_none() && runs[0].get("towers").is_none());
    assert_eq!(runs[1]["preset"], "joint-features");
    assert_eq!(runs[1]["towers"]["feature_dim"], 8);
    assert_eq!(runs[1]["test_per_epoch"].as_array().unwrap().len(), 22);
    let svg = std::fs::read_to_string(out.join("tradeoff.svg")).unwrap();
    assert!(svg.contains("joint-features") && svg.contains("a preset"));
}

/// A model with feature towers on synthetic ML-1M files (users.dat and movies.dat give the features),
/// saved after 2 epochs: `evaluate` reproduces the run's test section from the file, `recommend` and
/// `predict` answer from the tables the stored towers compute, and `--resume` for 1 more epoch equals 3
/// straight epochs; tower flags on a resume are refused. Without users.dat, movie towers still train and
/// user features name the missing file.
#[test]
fn a_feature_tower_model_evaluates_recommends_and_resumes_from_its_file() {
    if common::gpu().is_none() {
        return;
    }
    let home = scratch("towers");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let (d, model) = (s(&synth_ml_1m(&home)), s(&home.join("m.safetensors")));
    let towers = [
        "--embedding-dim",
        "24",
        "--feature-dim",
        "8",
        "--user-features",
        "age,gender,occupation",
        "--movie-features",
        "all",
    ];
    let train = |epochs: &str, extra: &[&str], out: &str| {
        let mut args = vec!["-q", "train", "--data-dir", &d, "--rating-weight", "1"];
        args.extend([
            "--retrieval-weight",
            "1",
            "--batch-size",
            "256",
            "--epochs",
            epochs,
        ]);
        args.extend(["--metrics-out", out]);
        args.extend_from_slice(extra);
        run(wgrec(&home, &args))
    };
    let (saved, straight, resumed, evaluated) = (
        s(&home.join("saved.json")),
        s(&home.join("straight.json")),
        s(&home.join("resumed.json")),
        s(&home.join("eval.json")),
    );
    let (code, _, err) = train("2", &[&towers[..], &["--save", &model]].concat(), &saved);
    assert_eq!(code, Some(0), "{err}");
    let run_of = |p: &str| json(Path::new(p))["runs"][0].clone();
    assert_eq!(run_of(&saved)["towers"]["feature_dim"], 8);

    let (code, _, err) = run(wgrec(
        &home,
        &[
            "-q",
            "evaluate",
            "--model",
            &model,
            "--data-dir",
            &d,
            "--metrics-out",
            &evaluated,
        ],
    ));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(json(Path::new(&evaluated))["test"], run_of(&saved)["test"]);

    let (code, out, err) = run(wgrec(
        &home,
        &[
            "-q",
            "recommend",
            "--model",
            &model,
            "--user",
            "1",
            "-k",
            "3",
        ],
    ));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("Synthetic Movie"))
            .count(),
        3,
        "{out}"
    );
    let (code, out, err) = run(wgrec(
        &home,
        &[
            "-q",
            "predict",
            "--model",
            &model,
            "--user",
            "1",
            "--movie",
            "Synthetic Movie 2 (1922)",
        ],
    ));
    assert_eq!(code, Some(0), "{err}");
    let rating: f64 = out.trim().parse().unwrap_or_else(|_| panic!("{out}"));
    assert!(rating.is_finite(), "{out}");

    let (code, _, err) = train(
        "1",
        &["--resume", &model, "--movie-features", "genres"],
        &resumed,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--resume continues the checkpoint's own feature towers"),
        "{err}"
    );
    let (code, _, err) = train("1", &["--resume", &model], &resumed);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = train("3", &towers, &straight);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(run_of(&resumed)["test"], run_of(&straight)["test"]);

    // The users file is read only for user features: movie towers train without it.
    std::fs::remove_file(Path::new(&d).join("users.dat")).unwrap();
    let movie_only = [
        "--embedding-dim",
        "16",
        "--feature-dim",
        "8",
        "--movie-features",
        "genres",
        "--movie-tower",
        "16",
    ];
    let (code, _, err) = train("1", &movie_only, &straight);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = train("1", &towers, &straight);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("users.dat"), "{err}");
}
