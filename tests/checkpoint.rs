//! Checkpoints: save -> load is exact, a loaded model evaluates to the metrics training reported, N + M
//! resumed epochs equal N + M straight ones, and every kind of bad file fails with one error that names the
//! file (exit code 2 from the binary, nothing overwritten). The bad-file tests need no adapter or data.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use wgrec::checkpoint::*;
use wgrec::data::{DataOptions, Ratings, Vocabulary};
use wgrec::model::{ModelConfig, Params};
use wgrec::output::Output;
use wgrec::train::run::{Env, Run};

/// A small checkpoint built without training: 3 users, 4 titles, D 16.
fn synthetic() -> Checkpoint {
    let users = Vocabulary::from_values(["1", "2", "30"]);
    let titles = Vocabulary::from_values(["A (1990)", "B, The (1991)", "C (1992)", "D (1993)"]);
    let cfg = ModelConfig::tutorial(users.rows(), titles.rows(), 16);
    let params = Params::init(&cfg, 7);
    let acc = |v: &[f32]| v.iter().map(|x| 0.1 + x.abs()).collect::<Vec<f32>>();
    // The flat MLP vector's padding between tensors is not stored: keep it zero.
    let l = cfg.layout();
    let in_tensor = |i: usize| {
        [
            (l.w1, l.k * l.h1),
            (l.b1, l.h1),
            (l.w2, l.h1 * l.h2),
            (l.b2, l.h2),
            (l.w3, l.h2),
            (l.b3, 1),
        ]
        .iter()
        .any(|&(o, n)| (o..o + n).contains(&i))
    };
    let mut mlp_acc = acc(&params.mlp);
    for (i, v) in mlp_acc.iter_mut().enumerate() {
        if !in_tensor(i) {
            *v = 0.0;
        }
    }
    let train = Ratings {
        user: vec![1, 1, 2, 3],
        movie: vec![3, 1, 4, 1],
        rating: vec![4.0, 3.0, 5.0, 1.0],
    };
    Checkpoint {
        cfg,
        accumulators: Accumulators {
            user_emb: acc(&params.user_emb),
            movie_emb: acc(&params.movie_emb),
            mlp: mlp_acc,
            towers: Vec::new(),
        },
        towers: Default::default(),
        params,
        seen: Seen::from_ratings(&train, users.rows()),
        users,
        titles,
        training: TrainingState {
            rating_weight: 1.0,
            retrieval_weight: 1.0,
            batch_size: 8192,
            eval_batch_size: 4096,
            learning_rate: 0.1,
            seed: 42,
            reshuffle: false,
            epochs_done: 3,
            batch_rng_state: u64::MAX.to_string(),
            split: SplitInfo {
                split_dir: None,
                seed: 42,
                kind: wgrec::data::SplitKind::Stratified,
                dataset: None,
                test_fraction: Some(0.3),
            },
            data: "synthetic".into(),
            adapter: "none".into(),
            history: vec![EpochRecord {
                epoch: 1,
                loss: 1.5,
                seconds: 0.1,
            }],
            test: serde_json::json!({}),
        },
    }
}

/// Saves through a checked `--save` output, as the binary does.
fn save(ck: &Checkpoint, path: &Path) -> anyhow::Result<()> {
    ck.save(&Output::check("--save", path)?)
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrec-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn save_then_load_is_exact_and_leaves_no_temporary_file() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("model.safetensors");
    let ck = synthetic();
    std::fs::write(&path, b"an older file").unwrap();
    save(&ck, &path).unwrap();
    assert!(Checkpoint::load(&path).unwrap() == ck, "loaded != saved");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["model.safetensors".to_string()]);
    // Saving where the directory does not exist fails and names the path.
    let err = save(&ck, &dir.join("missing/model.safetensors")).unwrap_err();
    assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `synthetic()` with a movie tower (genres, a one-layer stack) and a user tower (age, no stack).
