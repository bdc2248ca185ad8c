//! The GPU thread: it owns the adapter and the model, takes jobs from the HTTP handlers in arrival order,
//! and answers the top-k requests that queue up together with one `brute_force_top_k` pass (dynamic
//! batching, as Triton does), each request with its own k and exclusions.

use super::metrics::Metrics;
use crate::checkpoint::Checkpoint;
use crate::gpu::{AdapterChoice, AdapterSummary, Gpu};
use crate::kernels::{Choice, Family};
use crate::serve::recommender::{Query, Recommender};
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The model the GPU thread serves now, for the endpoints that only read the checkpoint (seen lists,
/// vocabularies, metadata). `version` counts loads: 1 at start-up.
#[derive(Clone)]
pub struct Loaded {
    pub ck: Arc<Checkpoint>,
    pub version: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Item {
    pub title: String,
    pub score: f32,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UserRecommendations {
    pub user: String,
    /// The user is not in the vocabulary: ranked with the out-of-vocabulary row, as TFRS does.
    pub oov: bool,
    pub recommendations: Vec<Item>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Prediction {
    pub user: String,
    pub movie: String,
    pub rating: f32,
    /// Either side is out of vocabulary.
    pub oov: bool,
    pub user_oov: bool,
    pub movie_oov: bool,
}

/// An answer and the model version that computed it.
pub type Reply<T> = oneshot::Sender<Result<(T, u64), String>>;

pub struct RecommendJob {
    pub users: Vec<String>,
    pub k: usize,
    pub exclude_seen: bool,
    pub reply: Reply<Vec<UserRecommendations>>,
}

pub enum Job {
    Recommend(RecommendJob),
    Predict {
        pairs: Vec<(String, String)>,
        reply: Reply<Vec<Prediction>>,
    },
    /// A checkpoint already loaded and verified, to swap in between two passes.
    Reload {
        ck: Box<Checkpoint>,
        reply: Reply<()>,
    },
    Stop,
}

pub struct Limits {
    /// Most users in one pass (requests are not split: a larger one runs alone).
    pub max_batch: usize,
    /// How long to wait for more requests after the first of a pass.
    pub max_wait: Duration,
}

/// The handle the HTTP side keeps.
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    pub adapter: AdapterSummary,
    /// The kernel family that ranks and predicts (`--kernels`, resolved on the adapter).
    pub family: Family,
    pub loaded: Arc<RwLock<Loaded>>,
    metrics: Metrics,
}

impl Batcher {
    /// Starts the GPU thread: opens the adapter, compiles the kernels and uploads `ck`, and returns once it
    /// is ready (or failed).
    pub fn spawn(
        adapter: &AdapterChoice,
        kernels: Choice,
        ck: Checkpoint,
        limits: Limits,
        metrics: Metrics,
    ) -> Result<Self> {
        let (jobs, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let ck = Arc::new(ck);
        let loaded = Arc::new(RwLock::new(Loaded {
            ck: ck.clone(),
            version: 1,
        }));
        let (adapter_choice, shared, m) = (adapter.clone(), loaded.clone(), metrics.clone());
        let thread = std::thread::Builder::new()
            .name("wgrec-gpu".into())
            .spawn(move || {
                let gpu = match Gpu::new(&adapter_choice) {
                    Ok(g) => g,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                let family = kernels.resolve(&gpu.adapter);
                let rec = match Recommender::new(&gpu, ck, family) {
                    Ok(r) => r,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                let _ = ready_tx.send(Ok((gpu.adapter.clone(), family)));
                Worker {
                    rec,
                    version: 1,
                    limits,
                    metrics: m,
                    loaded: shared,
                }
                .run(rx);
            })?;
        let (adapter, family) = ready_rx
            .recv()
            .map_err(|_| anyhow!("the GPU thread stopped while starting"))??;
        Ok(Self {
            jobs,
            thread: std::sync::Mutex::new(Some(thread)),
            adapter,
            family,
            loaded,
            metrics,
        })
    }

    pub fn loaded(&self) -> Loaded {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Queues `job`; false when the GPU thread has stopped.
    pub fn send(&self, job: Job) -> bool {
        self.metrics.queue_depth.inc();
        let sent = self.jobs.send(job).is_ok();
        if !sent {
            self.metrics.queue_depth.dec();
        }
        sent
    }

    /// Lets the GPU thread finish the jobs already queued, then waits for it.
    pub fn stop(&self) {
        self.send(Job::Stop);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

struct Worker<'g> {
    rec: Recommender<'g>,
    version: u64,
    limits: Limits,
    metrics: Metrics,
    loaded: Arc<RwLock<Loaded>>,
}

impl Worker<'_> {
    fn take(&self, job: Job) -> Job {
        self.metrics.queue_depth.dec();
        job
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        // A job taken while collecting a batch that could not join it: it goes next.
        let mut next: Option<Job> = None;
        loop {
            let job = match next.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => self.take(j),
                    Err(_) => return,
                },
            };
            match job {
                Job::Stop => return,
                Job::Reload { ck, reply } => {
                    let r = self.reload(*ck);
                    let _ = reply.send(r.map(|()| ((), self.version)));
                }
                Job::Predict { pairs, reply } => {
                    if !reply.is_closed() {
                        let r = self.predict(&pairs).map_err(|e| format!("{e:#}"));
                        let _ = reply.send(r.map(|p| (p, self.version)));
                    } else {
                        self.metrics.cancelled.inc();
                    }
                }
                Job::Recommend(first) => {
                    let mut users = first.users.len();
                    let mut batch = vec![first];
                    let deadline = Instant::now() + self.limits.max_wait;
                    while users < self.limits.max_batch {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let got = if left.is_zero() {
                            rx.try_recv().map_err(|_| RecvTimeoutError::Timeout)
                        } else {
                            rx.recv_timeout(left)
                        };
                        match got.map(|j| self.take(j)) {
                            Ok(Job::Recommend(r))
                                if users + r.users.len() <= self.limits.max_batch =>
                            {
                                users += r.users.len();
                                batch.push(r);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.recommend(batch);
                }
            }
        }
    }

    fn reload(&mut self, ck: Checkpoint) -> Result<(), String> {
        self.rec.replace(ck).map_err(|e| format!("{e:#}"))?;
        self.version += 1;
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Loaded {
            ck: self.rec.ck.clone(),
            version: self.version,
        };
        Ok(())
    }

    /// One pass for every request of the batch, planned for the largest k; each answer is cut to its own k
    /// (the ranking is a total order, score then candidate index, so a top-k is a prefix of a larger one).
    fn recommend(&self, batch: Vec<RecommendJob>) {
        let (batch, cancelled): (Vec<_>, Vec<_>) =
            batch.into_iter().partition(|j| !j.reply.is_closed());
        self.metrics.cancelled.inc_by(cancelled.len() as u64);
        if batch.is_empty() {
            return;
        }
        let ck = &self.rec.ck;
        let mut queries = Vec::new();
        let mut oov = Vec::new();
        for j in &batch {
            for u in &j.users {
                let row = ck.users.lookup(u);
                oov.push(row == 0);
                queries.push(Query {
                    row,
                    exclude_seen: j.exclude_seen,
                });
            }
        }
        let k = batch.iter().map(|j| j.k).max().expect("not empty");
        self.metrics.batch_size.observe(queries.len() as f64);
        match self.rec.recommend(&queries, k) {
            Err(e) => {
                let msg = format!("{e:#}");
                for j in batch {
                    let _ = j.reply.send(Err(msg.clone()));
                }
            }
            Ok(top) => {
                let mut a = 0;
                for j in batch {
                    let answer = j
                        .users
                        .into_iter()
                        .map(|user| {
                            let recommendations = top
                                .row(a)
                                .take(j.k)
                                .map(|(c, score)| Item {
                                    title: self.rec.title(c).to_string(),
                                    score,
                                })
                                .collect();
                            a += 1;
                            UserRecommendations {
                                user,
                                oov: oov[a - 1],
                                recommendations,
                            }
                        })
                        .collect();
                    let _ = j.reply.send(Ok((answer, self.version)));
                }
            }
        }
    }

    fn predict(&self, pairs: &[(String, String)]) -> Result<Vec<Prediction>> {
        let ck = &self.rec.ck;
        let users: Vec<u32> = pairs.iter().map(|(u, _)| ck.users.lookup(u)).collect();
        let movies: Vec<u32> = pairs.iter().map(|(_, m)| ck.titles.lookup(m)).collect();
        let ratings = self.rec.predict(&users, &movies)?;
        Ok(pairs
            .iter()
            .zip(users.iter().zip(&movies))
            .zip(ratings)
            .map(|(((user, movie), (&u, &m)), rating)| Prediction {
                user: user.clone(),
                movie: movie.clone(),
                rating,
                oov: u == 0 || m == 0,
                user_oov: u == 0,
                movie_oov: m == 0,
            })
            .collect())
    }
}
