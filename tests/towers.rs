//! Feature towers end to end on the GPU: an epoch of training through `Trainer` on both kernel families,
//! with a user tower (two fields and a dense stack) and a movie tower (a multi-hot field, no stack),
//! against the composed CPU reference (`CpuModel::with_towers`): the tables the towers fill, the towers'
//! parameters and Adagrad state, the MLP. Needs an adapter: skips without one, fails in CI.

mod common;

use common::{assert_close, gpu, kernels};
use wgrec::cpu::reference::CpuModel;
use wgrec::data::features::Field;
use wgrec::data::{Ratings, SplitMix64, Vocabulary};
use wgrec::kernels::tower::Towered;
use wgrec::kernels::Ops;
use wgrec::model::tower::{Tower, Towers};
use wgrec::model::{ModelConfig, Params};
use wgrec::options::TrainOptions;
use wgrec::train::trainer::Trainer;

/// A field over `entities` rows: entity e holds up to `most` of `vocab` tokens (some none).
fn field(
    name: &'static str,
    rng: &mut SplitMix64,
    entities: usize,
    vocab: usize,
    most: u64,
) -> Field {
    let tokens: Vec<String> = (0..vocab).map(|v| format!("{name}{v:03}")).collect();
    let vocab = Vocabulary::from_values(tokens.iter().map(String::as_str));
    let (mut offsets, mut ids) = (vec![0u32], Vec::new());
    for _ in 0..entities {
        let mut mine: Vec<u32> = (0..rng.below(most + 1))
            .map(|_| 1 + rng.below(vocab.tokens.len() as u64) as u32)
            .collect();
        mine.sort_unstable();
        mine.dedup();
        ids.extend(mine);
        offsets.push(ids.len() as u32);
    }
    Field {
        name,
        vocab,
        offsets,
        ids,
    }
}

fn ratings(rng: &mut SplitMix64, n: usize, users: usize, movies: usize) -> Ratings {
    Ratings {
        user: (0..n)
            .map(|_| 1 + rng.below(users as u64 - 1) as u32)
            .collect(),
        movie: (0..n)
            .map(|_| 1 + rng.below(movies as u64 - 1) as u32)
            .collect(),
        rating: (0..n).map(|_| 1.0 + rng.below(5) as f32).collect(),
    }
}

#[test]
fn towers_train_as_the_cpu_reference_on_both_families() {
    let Some(gpu) = gpu() else { return };
    let dim = 16;
    let (users, movies) = (301, 203);
    let mut rng = SplitMix64::new(21);
    let towers = Towers {
        user: Some(
            Tower::new(
                users,
                8,
                vec![
                    field("age", &mut rng, users, 7, 1),
                    field("zip", &mut rng, users, 40, 1),
                ],
                8,
                vec![12, dim],
            )
            .unwrap(),
        ),
        movie: Some(
            Tower::new(
                movies,
                8,
                vec![field("genres", &mut rng, movies, 19, 4)],
                8,
                vec![],
            )
            .unwrap(),
        ),
    };
    assert_eq!(towers.output_width(8).unwrap(), dim);
    let cfg = ModelConfig::tutorial(users, movies, dim);
    let train = ratings(&mut rng, 900, users, movies);
    let windowed = kernels(gpu, dim);
    let gpu_family: &'static _ = Box::leak(Box::new(
        wgrec::kernels::gpu::Kernels::new(gpu, dim).unwrap(),
    ));
    // (rating weight, retrieval weight, batch, embedding lr, l2, full softmax: the movie tower fills
    // every catalogue row each step, more rows than the batch has)
    let cases = [
        (1.0, 1.0, 300, None, 0.0, false),
        (4.0, 1.0, 256, Some(0.05), 0.01, false),
        (1.0, 0.0, 400, None, 0.0, false),
        (1.0, 1.0, 128, None, 0.01, true),
    ];
    for (rw, tw, batch_size, elr, l2, full) in cases {
        let mut opts = TrainOptions {
            batch_size,
            epochs: 1,
            seed: 5,
            ..TrainOptions::tutorial(rw, tw)
        };
        opts.tweaks.embedding_learning_rate = elr;
        opts.tweaks.embedding_l2 = l2;
        opts.tweaks.full_softmax = full;
        let mut init = Params::init(&cfg, opts.seed);
        init.towers = towers.init(opts.seed);
        // The reference: the trainer's batch order, step by step, then every row from the towers.
        let mut cpu = CpuModel::with_towers(cfg, init.clone(), towers.clone());
        let perm = wgrec::train::trainer::batch_order(opts.seed, train.len());
        for b in opts.make_batches(&train, &perm, cfg.movies) {
            cpu.step(&b, &opts);
        }
        cpu.materialize();
        let want = &cpu.params;
        for ops in [Ops::Windowed(windowed), Ops::Gpu(gpu_family)] {
            let model = Towered::new(gpu, &cfg, &init, &towers).unwrap();
            let mut trainer = Trainer::on_family(gpu, ops, model, &train, &opts).unwrap();
            trainer.epoch(None).unwrap();
            let got = trainer.model.params(gpu).unwrap();
            let acc = trainer
                .model
                .towers
                .as_ref()
                .unwrap()
                .read(gpu, true)
                .unwrap();
            let what = |t: &str| {
                format!(
                    "{t}, {:?} family, weights {rw}/{tw}, lr {elr:?}, l2 {l2}, full softmax {full}",
                    ops.family()
                )
            };
            assert_close(&what("towers"), &got.towers, &want.towers, 1e-6, 1e-4);
            assert_close(
                &what("tower accumulators"),
                &acc,
                &cpu.tower_acc,
                1e-6,
                1e-4,
            );
            assert_close(
                &what("user rows"),
                &got.user_emb,
                &want.user_emb,
                1e-6,
                1e-4,
            );
            assert_close(
                &what("movie rows"),
                &got.movie_emb,
                &want.movie_emb,
                1e-6,
                1e-4,
            );
            assert_close(&what("mlp"), &got.mlp, &want.mlp, 1e-6, 1e-4);
            // Training moved every part of both towers: the stack, the id rows and a feature table.
            let moved = |side: usize, part: std::ops::Range<usize>| {
                let lens = towers.lens();
                let at = if side == 0 { 0 } else { lens[0] };
                (part.start + at..part.end + at).any(|i| got.towers[i] != init.towers[i])
            };
            let (ul, ml) = (
                towers.user.as_ref().unwrap().layout(),
                towers.movie.as_ref().unwrap().layout(),
            );
            assert!(
                moved(0, ul.stack..ul.len),
                "{}",
                what("user stack unchanged")
            );
            assert!(
                moved(0, ul.tables[0]..ul.tables[1]),
                "{}",
                what("user ids unchanged")
            );
            assert!(
                moved(1, ml.tables[1]..ml.len),
                "{}",
                what("genres unchanged")
            );
        }
    }
}