fn with_towers() -> Checkpoint {
    use wgrec::data::features::Field;
    use wgrec::model::tower::{Tower, Towers};
    let mut ck = synthetic();
    let genres = Field {
        name: "genres",
        vocab: Vocabulary::from_values(["Comedy", "Drama", "War"]),
        offsets: vec![0, 0, 2, 3, 3, 4],
        ids: vec![1, 3, 2, 1],
    };
    let age = Field {
        name: "age",
        vocab: Vocabulary::from_values(["18-24", "25-34"]),
        offsets: vec![0, 0, 1, 2, 3],
        ids: vec![2, 1, 1],
    };
    ck.towers = Towers {
        user: Some(Tower::new(4, 8, vec![age], 8, vec![]).unwrap()),
        movie: Some(Tower::new(5, 8, vec![genres], 4, vec![16]).unwrap()),
    };
    ck.params.towers = ck.towers.init(3);
    ck.accumulators.towers = ck.params.towers.iter().map(|x| 0.1 + x.abs()).collect();
    ck
}

/// A checkpoint with feature towers round-trips exactly (shapes, vocabularies, features, parameters,
/// Adagrad state); a CSR pointing past its vocabulary, or towers that end in another width than the
/// tables, is refused by name.
#[test]
fn towers_round_trip_and_bad_towers_are_named() {
    let ck = with_towers();
    let bytes = ck.to_bytes().unwrap();
    assert_eq!(Checkpoint::from_bytes(&bytes).unwrap(), ck);
    let mut bad = with_towers();
    if let Some(t) = bad.towers.movie.as_mut() {
        t.fields[1].ids[0] = 9;
    }
    let err = format!(
        "{:#}",
        Checkpoint::from_bytes(&bad.to_bytes().unwrap()).unwrap_err()
    );
    assert!(
        err.contains("towers/movie/genres") && err.contains("CSR"),
        "{err}"
    );
    let mut wide = with_towers();
    if let Some(t) = wide.towers.movie.as_mut() {
        t.layers = vec![32];
    }
    wide.params.towers = wide.towers.init(3);
    wide.accumulators.towers = wide.params.towers.clone();
    let err = format!(
        "{:#}",
        Checkpoint::from_bytes(&wide.to_bytes().unwrap()).unwrap_err()
    );
    assert!(err.contains("meet in one width"), "{err}");
}

#[test]
fn the_file_is_plain_safetensors_with_keras_shapes() {
    let ck = synthetic();
    let bytes = ck.to_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shape = |n: &str| st.tensor(n).unwrap().shape().to_vec();
    assert_eq!(shape("user_embedding"), vec![4, 16]);
    assert_eq!(shape("movie_embedding"), vec![5, 16]);
    assert_eq!(shape("rating/dense_0/kernel"), vec![32, 256]);
    assert_eq!(shape("rating/dense_2/kernel"), vec![128, 1]);
    assert_eq!(shape("adagrad/rating/dense_2/bias"), vec![1]);
    // The MLP weights come out of the flat layout in row-major (in, out) order.
    let l = ck.cfg.layout();
    let w2 = st.tensor("rating/dense_1/kernel").unwrap();
    let first = f32::from_le_bytes(w2.data()[4..8].try_into().unwrap());
    assert_eq!(first, ck.params.mlp[l.w2 + 1]);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let md = meta.metadata().as_ref().unwrap();
    assert_eq!(md["format"], FORMAT);
    assert_eq!(md["users"], r#"["1","2","30"]"#);
}

/// Runs the binary; returns (exit code, stderr).
fn wgrec(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args(args)
        .env("WGREC_DATA_DIR", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `recommend` on `bytes` fails with exit code 2 and one error line naming the file and containing `what`;
/// `--out` and `train --resume ... --save` leave an existing file alone.
#[track_caller]
fn rejected(name: &str, bytes: &[u8], what: &str) {
    let dir = temp_dir(name);
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, bytes).unwrap();
    let keep = dir.join("keep.csv");
    std::fs::write(&keep, b"precious").unwrap();
    let b = bad.to_str().unwrap();
    let k = keep.to_str().unwrap();
    for args in [
        vec!["recommend", "--model", b, "--user", "1"],
        vec!["recommend", "--model", b, "--all-users", "--out", k],
        vec![
            "predict", "--model", b, "--user", "1", "--movie", "A (1990)",
        ],
        vec!["evaluate", "--model", b],
        vec![
            "train",
            "--resume",
            b,
            "--save",
            k,
            "--rating-weight",
            "1",
            "--retrieval-weight",
            "1",
        ],
    ] {
        let (code, err) = wgrec(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one error line, got {err}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(b),
            "{args:?}: {err}"
        );
        assert!(err.contains(what), "{args:?}: expected {what:?} in {err}");
    }
    assert_eq!(std::fs::read(&keep).unwrap(), b"precious");
    assert_eq!(
        std::fs::read(&bad).unwrap(),
        bytes,
        "the bad file is left as it was"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_file_is_rejected() {
    let bytes = synthetic().to_bytes().unwrap();
    rejected("truncated", &bytes[..bytes.len() / 2], "truncated");
    rejected("truncated-header", &bytes[..100], "truncated");
}

#[test]
fn corrupted_tensor_data_is_rejected() {
    let mut bytes = synthetic().to_bytes().unwrap();
    let n = bytes.len();
    bytes[n - 1000] ^= 0x10;
    rejected("corrupted-data", &bytes, "checksum");
}

#[test]
fn corrupted_header_is_rejected() {
    let mut bytes = synthetic().to_bytes().unwrap();
    bytes[9] = b'!'; // the header's first key loses its opening quote
    rejected("corrupted-header", &bytes, "corrupted safetensors header");
}

/// Rewrites a checkpoint's file with `edit` applied to its tensors (name, shape, bytes) and metadata.
fn rewrite(
    edit: impl Fn(
        &mut Vec<(String, Vec<usize>, Vec<u8>)>,
        &mut std::collections::HashMap<String, String>,
    ),
) -> Vec<u8> {
    let bytes = synthetic().to_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut md = meta.metadata().clone().unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec(), t.dtype()))
        .collect();
    let mut plain: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, b, _)| (n.clone(), s.clone(), b.clone()))
        .collect();
    edit(&mut plain, &mut md);
    for (t, p) in tensors.iter_mut().zip(plain) {
        (t.0, t.1, t.2) = p;
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, s, b, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(md)).unwrap()
}

#[test]
fn a_changed_header_fails_the_checksum() {
    // One byte of a title, the JSON still valid: TFRS-era files would load this silently.
    let bytes = synthetic().to_bytes().unwrap();
    let at = bytes.windows(8).position(|w| w == b"B, The (").unwrap() + 8;
    let mut edited = bytes.clone();
    assert_eq!(edited[at + 1], b'9');
    edited[at + 1] = b'M';
    rejected("header-title", &edited, "checksum");
    // A changed training record (config, split) as well.
    let bytes = rewrite(|_, md| {
        let t = md["training"].replace("\"learning_rate\":0.1", "\"learning_rate\":0.2");
        md.insert("training".into(), t);
    });
    rejected("header-training", &bytes, "checksum");
}

/// FNV-1a over the tensors only: the checksum older wgrec wrote.
fn fnv1a64(tensors: &[(String, Vec<usize>, Vec<u8>)]) -> String {
    let mut sorted: Vec<&(String, Vec<usize>, Vec<u8>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, _, bytes) in sorted {
        for &b in name.as_bytes().iter().chain(bytes) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("fnv1a64:{h:016x}")
}

#[test]
fn an_older_checkpoint_loads_with_a_note() {
    let old = rewrite(|t, md| {
        md.insert("checksum".into(), fnv1a64(t));
    });
    assert!(Checkpoint::from_bytes(&old).unwrap() == synthetic());
    let dir = temp_dir("older");
    let path = dir.join("old.safetensors");
    std::fs::write(&path, &old).unwrap();
    let (code, err) = wgrec(&[
        "recommend",
        "--model",
        path.to_str().unwrap(),
        "--user",
        "1",
    ]);
    assert!(
        err.contains("older wgrec") && err.contains("not the header's metadata"),
        "{code:?} {err}"
    );
    // Its tensors are still covered.
    let flipped = rewrite(|t, md| {
        md.insert("checksum".into(), fnv1a64(t));
        t[0].2[0] ^= 1;
    });
    rejected("older-flipped", &flipped, "checksum");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_weights_are_rejected_naming_the_tensor() {
    let mut ck = synthetic();
    ck.params.movie_emb[16 * 2 + 5] = f32::NAN;
    rejected(
        "nan",
        &ck.to_bytes().unwrap(),
        "tensor \"movie_embedding\" holds NaN at [2, 5]",
    );
    let mut ck = synthetic();
    let b3 = ck.cfg.layout().b3;
    ck.params.mlp[b3] = f32::INFINITY;
    rejected(
        "inf",
        &ck.to_bytes().unwrap(),
        "tensor \"rating/dense_2/bias\" holds inf at [0]",
    );
    let mut ck = synthetic();
    ck.accumulators.user_emb[3] = -1.0;
    rejected(
        "negative-accumulator",
        &ck.to_bytes().unwrap(),
        "tensor \"adagrad/user_embedding\" holds -1 at [0, 3]",
    );
}

#[test]
fn the_size_is_checked_against_the_header() {
    let bytes = synthetic().to_bytes().unwrap();
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 64]);
    rejected("trailing", &longer, "64 bytes follow the tensors");
    rejected(
        "short",
        &bytes[..bytes.len() - 4],
        "truncated: its header describes",
    );
}

#[test]
fn wrong_tensor_shapes_are_rejected() {
    // The user table transposed: same bytes (so the checksum still holds), wrong shape.
    let bytes = rewrite(|t, _| {
        let u = t.iter_mut().find(|(n, ..)| n == "user_embedding").unwrap();
        u.1 = vec![16, 4];
    });
    rejected("shape", &bytes, "tensor \"user_embedding\" is F32 [16, 4]");
    // A model config whose D disagrees with every tensor.
    let bytes = rewrite(|_, md| {
        md.insert(
            "model".into(),
            r#"{"users":4,"movies":5,"embedding_dim":32,"hidden1":256,"hidden2":128}"#.into(),
        );
    });
    rejected("config", &bytes, "needs F32 [4, 32]");
}

#[test]
fn other_files_are_rejected() {
    rejected(
        "text",
        b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
        "not a safetensors file",
    );
    rejected("empty", b"", "not a safetensors file");
    let w = [1.0f32, 2.0].map(f32::to_le_bytes).concat();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &w).unwrap();
    let plain = safetensors::serialize([("w", view)], None).unwrap();
    rejected("foreign", &plain, "not a wgrec checkpoint");
    let bytes = rewrite(|_, md| {
        md.insert("format_version".into(), "99".into());
    });
    rejected("version", &bytes, "format version 99");
}

#[test]
fn checkpoint_of_another_config_is_rejected() {
    let dir = temp_dir("other-config");
    let path = dir.join("d16.safetensors");
    save(&synthetic(), &path).unwrap();
    let p = path.to_str().unwrap();
    let args = [
        "train",
        "--resume",
        p,
        "--embedding-dim",
        "32",
        "--rating-weight",
        "1",
        "--retrieval-weight",
        "1",
    ];
    let (code, err) = wgrec(&args);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(p) && err.contains("another config"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The folder holding ml-100k/ and ml-100k-split/, or None after recording a skip.
fn data_dir() -> Option<PathBuf> {
    common::ml_100k()
}

#[test]
fn checkpoint_of_another_vocabulary_is_rejected() {
    let Some(data) = data_dir() else { return };
    let dir = temp_dir("other-vocab");
    let path = dir.join("tiny.safetensors");
    save(&synthetic(), &path).unwrap();
    let p = path.to_str().unwrap();
    let d = data.join("ml-100k");
    let (code, err) = wgrec(&["evaluate", "--model", p, "--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(p) && err.contains("another user vocabulary"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn same_metrics(a: &wgrec::eval::TestMetrics, b: &wgrec::eval::TestMetrics) -> bool {
    a.top_k == b.top_k
        && a.rmse.to_bits() == b.rmse.to_bits()
        && a.loss.to_bits() == b.loss.to_bits()
}

/// Joint model with `--reshuffle` (so the batch order's PRNG must be restored too): 2 epochs straight vs
/// 1 epoch, save, resume for 1 more. Same parameters, Adagrad state and test metrics, bit for bit; and the
/// saved straight model, loaded and evaluated, gives the metrics training reported.
#[test]
fn resumed_training_equals_straight_training_and_evaluates_identically() {
    let Some(dir) = data_dir() else { return };
    let Some(gpu) = common::gpu() else { return };
    let dopts = DataOptions {
        data_dir: Some(dir.join("ml-100k")),
        split_dir: Some(dir.join("ml-100k-split")),
        seed: 42,
        ..Default::default()
    };
    let data = wgrec::data::load(&dopts).unwrap();
    let kernels = common::kernels(gpu, 32);
    let tmp = temp_dir("resume");
    let file = |n: &str| tmp.join(n);
    let opts = |epochs| wgrec::options::TrainOptions {
        epochs,
        reshuffle: true,
        ..wgrec::options::TrainOptions::tutorial(1.0, 1.0)
    };
    let run = |epochs, resume: Option<(&Path, &Checkpoint)>, save: &Path| {
        let out = Output::check("--save", save).unwrap();
        let split = SplitInfo::of(&dopts);
        let env = Env {
            gpu,
            ops: wgrec::kernels::Ops::Windowed(kernels),
            data: &data,
            split: Some(&split),
            profiler: None,
        };
        let mut run = Run::new(opts(epochs), 32).unwrap();
        if let Some((path, ck)) = resume {
            run = run.resume(path, ck).unwrap();
        }
        let outcome = run.save(&out).unwrap().execute(&env).unwrap();
        outcome
            .staged
            .expect("a checkpoint was staged")
            .commit()
            .unwrap();
        outcome.result
    };
    let straight = run(2, None, &file("straight.safetensors"));
    run(1, None, &file("first.safetensors"));
    let first = Checkpoint::load(&file("first.safetensors")).unwrap();
    assert_eq!(first.training.epochs_done, 1);
    let resumed = run(
        1,
        Some((&file("first.safetensors"), &first)),
        &file("resumed.safetensors"),
    );
    assert!(
        same_metrics(&resumed.test, &straight.test),
        "resumed {:?} vs straight {:?}",
        resumed.test,
        straight.test
    );
    let a = Checkpoint::load(&file("straight.safetensors")).unwrap();
    let b = Checkpoint::load(&file("resumed.safetensors")).unwrap();
    assert!(a.params == b.params, "parameters differ");
    assert!(a.accumulators == b.accumulators, "Adagrad state differs");
    assert_eq!(a.training.epochs_done, 2);
    assert_eq!(a.training.batch_rng_state, b.training.batch_rng_state);
    assert_eq!(b.training.history.len(), 2);
    assert_eq!(b.training.history[1].loss, straight.history[1].loss);

    let model = a.to_gpu(gpu).unwrap();
    let evaluator =
        wgrec::eval::Evaluator::new(gpu, kernels, &model, &data.test, &data.candidates, 4096)
            .unwrap();
    let again = evaluator.run(1.0, 1.0).unwrap();
    assert!(
        same_metrics(&again, &straight.test),
        "loaded {again:?} vs trained {:?}",
        straight.test
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// Runs the binary with `-q`; returns (exit code, stdout, stderr). A run killed by a signal is retried
/// (twice at most): lavapipe 22.3 crashes now and then in its compute threads (README, Known issues).
fn wgrec_out(args: &[&str]) -> (Option<i32>, String, String) {
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_wgrec"))
            .arg("-q")
            .args(args)
            .output()
            .unwrap()
    };
    let mut out = run();
    for _ in 0..2 {
        if out.status.code().is_some() {
            break;
        }
        eprintln!(
            "wgrec {args:?} was killed ({}); running it again",
            out.status
        );
        out = run();
    }
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `recommend` and `predict` on the synthetic model: unknown ids take the OOV row with a note on stderr,
/// `--exclude-seen` drops the training movies (k larger than what is left), predictions equal the library's.
#[test]
fn recommend_and_predict_from_a_file() {
    let Some(gpu) = common::gpu() else { return };
    let dir = temp_dir("serve");
    let path = dir.join("m.safetensors");
    let ck = synthetic();
    save(&ck, &path).unwrap();
    let p = path.to_str().unwrap();

    // User "1" (row 1) trained on rows 1 and 3 (titles A and C): with them excluded, B and D are left.
    let (code, out, err) = wgrec_out(&[
        "recommend",
        "--model",
        p,
        "--user",
        "1",
        "-k",
        "4",
        "--exclude-seen",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let titles: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split("  ").last().unwrap().trim())
        .collect();
    let mut sorted = titles.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["B, The (1991)", "D (1993)"], "{out}");
    assert!(
        err.contains("user 1 rated 2 of the 4 movies in training: 2 left to recommend"),
        "fewer than k left is said: {err}"
    );
    let (code, out, _) = wgrec_out(&["recommend", "--model", p, "--user", "1", "-k", "4"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 5, "header and 4 titles: {out}");

    let (code, out, err) = wgrec_out(&[
        "predict",
        "--model",
        p,
        "--user",
        "nobody",
        "--movie",
        "Nope (2000)",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("user \"nobody\"") && err.contains("out-of-vocabulary"),
        "{err}"
    );
    assert!(err.contains("title \"Nope (2000)\""), "{err}");
    let kernels = common::kernels(gpu, 16);
    let model = ck.to_gpu(gpu).unwrap();
    let want = wgrec::serve::predict(gpu, kernels, &model, &[0], &[0]).unwrap()[0];
    assert_eq!(out.trim(), format!("{want:.4}"));

    let csv = dir.join("all.csv");
    let (code, _, err) = wgrec_out(&[
        "recommend",
        "--model",
        p,
        "--all-users",
        "--out",
        csv.to_str().unwrap(),
        "-k",
        "4",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "user,rank,title,score");
    assert_eq!(
        lines.len(),
        1 + 3 * 4,
        "every title for each of the 3 users: {text}"
    );
    // The title with a comma is quoted, for every user.
    let quoted = lines
        .iter()
        .filter(|l| l.contains(",\"B, The (1991)\","))
        .count();
    assert_eq!(quoted, 3, "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A model trained on a temporal split of the built-in sample evaluates, with no data options, on the
/// same test set: the checkpoint records the split kind and the data set, not only the seed.
#[test]
fn evaluate_rebuilds_the_recorded_temporal_split_and_data_set() {
    if common::gpu().is_none() {
        return;
    }
    let dir = temp_dir("temporal");
    let path = dir.join("t.safetensors");
    let p = path.to_str().unwrap();
    let (code, train_out, err) = wgrec_out(&[
        "train",
        "--dataset",
        "sample",
        "--split",
        "temporal",
        "--rating-weight",
        "1",
        "--retrieval-weight",
        "1",
        "--epochs",
        "1",
        "--save",
        p,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.training.split.kind, wgrec::data::SplitKind::Temporal);
    assert_eq!(ck.training.split.dataset.as_deref(), Some("sample"));
    let trained = |key: &str| ck.training.test[key].as_f64().unwrap();
    let top100 = "factorized_top_k/top_100_categorical_accuracy";
    let evaluated = |out: &str, key: &str| -> f64 {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{key} in {out}"))
            .parse()
            .unwrap()
    };
    let (code, out, err) = wgrec_out(&["evaluate", "--model", p]);
    assert_eq!(code, Some(0), "{err}");
    for key in [top100, "root_mean_squared_error"] {
        assert_eq!(
            format!("{:.6}", evaluated(&out, key)),
            format!("{:.6}", trained(key)),
            "{key}: evaluate vs training ({train_out})"
        );
    }
    // Asking for the random split gives another test set.
    let (code, out, err) = wgrec_out(&["evaluate", "--model", p, "--split", "random"]);
    assert_eq!(code, Some(0), "{err}");
    assert_ne!(
        format!("{:.6}", evaluated(&out, "root_mean_squared_error")),
        format!("{:.6}", trained("root_mean_squared_error"))
    );
}
